/* libdevmapper: one recipe per operation (create task, run, read, destroy);
 * libdm's 1/0 results become -errno at this boundary. */
#include "stsfs/kernel.h"

#include <errno.h>
#include <libdevmapper.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libdm logs to stderr by default; keep its last error per thread so it can
 * become the reason in an `error` file instead. */
static __thread char dm_last_error[STSFS_WHY_LEN];

__attribute__((format(printf, 5, 0)))
static void dm_log(int level, const char *file, int line, int dm_errno, const char *fmt, va_list ap)
{
	if ((level & 7) > 3) /* only errors and worse (_LOG_ERR = 3) */
		return;
	vsnprintf(dm_last_error, sizeof(dm_last_error), fmt, ap);
}

__attribute__((format(printf, 5, 6)))
static void dm_log_cb(int level, const char *file, int line, int dm_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dm_log(level, file, line, dm_errno, fmt, ap);
	va_end(ap);
}

void kdm_init(void)
{
	dm_log_with_errno_init(dm_log_cb);
}

void kdm_library_version(char *buf, size_t len)
{
	if (!dm_get_library_version(buf, len))
		snprintf(buf, len, "unknown");
}

int kdm_driver_version(char *buf, size_t len, char *why)
{
	dm_last_error[0] = '\0';
	if (!dm_driver_version(buf, len)) {
		snprintf(buf, len, "unavailable");
		return why_set(why, -ENODEV, "device-mapper is not available in this kernel%s%s",
			       dm_last_error[0] ? ": " : "", dm_last_error);
	}
	return 0;
}

int kdm_targets(char **text, char *why)
{
	dm_last_error[0] = '\0';
	struct dm_task *dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
	if (!dmt)
		return why_set(why, -ENOMEM, "dm_task_create failed");
	int r = 0;
	if (!dm_task_run(dmt)) {
		int e = dm_task_get_errno(dmt);
		r = why_set(why, e == ENOENT || e == ENXIO || e == 0 ? -ENODEV : -e,
			    "cannot list device-mapper targets: %s", dm_last_error[0] ? dm_last_error : "no device-mapper");
		dm_task_destroy(dmt);
		return r;
	}
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	struct dm_versions *v = dm_task_get_versions(dmt), *last;
	do {
		last = v;
		if (f)
			fprintf(f, "%s %u.%u.%u\n", v->name, v->version[0], v->version[1], v->version[2]);
		v = (struct dm_versions *)((char *)v + v->next);
	} while (last != v);
	if (f)
		fclose(f);
	dm_task_destroy(dmt);
	*text = out;
	return out ? 0 : -ENOMEM;
}
