#include <criterion/criterion.h>
#include <string.h>

#include "stsfs/mountinfo.h"

Test(mountinfo, fuse_mount)
{
	char line[] = "49 48 0:42 / /var/tmp/t/shared/mnt rw,nosuid,nodev,relatime shared:2 - fuse.stsfs stsfs "
		      "rw,user_id=0,group_id=0";
	struct mountinfo_line m;
	cr_assert_eq(mountinfo_parse_line(line, &m), 0);
	cr_assert_eq(m.major, 0);
	cr_assert_eq(m.minor, 42);
	cr_assert_str_eq(m.target, "/var/tmp/t/shared/mnt");
	cr_assert_str_eq(m.fstype, "fuse.stsfs");
	cr_assert(m.shared);
}

Test(mountinfo, private_no_optional_fields)
{
	char line[] = "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard";
	struct mountinfo_line m;
	cr_assert_eq(mountinfo_parse_line(line, &m), 0);
	cr_assert_eq(m.major, 254);
	cr_assert_str_eq(m.target, "/");
	cr_assert_str_eq(m.fstype, "ext4");
	cr_assert_not(m.shared);
}

Test(mountinfo, slave_is_not_shared_and_escapes)
{
	char line[] = "93 70 254:0 /srv/a\\040b /srv/a\\040b\\134x rw master:1 propagate_from:1 - ext4 /dev/vda rw";
	struct mountinfo_line m;
	cr_assert_eq(mountinfo_parse_line(line, &m), 0);
	cr_assert_str_eq(m.target, "/srv/a b\\x");
	cr_assert_not(m.shared);
	cr_assert_str_eq(m.fstype, "ext4");
}

Test(mountinfo, shared_and_slave)
{
	char line[] = "60 50 0:37 / /mnt rw shared:5 master:1 - tmpfs t rw";
	struct mountinfo_line m;
	cr_assert_eq(mountinfo_parse_line(line, &m), 0);
	cr_assert(m.shared);
}

Test(mountinfo, not_a_line)
{
	char a[] = "";
	char b[] = "garbage";
	char c[] = "1 2 x:y / /a rw - ext4 d rw";
	char d[] = "1 2 0:1 / /a rw";
	struct mountinfo_line m;
	cr_assert_eq(mountinfo_parse_line(a, &m), -1);
	cr_assert_eq(mountinfo_parse_line(b, &m), -1);
	cr_assert_eq(mountinfo_parse_line(c, &m), -1);
	cr_assert_eq(mountinfo_parse_line(d, &m), -1);
}
