/* Tenancy (include/stsfs/tenancy.h, docs/tenancy.md): tenants, their names,
 * quotas and error slots; the host's tenants/ and quota/ directories. */
#include "stsfs/tenancy.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "dm.h"
#include "registry.h"
#include "thin.h"
#include "stsfs/kernel.h"
#include "stsfs/value.h"

struct tenancy_options tenancy = { .quota = { -1, -1, -1, -1 } };

int tenancy_parse_mode(const char *s, enum tenancy_mode *mode)
{
	if (strcmp(s, "uid") == 0)
		*mode = TENANCY_UID;
	else if (strcmp(s, "pidns") == 0)
		*mode = TENANCY_PIDNS;
	else
		return -EINVAL;
	return 0;
}

int tenancy_parse_quota(const char *s, struct quota *q, char *why, size_t whylen)
{
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int r = 0;
	for (char *item = strtok_r(copy, ",", &save); item && !r; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		uint64_t v = 0;
		if (eq)
			*eq++ = '\0';
		if (!eq || !*eq) {
			snprintf(why, whylen, "quota '%s': write KEY=VALUE (loops=N, dm=N, thin=N, bytes=SIZE)", item);
			r = -EINVAL;
		} else if (strcmp(item, "bytes") == 0) {
			r = value_parse_size(eq, &v, why, whylen);
			q->bytes = (long long)v;
		} else if (strcmp(item, "loops") == 0 || strcmp(item, "dm") == 0 || strcmp(item, "thin") == 0) {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(eq, &end, 10);
			if (*end || errno || eq[0] == '-' || n > 1000000) {
				snprintf(why, whylen, "quota %s=%s: a count from 0 to 1000000", item, eq);
				r = -EINVAL;
			}
			long long *field = item[0] == 'l' ? &q->loops : item[0] == 'd' ? &q->dm : &q->thin;
			*field = (long long)n;
		} else {
			snprintf(why, whylen, "unknown quota '%s' (loops, dm, thin, bytes)", item);
			r = -EINVAL;
		}
	}
	free(copy);
	return r;
}

int tenant_of_caller(uid_t uid, pid_t pid, char *out, size_t len)
{
	out[0] = '\0';
	if (tenancy.mode == TENANCY_UID) {
		if (uid != 0)
			snprintf(out, len, "%u", (unsigned)uid);
		return 0;
	}
	if (tenancy.mode != TENANCY_PIDNS)
		return 0;
	uint64_t ns, mine;
	if (pid <= 0 || kproc_pidns(pid, &ns) != 0)
		return -ESRCH;
	if (kproc_pidns(0, &mine) == 0 && ns != mine)
		snprintf(out, len, "pidns-%" PRIu64, ns);
	return 0;
}

