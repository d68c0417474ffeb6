/* /proc/PID/mountinfo lines (include/stsfs/mountinfo.h). */
#include "stsfs/mountinfo.h"

#include <stdio.h>
#include <string.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;
	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else
			*out++ = *s;
	}
	*out = '\0';
}

/* ID PARENT MAJ:MIN ROOT TARGET OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
int mountinfo_parse_line(char *line, struct mountinfo_line *m)
{
	char *save = NULL, *tok;
	int field = 0;
	bool after_dash = false;
	m->shared = false;
	m->target = m->fstype = NULL;
	for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 2 && sscanf(tok, "%u:%u", &m->major, &m->minor) != 2)
			return -1;
		if (field == 4)
			m->target = tok;
		if (after_dash) {
			m->fstype = tok;
			break;
		}
		if (field >= 6 && strcmp(tok, "-") == 0)
			after_dash = true; /* the optional fields end here */
		else if (field >= 6 && strncmp(tok, "shared:", 7) == 0)
			m->shared = true;
	}
	if (!m->target || !m->fstype)
		return -1;
	unescape(m->target);
	return 0;
}
