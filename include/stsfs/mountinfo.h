/* One line of /proc/PID/mountinfo (proc(5)), parsed in place. */
#ifndef STSFS_MOUNTINFO_H
#define STSFS_MOUNTINFO_H

#include <stdbool.h>

struct mountinfo_line {
	unsigned major, minor; /* the file system's device */
	char *target;          /* the mount point, unescaped (\040 is a space) */
	char *fstype;          /* e.g. "fuse.stsfs" */
	bool shared;           /* "shared:N" among the optional fields */
};

/* Splits line (one line, no newline; modified in place) into m.
 * 0, or -1 if the line is not a mountinfo line. */
int mountinfo_parse_line(char *line, struct mountinfo_line *m);

#endif