int tenant_qualify(const char *tenant, const char *name, char *out, size_t len)
{
	int n = tenant[0] ? snprintf(out, len, "%s:%s", tenant, name) : snprintf(out, len, "%s", name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *tenant_split(const char *internal, char *tenant, size_t len)
{
	size_t p = value_tenant_prefix(internal);
	snprintf(tenant, len, "%.*s", p ? (int)(p - 1) : 0, internal);
	return internal + p;
}

bool tenant_scoped_kind(const struct dir_kind *k)
{
	return k == &loop_dir_kind || k == &dm_dir_kind || k == &thin_dir_kind;
}

const char *ctx_object_tenant(const struct ctx *c, char *tenant, size_t len)
{
	tenant[0] = '\0';
	if (c->depth >= 2 && tenant_scoped_kind(c->kinds[0]))
		tenant_split(c->comp[1], tenant, len);
	return tenant;
}

static __thread char scope[TENANT_MAX];

void tenant_scope_set(const char *tenant)
{
	snprintf(scope, sizeof(scope), "%s", tenant ? tenant : "");
}

const char *tenant_scope(void)
{
	return scope;
}

/* ---- use and quotas ---- */

struct usage_walk {
	const char *tenant;
	struct tenant_usage *u;
};

static bool of_tenant(const char *internal, const char *tenant)
{
	char t[TENANT_MAX];
	tenant_split(internal, t, sizeof(t));
	return strcmp(t, tenant) == 0;
}

/* Loops a user made count as loops; every owned image (a pool's too) as bytes. */
static void count_loop(const struct obj *o, void *arg)
{
	struct usage_walk *w = arg;
	const struct loop_obj *lo = (const struct loop_obj *)o;
	if (!of_tenant(o->name, w->tenant))
		return;
	/* A pool's own images are its data_size (count_pool). */
	if (o->owner[0])
		return;
	w->u->loops++;
	if (!lo->backing[0])
		w->u->bytes += (long long)lo->size;
}

static void count_dm(const struct obj *o, void *arg)
{
	struct usage_walk *w = arg;
	if (of_tenant(o->name, w->tenant) && !o->owner[0])
		w->u->dm++;
}

static void count_pool(const struct obj *o, void *arg)
{
	struct usage_walk *w = arg;
	const struct thin_pool *p = (const struct thin_pool *)o;
	if (!of_tenant(o->name, w->tenant))
		return;
	w->u->thin += 1 + (long long)p->nvols;
	if (!p->data_dev[0])
		w->u->bytes += (long long)p->data_size;
}

void tenant_usage(const char *tenant, struct tenant_usage *u)
{
	memset(u, 0, sizeof(*u));
	struct usage_walk w = { tenant, u };
	reg_each(&loop_registry, count_loop, &w);
	reg_each(&dm_registry, count_dm, &w);
	thin_each_pool(count_pool, &w);
}

static const char *quota_word(const char *kind)
{
	return strcmp(kind, "loop") == 0 ? "loops" : kind;
}

int tenant_quota_object(const char *kind, const char *tenant, char *why)
{
	if (!tenant[0])
		return 0;
	long long limit = strcmp(kind, "loop") == 0 ? tenancy.quota.loops
			  : strcmp(kind, "dm") == 0 ? tenancy.quota.dm
						     : tenancy.quota.thin;
	if (limit < 0)
		return 0;
	struct tenant_usage u;
	tenant_usage(tenant, &u);
	long long used = strcmp(kind, "loop") == 0 ? u.loops : strcmp(kind, "dm") == 0 ? u.dm : u.thin;
	if (used < limit)
		return 0;
	return why_set(why, -EDQUOT, "quota: tenant %s has %lld %s object%s of %lld (--quota %s=%lld)", tenant, used,
		       kind, used == 1 ? "" : "s", limit, quota_word(kind), limit);
}

int tenant_quota_bytes(const char *internal, uint64_t old_size, uint64_t new_size, char *why)
{
	char tenant[TENANT_MAX];
	tenant_split(internal, tenant, sizeof(tenant));
	if (!tenant[0] || tenancy.quota.bytes < 0 || new_size <= old_size)
		return 0;
	struct tenant_usage u;
	tenant_usage(tenant, &u);
	/* u counts old_size already (the object's configured size). */
	long long after = u.bytes - (long long)old_size + (long long)new_size;
	if (after <= tenancy.quota.bytes)
		return 0;
	return why_set(why, -EDQUOT, "quota: tenant %s would have %lld bytes of images, over its %lld (--quota bytes=%lld)",
		       tenant, after, tenancy.quota.bytes, tenancy.quota.bytes);
}

/* ---- ephemeral ---- */

bool tenancy_visible(struct ctx *c)
{
	return tenancy_on();
}

static struct registry *registry_of(const struct ctx *c)
{
	if (c->depth != 2)
		return NULL;
	return c->kinds[0] == &loop_dir_kind ? &loop_registry
	       : c->kinds[0] == &dm_dir_kind ? &dm_registry
	       : c->kinds[0] == &thin_dir_kind ? thin_registry()
					       : NULL;
}

int tenancy_show_ephemeral(struct ctx *c, char **out)
{
	struct registry *reg = registry_of(c);
	struct obj *o = reg ? reg_get(reg, c->comp[1]) : NULL;
	if (!o)
		return -ENOENT;
	int r = show_text(out, "%d\n", o->ephemeral);
	reg_put(reg, o);
	return r;
}

int tenancy_store_ephemeral(struct ctx *c, const char *value)
{
	bool on;
	int r = value_parse_bool(value, &on, c->why, sizeof(c->why));
	struct registry *reg = registry_of(c);
	struct obj *o = !r && reg ? reg_get(reg, c->comp[1]) : NULL;
	if (r || !o)
		return r ? r : -ENOENT;
	pthread_mutex_lock(&o->lock);
	r = obj_may_change(o, c->why);
	bool was = o->ephemeral;
	if (!r && was != on) {
		o->ephemeral = on;
		r = reg->save(o, c->why);
		if (r)
			o->ephemeral = was;
	}
	pthread_mutex_unlock(&o->lock);
	reg_put(reg, o);
	return r;
}

void tenant_unscope(char *msg, const char *tenant)
{
	char prefix[TENANT_MAX + 2];
	size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "%s:", tenant);
	if (!tenant[0] || pl >= sizeof(prefix))
		return;
	for (char *at = msg; (at = strstr(at, prefix));) {
		bool starts = at == msg || !(isalnum((unsigned char)at[-1]) || strchr("-_.+:", at[-1]));
		if (starts)
			memmove(at, at + pl, strlen(at + pl) + 1);
		else
			at++;
	}
}

/* ---- error slots of the directories above a tenant's objects ---- */

struct tenant_err {
	char tenant[TENANT_MAX];
	char dir[8];
	struct errslot err;
	struct tenant_err *next;
};
static pthread_mutex_t errs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tenant_err *errs;
static struct errslot no_slot = ERRSLOT_INIT;

struct errslot *tenant_errslot(const char *tenant, const char *dir)
{
	pthread_mutex_lock(&errs_lock);
	struct tenant_err *e = errs;
	while (e && (strcmp(e->tenant, tenant) != 0 || strcmp(e->dir, dir) != 0))
		e = e->next;
	if (!e && (e = calloc(1, sizeof(*e)))) {
		snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
		snprintf(e->dir, sizeof(e->dir), "%s", dir);
		pthread_mutex_init(&e->err.lock, NULL);
		e->next = errs;
		errs = e;
	}
	pthread_mutex_unlock(&errs_lock);
	return e ? &e->err : &no_slot;
}

/* ---- tenants/ and quota/ (the host's) ---- */

struct tenant_set {
	char **names;
	size_t n, cap;
	int err;
};

static void add_tenant(struct tenant_set *s, const char *internal)
{
	char t[TENANT_MAX];
	tenant_split(internal, t, sizeof(t));
	if (!t[0] || s->err)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], t) == 0)
			return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **p = realloc(s->names, cap * sizeof(*p));
		if (!p) {
			s->err = -ENOMEM;
			return;
		}
		s->names = p;
		s->cap = cap;
	}
	if (!(s->names[s->n] = strdup(t)))
		s->err = -ENOMEM;
	else
		s->n++;
}

