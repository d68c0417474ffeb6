/* rename2 OLD NEW [noreplace|exchange|none]: renameat2(2) with that flag,
 * which mv cannot be asked for; prints the errno's name on failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: rename2 OLD NEW [noreplace|exchange|none]\n");
		return 2;
	}
	unsigned flags = 0;
	const char *f = argc == 4 ? argv[3] : "none";
	if (strcmp(f, "noreplace") == 0)
		flags = RENAME_NOREPLACE;
	else if (strcmp(f, "exchange") == 0)
		flags = RENAME_EXCHANGE;
	else if (strcmp(f, "none") != 0) {
		fprintf(stderr, "rename2: unknown flag %s\n", f);
		return 2;
	}
	if (renameat2(AT_FDCWD, argv[1], AT_FDCWD, argv[2], flags) == 0)
		return 0;
	printf("%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
	return 1;
}
