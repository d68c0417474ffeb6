/* What a user writes to configure and drive a dm object, besides its table:
 * uuid and read_only (fixed while active, the kernel's values shown then),
 * active (create or remove the dm device), suspended, message, and the
 * live device's geometry and inactive table (clear). */
#include "dm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "stsfs/log.h"
#include "stsfs/value.h"

/* ---- uuid, read_only ---- */

int dm_show_uuid(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%s\n", dm_is_active(o, &info) ? info.uuid : o->uuid);
}

int dm_store_uuid(struct dm_obj *o, const char *value, char *why)
{
	if (dm_is_active(o, NULL))
		return dm_frozen(o, "uuid", why);
	if (strlen(value) > DM_UUID_MAX || strpbrk(value, " \t\n"))
		return why_set(why, -EINVAL, "a uuid is at most %d bytes without blanks", DM_UUID_MAX);
	char old[sizeof(o->uuid)];
	snprintf(old, sizeof(old), "%s", o->uuid);
	snprintf(o->uuid, sizeof(o->uuid), "%s", value);
	int r = dm_save(o, why);
	if (r)
		snprintf(o->uuid, sizeof(o->uuid), "%s", old);
	return r;
}

int dm_show_read_only(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%d\n", dm_is_active(o, &info) ? info.read_only : o->read_only);
}

int dm_store_read_only(struct dm_obj *o, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (dm_is_active(o, NULL))
		return on == o->read_only ? 0 : dm_frozen(o, "read_only", why);
	bool old = o->read_only;
	o->read_only = on;
	r = dm_save(o, why);
	if (r)
		o->read_only = old;
	return r;
}

/* ---- active, suspended ---- */

int dm_show_active(struct dm_obj *o, char **out, char *why)
{
	return show_text(out, "%d\n", dm_is_active(o, NULL));
}

static int create_device(struct dm_obj *o, char *why)
{
	struct dm_lines l;
	int r = dm_load_table(o->table, &l, why);
	if (r)
		return r;
	r = kdm_create(o->obj.name, o->uuid, o->read_only, &l, why);
	dm_lines_free(&l);
	return r;
}

static int remove_device(struct dm_obj *o, char *why)
{
	return kdm_remove(o->obj.name, why);
}

/* The record keeps its active flag in step with the kernel (dm_change). */
static int activate(struct dm_obj *o, char *why)
{
	int r = kdm_available(why);
	if (r)
		return r;
	if (!o->table[0])
		return why_set(why, -EINVAL, "write a table first");
	r = dm_change(o, true, create_device, why);
	struct kdm_info info;
	if (!r && dm_is_active(o, &info))
		log_msg(L_INFO, "dm/%s: activated as /dev/mapper/%s (%u:%u, %u targets)", o->obj.name, o->obj.name,
			major(info.dev), minor(info.dev), info.target_count);
	return r;
}

int dm_store_active(struct dm_obj *o, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return r;
	if (on == dm_is_active(o, NULL))
		return 0;
	if (on)
		return activate(o, why);
	r = dm_change(o, false, remove_device, why);
	if (!r)
		log_msg(L_INFO, "dm/%s: deactivated", o->obj.name);
	return r;
}

int dm_show_suspended(struct dm_obj *o, char **out, char *why)
{
	struct kdm_info info;
	return show_text(out, "%d\n", dm_is_active(o, &info) && info.suspended);
}

int dm_store_suspended(struct dm_obj *o, const char *value, char *why)
{
	bool on, noflush = strcmp(value, "noflush") == 0;
	int r = noflush ? 0 : value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return why_set(why, r, "suspended takes 1, noflush or 0, not '%s'", value);
	struct kdm_info info;
	if (!dm_is_active(o, &info))
		return dm_not_active(o, why);
	if (noflush || on) {
		r = info.suspended ? 0 : kdm_suspend(o->obj.name, noflush, why);
		if (!r && !info.suspended)
			log_msg(L_INFO, "dm/%s: suspended%s", o->obj.name, noflush ? " (noflush)" : "");
		return r;
	}
	r = info.suspended ? kdm_resume(o->obj.name, why) : 0;
	if (!r && info.suspended)
		log_msg(L_INFO, "dm/%s: resumed", o->obj.name);
	return r;
}

/* ---- message ---- */

int dm_show_message(struct dm_obj *o, char **out, char *why)
{
	const char *resp = o->response ? o->response : "";
	return show_text(out, "%s%s", resp, resp[0] ? "\n" : "");
}

/* "[SECTOR ]MESSAGE": a leading number followed by more words is the sector. */
static const char *split_sector(const char *value, uint64_t *sector)
{
	*sector = 0;
	const char *sp = strchr(value, ' ');
	if (!sp || sp == value || strspn(value, "0123456789") != (size_t)(sp - value))
		return value;
	*sector = strtoull(value, NULL, 10);
	while (*sp == ' ')
		sp++;
	return sp;
}

int dm_store_message(struct dm_obj *o, const char *value, char *why)
{
	uint64_t sector;
	const char *msg = split_sector(value, &sector);
	if (!msg[0])
		return why_set(why, -EINVAL, "empty message");
	if (!dm_is_active(o, NULL))
		return dm_not_active(o, why);
	char *resp = NULL;
	int r = kdm_message(o->obj.name, sector, msg, &resp, why);
	if (r)
		return r;
	free(o->response);
	o->response = resp;
	return 0;
}

/* ---- geometry, clear ---- */

int dm_show_geometry(struct dm_obj *o, char **out, char *why)
{
	struct kdm_geometry g;
	int r = kdm_geometry(o->obj.name, &g, why);
	if (r == -ENODEV) /* inactive: nothing to show, as info */
		return show_text(out, "%s", "");
	if (r)
		return r;
	if (!g.cylinders && !g.heads && !g.sectors && !g.start)
		return show_text(out, "%s", "");
	return show_text(out, "%u %u %u %llu\n", g.cylinders, g.heads, g.sectors, (unsigned long long)g.start);
}

int dm_store_geometry(struct dm_obj *o, const char *value, char *why)
{
	uint64_t v[4];
	int r = value_parse_geometry(value, v, why, STSFS_WHY_LEN);
	if (r)
		return r;
	struct kdm_geometry g = { .cylinders = (uint32_t)v[0], .heads = (uint32_t)v[1], .sectors = (uint32_t)v[2],
				  .start = v[3] };
	if (!dm_is_active(o, NULL))
		return dm_not_active(o, why);
	return kdm_set_geometry(o->obj.name, &g, why);
}

int dm_store_clear(struct dm_obj *o, const char *value, char *why)
{
	bool on;
	int r = value_parse_bool(value, &on, why, STSFS_WHY_LEN);
	if (r)
		return why_set(why, r, "clear takes 1 (drop the inactive table) or 0, not '%s'", value);
	if (!dm_is_active(o, NULL))
		return dm_not_active(o, why);
	return on ? kdm_clear(o->obj.name, why) : 0;
}
