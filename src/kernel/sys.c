/* Facts about the running system for the root `version` file. */
#include "stsfs/kernel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

void ksys_kernel_release(char *buf, size_t len)
{
	struct utsname u;
	snprintf(buf, len, "%s", uname(&u) == 0 ? u.release : "unknown");
}

static char thin_version[64];
static pthread_once_t thin_once = PTHREAD_ONCE_INIT;

static void probe_thin_version(void)
{
	const char *argv[] = { "thin_check", "-V", NULL };
	char *out = NULL;
	int code;
	snprintf(thin_version, sizeof(thin_version), "unavailable");
	if (ktool_run(argv, NULL, &out, NULL, &code, NULL) == 0 && code == 0 && out && *out)
		snprintf(thin_version, sizeof(thin_version), "%.*s", (int)strcspn(out, "\n"), out);
	free(out);
}

const char *ksys_thin_tools_version(void)
{
	pthread_once(&thin_once, probe_thin_version);
	return thin_version;
}