static void add_obj_tenant(const struct obj *o, void *arg)
{
	add_tenant(arg, o->name);
}

int tenants_list(char ***names, size_t *n)
{
	struct tenant_set s = { 0 };
	reg_each(&loop_registry, add_obj_tenant, &s);
	reg_each(&dm_registry, add_obj_tenant, &s);
	thin_each_pool(add_obj_tenant, &s);
	if (s.err) {
		names_free(s.names, s.n);
		return s.err;
	}
	*names = s.names;
	*n = s.n;
	return 0;
}

static bool valid_tenant(const char *name)
{
	char probe[TENANT_MAX + 2];
	if (strlen(name) >= TENANT_MAX)
		return false;
	snprintf(probe, sizeof(probe), "%s:", name);
	bool pidns = strncmp(name, "pidns-", 6) == 0;
	return value_tenant_prefix(probe) == strlen(probe) && (tenancy.mode == TENANCY_PIDNS ? pidns : !pidns) &&
	       strtoul(pidns ? name + 6 : name, NULL, 10) != 0; /* uid 0 is the host */
}

static int list_tenants(struct ctx *c, int (*emit)(void *arg, const char *name), void *arg)
{
	char **names;
	size_t n;
	int r = tenants_list(&names, &n);
	if (r)
		return r;
	/* Records of the other mode (the daemon restarted with another
	 * --tenancy) stay out of sight. */
	for (size_t i = 0; !r && i < n; i++)
		r = valid_tenant(names[i]) ? emit(arg, names[i]) : 0;
	names_free(names, n);
	return r;
}

