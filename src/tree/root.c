/* The root directory: README, version, targets, error. */
#include "stsfs/tree.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stsfs/kernel.h"
#include "stsfs/tenancy.h"

struct errslot root_error = ERRSLOT_INIT;

void errslot_set(struct errslot *e, const char *source, const char *msg)
{
	char when[32];
	struct tm tm;
	time_t now = time(NULL);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	pthread_mutex_lock(&e->lock);
	snprintf(e->msg, sizeof(e->msg), "%s %s: %s", when, source, msg);
	pthread_mutex_unlock(&e->lock);
}

char *errslot_show(struct errslot *e)
{
	char *out = NULL;
	pthread_mutex_lock(&e->lock);
	if (asprintf(&out, "%s%s", e->msg, e->msg[0] ? "\n" : "") < 0)
		out = NULL;
	pthread_mutex_unlock(&e->lock);
	return out;
}

int show_text(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(out, fmt, ap);
	va_end(ap);
	return n < 0 ? -ENOMEM : 0;
}

/* A tenant's failures above its objects (mkdir in loop/, the root's last
 * error) go to slots of its own: others must not read them. */
struct errslot *errslot_for(const struct ctx *c)
{
	for (int up = 0; up < c->depth; up++) {
		struct ctx k;
		ctx_up(c, up, &k);
		if (!k.kind->errslot)
			continue;
		if (c->tenant[0] && k.depth == 1 && tenant_scoped_kind(k.kind))
			return tenant_errslot(c->tenant, k.comp[0]);
		return k.kind->errslot(&k);
	}
	return c->tenant[0] ? tenant_errslot(c->tenant, "") : &root_error;
}

int show_error_file(struct ctx *c, char **out)
{
	*out = errslot_show(errslot_for(c));
	return *out ? 0 : -ENOMEM;
}

static struct errslot *root_errslot(struct ctx *c)
{
	return &root_error;
}

static const char readme_text[] =
	"stsfs: storage devices as files.\n"
	"\n"
	"  loop/NAME/    mkdir makes an inactive loop object; write its attributes\n"
	"                (backing_file or size, offset, sizelimit, sector_size,\n"
	"                read_only, autoclear, partscan, direct_io), then\n"
	"                echo 1 > active. echo 0 > active detaches; rmdir forgets.\n"
	"  loop/loopN/   loop devices made outside stsfs (read-only).\n"
	"  dm/NAME/      mkdir makes an inactive device-mapper object; write table\n"
	"                (loop/NAME, dm/NAME, MAJ:MIN or /dev/... as devices), uuid,\n"
	"                read_only, then echo 1 > active. table, suspended, message\n"
	"                work while active; mv renames; other dm devices are listed\n"
	"                read-only.\n"
	"  thin/POOL/     mkdir makes an inactive thin pool; write data_size (or\n"
	"                data_dev), optionally metadata_size, block_size,\n"
	"                low_water_mark, features, then echo 1 > active.\n"
	"  thin/POOL/VOL/ mkdir makes a thin volume; write size (and origin for a\n"
	"                snapshot), then echo 1 > active. rmdir frees its blocks.\n"
	"\n"
	"Active block objects also have device, dev, size, probe, wipe (echo 1:\n"
	"erase every signature, as wipefs -a), partitions/ and data (the device's\n"
	"bytes). Parsed files have a .json twin. A failed write\n"
	"returns an errno; the reason is in the object's error file (for mkdir: in\n"
	"the parent's). Sizes take K, M, G, T suffixes; booleans 0/1, y/n, on/off.\n"
	"\n"
	"version  stsfs, libdevmapper, dm_driver, kernel and thin_tools versions\n"
	"targets  loaded device-mapper targets (empty without device-mapper)\n"
	"error    last error of a top-level operation\n";

static int show_readme(struct ctx *c, char **out)
{
	*out = strdup(readme_text);
	return *out ? 0 : -ENOMEM;
}

static int kv_version(struct ctx *c, struct kv_doc *doc)
{
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b)
		return -ENOMEM;
	char lib[64], drv[64], kernel[128];
	kdm_library_version(lib, sizeof(lib));
	kdm_driver_version(drv, sizeof(drv), NULL);
	ksys_kernel_release(kernel, sizeof(kernel));
	int r = kv_add_str(b, "stsfs", STSFS_VERSION);
	r = r ? r : kv_add_str(b, "libdevmapper", lib);
	r = r ? r : kv_add_str(b, "dm_driver", drv);
	r = r ? r : kv_add_str(b, "kernel", kernel);
	r = r ? r : kv_add_str(b, "thin_tools", ksys_thin_tools_version());
	return r;
}

/* Without device-mapper in the kernel the list is simply empty. */
static int show_targets(struct ctx *c, char **out)
{
	if (kdm_targets(out, NULL) == 0)
		return 0;
	*out = strdup("");
	return *out ? 0 : -ENOMEM;
}

static const struct file_def root_files[] = {
	{ .name = "README", .perm = 0444, .show = show_readme },
	{ .name = "version", .perm = 0444, .kv = kv_version },
	{ .name = "targets", .perm = 0444, .show = show_targets },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};

/* tenants/ and quota/: with --tenancy, for the host only. */
static bool host_of_tenants(struct ctx *c)
{
	return tenancy_on() && !c->tenant_caller;
}

static const struct subdir_def root_subdirs[] = {
	{ .name = "loop", .kind = &loop_dir_kind },
	{ .name = "dm", .kind = &dm_dir_kind },
	{ .name = "thin", .kind = &thin_dir_kind },
	{ .name = "tenants", .kind = &tenants_kind, .visible = host_of_tenants },
	{ .name = "quota", .kind = &quota_kind, .visible = host_of_tenants },
	{ NULL },
};

const struct dir_kind root_kind = {
	.name = "root",
	.files = { root_files },
	.subdirs = root_subdirs,
	.errslot = root_errslot,
};
