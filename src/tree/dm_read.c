/* What the kernel says about an active dm device: status (parsed, and raw),
 * info, deps, size, and the event counter that wait and poll(2) follow.
 * An inactive object reads as empty (status, info, deps) or 0 (size), and
 * wait fails with ENODEV. */
#include "dm.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "stsfs/dm_parse.h"

int dm_show_status_raw(struct dm_obj *o, char **out, char *why)
{
	if (!dm_is_active(o, NULL))
		return show_text(out, "%s", "");
	return dm_show_live(o, true, out, why);
}

static int status_blocks(const char *name, struct kv_doc *doc, char *why)
{
	struct kdm_target *t = NULL;
	size_t n = 0;
	int r = kdm_status(name, &t, &n, why);
	for (size_t i = 0; !r && i < n; i++) {
		struct kv_block *b = kv_doc_add_block(doc);
		if (!b) {
			r = -ENOMEM;
			break;
		}
		r = kv_add_u64(b, "start", t[i].start);
		r = r ? r : kv_add_u64(b, "length", t[i].length);
		r = r ? r : kv_add_str(b, "target", t[i].type);
		char perr[STSFS_WHY_LEN] = "";
		if (!r && dm_status_parse(t[i].type, t[i].params, b, perr, sizeof(perr)) == -EINVAL) {
			r = kv_add_str(b, "args", t[i].params);
			r = r ? r : kv_add_str(b, "parse_error", perr);
		}
	}
	kdm_targets_free(t, n);
	return r;
}

int dm_kv_status(struct ctx *c, struct kv_doc *doc)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	/* One ioctl: a device that is not there (inactive) has no status. */
	char reason[STSFS_WHY_LEN] = "";
	int r = status_blocks(o->obj.name, doc, reason);
	if (r == -ENXIO)
		r = 0;
	else if (r)
		why_set(c->why, r, "%s", reason);
	dm_obj_put(o);
	return r;
}

static const char *state_word(const struct kdm_info *info)
{
	return info->suspended ? "SUSPENDED" : "ACTIVE";
}

static int info_block(const char *name, const struct kdm_info *info, struct kv_block *b)
{
	char dev[32];
	snprintf(dev, sizeof(dev), "%u:%u", major(info->dev), minor(info->dev));
	int r = kv_add_str(b, "name", name);
	r = r ? r : kv_add_str(b, "uuid", info->uuid);
	r = r ? r : kv_add_str(b, "dev", dev);
	r = r ? r : kv_add_str(b, "state", state_word(info));
	r = r ? r : kv_add_bool(b, "read_only", info->read_only);
	r = r ? r : kv_add_u64(b, "open_count", (uint64_t)info->open_count);
	r = r ? r : kv_add_u64(b, "event_nr", info->event_nr);
	r = r ? r : kv_add_u64(b, "target_count", info->target_count);
	r = r ? r : kv_add_bool(b, "live_table", info->live_table);
	r = r ? r : kv_add_bool(b, "inactive_table", info->inactive_table);
	return r;
}

int dm_kv_info(struct ctx *c, struct kv_doc *doc)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kv_block *b = kv_doc_add_block(doc);
	struct kdm_info info;
	int r = b ? 0 : -ENOMEM;
	if (b && dm_is_active(o, &info))
		r = info_block(o->obj.name, &info, b);
	dm_obj_put(o);
	return r;
}

/* Kernel name of a block device: the /sys/dev/block link's target. */
void dm_kernel_name(dev_t dev, char *buf, size_t len)
{
	char path[64], target[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(dev), minor(dev));
	ssize_t n = readlink(path, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	const char *slash = strrchr(target, '/');
	snprintf(buf, len, "%s", slash ? slash + 1 : (n > 0 ? target : "?"));
}

int dm_show_deps(struct dm_obj *o, char **out, char *why)
{
	dev_t *devs = NULL;
	size_t n = 0;
	int r = dm_is_active(o, NULL) ? kdm_deps(o->obj.name, &devs, &n, why) : 0;
	size_t len = 0;
	FILE *f = r ? NULL : open_memstream(out, &len);
	if (!r && !f)
		r = -ENOMEM;
	for (size_t i = 0; f && i < n; i++) {
		char kname[64];
		dm_kernel_name(devs[i], kname, sizeof(kname));
		fprintf(f, "%u:%u %s\n", major(devs[i]), minor(devs[i]), kname);
	}
	if (f && fclose(f) != 0)
		r = -ENOMEM;
	free(devs);
	return r;
}

int dm_show_size(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	uint64_t bytes = 0;
	if (dm_is_active(o, &info))
		kblk_size(info.dev, &bytes);
	return show_text(out, "%" PRIu64 "\n", bytes);
}

/* The tree has already blocked until the next event (file_def.waits),
 * without holding the object: this is the counter after it. */
int dm_show_wait(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	if (!dm_is_active(o, &info))
		return dm_not_active(o, why);
	return show_text(out, "%u\n", info.event_nr);
}

/* poll(2) on status and info: the event counter and a wait on a thread. */
int dm_event_nr(struct ctx *c, uint32_t *nr, char *key, size_t keylen)
{
	struct dm_obj *o = dm_ctx_obj(c);
	if (!o)
		return -ENOENT;
	struct kdm_info info;
	int r = -ENODEV;
	if (dm_is_active(o, &info)) {
		*nr = info.event_nr;
		snprintf(key, keylen, "%s", o->obj.name);
		r = 0;
	}
	dm_obj_put(o);
	return r;
}

int dm_event_wait(const char *name, uint32_t after)
{
	uint32_t ev = after;
	int r;
	do
		r = kdm_wait_event(name, after, &ev, NULL);
	while (r == -EINTR || (r == 0 && ev == after));
	return r;
}