static const struct dir_kind *tenant_child(struct ctx *c, const char *name)
{
	return valid_tenant(name) ? &tenant_view_kind : NULL;
}

static struct errslot tenants_error = ERRSLOT_INIT;
static struct errslot *tenants_errslot(struct ctx *c)
{
	return &tenants_error;
}

const struct dir_kind tenants_kind = {
	.name = "tenants",
	.files = { reg_dir_files },
	.list = list_tenants,
	.child = tenant_child,
	.errslot = tenants_errslot,
};

/* tenants/TENANT: the tenant's tree as it sees it (node.c rebases the
 * paths below it onto the root, with the tenant set). */
static const struct subdir_def view_subdirs[] = {
	{ .name = "loop", .kind = &loop_dir_kind },
	{ .name = "dm", .kind = &dm_dir_kind },
	{ .name = "thin", .kind = &thin_dir_kind },
	{ NULL },
};

const struct dir_kind tenant_view_kind = {
	.name = "tenant",
	.subdirs = view_subdirs,
	.errslot = tenants_errslot,
};

static int show_limit(struct kv_block *b, const char *key, long long v)
{
	return v < 0 ? kv_add_str(b, key, "unlimited") : kv_add_u64(b, key, (uint64_t)v);
}

static int kv_usage(struct ctx *c, struct kv_doc *doc)
{
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b || c->depth < 2)
		return -ENOMEM;
	struct tenant_usage u;
	tenant_usage(c->comp[1], &u);
	int r = kv_add_str(b, "tenant", c->comp[1]);
	r = r ? r : kv_add_u64(b, "loops", (uint64_t)u.loops);
	r = r ? r : show_limit(b, "loops_limit", tenancy.quota.loops);
	r = r ? r : kv_add_u64(b, "dm", (uint64_t)u.dm);
	r = r ? r : show_limit(b, "dm_limit", tenancy.quota.dm);
	r = r ? r : kv_add_u64(b, "thin", (uint64_t)u.thin);
	r = r ? r : show_limit(b, "thin_limit", tenancy.quota.thin);
	r = r ? r : kv_add_u64(b, "bytes", (uint64_t)u.bytes);
	r = r ? r : show_limit(b, "bytes_limit", tenancy.quota.bytes);
	return r;
}

static int kv_limits(struct ctx *c, struct kv_doc *doc)
{
	struct kv_block *b = kv_doc_add_block(doc);
	if (!b)
		return -ENOMEM;
	int r = show_limit(b, "loops", tenancy.quota.loops);
	r = r ? r : show_limit(b, "dm", tenancy.quota.dm);
	r = r ? r : show_limit(b, "thin", tenancy.quota.thin);
	r = r ? r : show_limit(b, "bytes", tenancy.quota.bytes);
	return r;
}

static const struct file_def quota_files[] = {
	{ .name = "limits", .perm = 0444, .kv = kv_limits },
	{ .name = "error", .perm = 0444, .show = show_error_file },
	{ NULL },
};

static const struct file_def quota_tenant_files[] = {
	{ .name = "usage", .perm = 0444, .kv = kv_usage },
	{ NULL },
};

static const struct dir_kind quota_tenant_kind = {
	.name = "quota-tenant",
	.files = { quota_tenant_files },
};

static const struct dir_kind *quota_child(struct ctx *c, const char *name)
{
	return valid_tenant(name) ? &quota_tenant_kind : NULL;
}

const struct dir_kind quota_kind = {
	.name = "quota",
	.files = { quota_files },
	.list = list_tenants,
	.child = quota_child,
	.errslot = tenants_errslot,
};
