/* Reading recorded kernel output in unit tests: one callback per data line,
 * skipping blank lines and `#` comments. */
#ifndef STSFS_TEST_DATA_LINES_H
#define STSFS_TEST_DATA_LINES_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void for_each_data_line(const char *path,
				      void (*fn)(const char *path, size_t lineno, char *line, void *arg), void *arg)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "cannot open %s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	for (size_t lineno = 1; (len = getline(&line, &cap, f)) >= 0; lineno++) {
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		size_t lead = strspn(line, " \t");
		if (line[lead] == '\0' || line[lead] == '#')
			continue;
		fn(path, lineno, line, arg);
	}
	free(line);
	fclose(f);
}

#endif
