#include "stsfs/why.h"

#include <stdarg.h>
#include <stdio.h>

int why_set(char *why, int err, const char *fmt, ...)
{
	if (why) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, STSFS_WHY_LEN, fmt, ap);
		va_end(ap);
	}
	return err;
}
