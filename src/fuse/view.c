/* What each caller sees with --tenancy (docs/tenancy.md): a tenant's names
 * in loop/, dm/ and thin/ are its objects' internal names without the
 * "TENANT:" prefix; others' objects, the kernel's other devices, tenants/
 * and quota/ do not exist for it. Every request that names a path checks
 * here, whatever the kernel's caches held: the dentry cache is shared by
 * all callers, so the names that differ between views are never cached
 * (view_cached) and a node reached another way is refused. */
#include "glue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stsfs/tenancy.h"

bool view_scoped(const struct ctx *c)
{
	return tenancy_on() && c->depth == 1 && tenant_scoped_kind(c->kind);
}

int view_enter(fuse_req_t req, struct ctx *c)
{
	if (!tenancy_on())
		return 0;
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	char t[TENANT_MAX];
	if (tenant_of_caller(fc->uid, fc->pid, t, sizeof(t)) != 0)
		return -EACCES;
	c->tenant_caller = t[0] != '\0';
	if (!c->tenant_caller)
		return 0;
	bool host_only = c->via_tenants || (c->depth >= 1 && (c->kinds[0] == &tenants_kind || c->kinds[0] == &quota_kind));
	if (host_only || (c->depth >= 2 && strcmp(c->tenant, t) != 0))
		return -ENOENT;
	if (c->depth <= 1)
		snprintf(c->tenant, sizeof(c->tenant), "%s", t);
	tenant_scope_set(c->tenant);
	return 0;
}

/* The kind directory's own files (error) are everyone's. */
static bool fixed_file(const struct ctx *c, const char *name)
{
	for (int t = 0; t < 3 && c->kind->files[t]; t++)
		for (const struct file_def *f = c->kind->files[t]; f->name; f++) {
			size_t n = strlen(f->name);
			if (strncmp(name, f->name, n) == 0 && (!name[n] || (f->kv && strcmp(name + n, ".json") == 0)))
				return true;
		}
	return false;
}

int view_name(struct ctx *c, const char *name, char *out, size_t len)
{
	if (!view_scoped(c) || fixed_file(c, name))
		return strlen(name) < len ? (memcpy(out, name, strlen(name) + 1), 0) : -ENAMETOOLONG;
	if (strchr(name, ':'))
		return why_set(c->why, -ENOENT, "'%s': names have no ':' (it marks a tenant's objects)", name);
	return tenant_qualify(c->tenant, name, out, len);
}

const char *view_shown(const struct ctx *c, const char *internal)
{
	if (!view_scoped(c))
		return internal;
	char t[TENANT_MAX];
	const char *shown = tenant_split(internal, t, sizeof(t));
	return strcmp(t, c->tenant) == 0 ? shown : NULL;
}

bool view_cached(const struct ctx *c, const char *name, bool cached)
{
	if (!tenancy_on())
		return cached;
	if (view_scoped(c))
		return false;
	if (c->depth == 0 && (strcmp(name, "tenants") == 0 || strcmp(name, "quota") == 0))
		return false;
	return cached;
}
