/* The reaper (--reap): when no process is left in a tenant's pid namespace
 * (--tenancy pidns), its objects, or when no process runs as a tenant's uid
 * (--tenancy uid), its objects marked `ephemeral`, are torn down in
 * dependency order
 * (thin volumes, dm devices, thin pools, loops; owned images deleted) the
 * way rmdir would, after `echo 0 > active`. An object that cannot be
 * removed (its device still open elsewhere) is tried again each round and
 * reported once per reason; nothing is forced. */
#include "stsfs/tenancy.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dm.h"
#include "loop.h"
#include "registry.h"
#include "thin.h"
#include "stsfs/kernel.h"
#include "stsfs/log.h"

static pthread_t reaper;
static bool running;
static pthread_mutex_t stop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cond = PTHREAD_COND_INITIALIZER;
static bool stopping;

static void ctx_add(struct ctx *c, const char *name, const struct dir_kind *kind)
{
	c->comp[c->depth] = name;
	c->kinds[c->depth++] = kind;
	c->kind = kind;
}

static const struct file_def *find_active(const struct ctx *c)
{
	for (int t = 0; t < 3 && c->kind->files[t]; t++)
		for (const struct file_def *f = c->kind->files[t]; f->name; f++)
			if (strcmp(f->name, "active") == 0 && f->store)
				return f;
	return NULL;
}

/* What was last said of each object that could not be removed: a reason
 * is logged once, not every round. Only the reaper's thread uses it. */
#define SAID_SLOTS 256
static uint64_t said[SAID_SLOTS][2];

static uint64_t hash_of(const char *s, uint64_t h)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static bool new_reason(const char *obj, const char *sub, const char *why)
{
	uint64_t key = hash_of(sub ? sub : "", hash_of(obj, 14695981039346656037u)), msg = hash_of(why, key);
	uint64_t *slot = said[key % SAID_SLOTS];
	if (slot[0] == key && slot[1] == msg)
		return false;
	slot[0] = key;
	slot[1] = msg;
	return true;
}

/* Deactivates and removes kind/obj[/sub]; 0 when it is gone. */
static int teardown(const struct dir_kind *dirk, const char *kind, const char *obj, const char *sub)
{
	struct ctx c = { .kind = &root_kind };
	char tenant[TENANT_MAX];
	ctx_add(&c, kind, dirk);
	const struct dir_kind *k = dirk->child(&c, obj);
	if (!k)
		return 0;
	ctx_add(&c, obj, k);
	if (sub) {
		const struct dir_kind *vk = k->child ? k->child(&c, sub) : NULL;
		if (!vk)
			return 0;
		ctx_add(&c, sub, vk);
	}
	snprintf(c.tenant, sizeof(c.tenant), "%s", ctx_object_tenant(&c, tenant, sizeof(tenant)));
	tenant_scope_set(c.tenant);
	const struct file_def *active = find_active(&c);
	if (active)
		active->store(&c, "0");
	c.why[0] = '\0';
	int r = c.kind->remove ? c.kind->remove(&c) : -EPERM;
	if (r == 0)
		log_msg(L_INFO, "reap: tenant %s is gone: removed %s/%s%s%s", c.tenant, kind, obj, sub ? "/" : "",
			sub ? sub : "");
	else if (new_reason(obj, sub, c.why[0] ? c.why : strerror(-r)))
		log_msg(L_WARNING, "reap: tenant %s is gone: cannot remove %s/%s%s%s yet (tried again each second): %s",
			c.tenant, kind, obj, sub ? "/" : "", sub ? sub : "", c.why[0] ? c.why : strerror(-r));
	tenant_scope_set("");
	return r;
}

struct names {
	const char *tenant;
	bool unowned_only;
	bool ephemeral_only; /* uid mode: only what its tenant marked */
	char **v;
	size_t n, cap;
};

static void names_add(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		char **p = realloc(s->v, cap * sizeof(*p));
		if (!p)
			return;
		s->v = p;
		s->cap = cap;
	}
	if ((s->v[s->n] = strdup(name)))
		s->n++;
}

static void collect(const struct obj *o, void *arg)
{
	struct names *s = arg;
	char t[TENANT_MAX];
	tenant_split(o->name, t, sizeof(t));
	if (strcmp(t, s->tenant) == 0 && (!s->unowned_only || !o->owner[0]) && (!s->ephemeral_only || o->ephemeral))
		names_add(s, o->name);
}

/* Volumes as "POOL\nVOL" pairs. */
static void collect_vols(const struct obj *o, void *arg)
{
	struct names *s = arg;
	const struct thin_pool *p = (const struct thin_pool *)o;
	char t[TENANT_MAX], pair[OBJ_NAME_MAX + THIN_NAME_MAX + 2];
	tenant_split(o->name, t, sizeof(t));
	if (s->ephemeral_only && !o->ephemeral)
		return;
	for (size_t i = 0; strcmp(t, s->tenant) == 0 && i < p->nvols; i++) {
		snprintf(pair, sizeof(pair), "%s\n%s", o->name, p->vols[i].name);
		names_add(s, pair);
	}
}

static void names_clear(struct names *s)
{
	names_free(s->v, s->n);
	s->v = NULL;
	s->n = s->cap = 0;
}

static void reap_tenant(const char *tenant, bool ephemeral_only)
{
	struct names s = { .tenant = tenant, .ephemeral_only = ephemeral_only };
	thin_each_pool(collect_vols, &s);
	for (size_t i = 0; i < s.n; i++) {
		char *nl = strchr(s.v[i], '\n');
		*nl = '\0';
		teardown(&thin_dir_kind, "thin", s.v[i], nl + 1);
	}
	names_clear(&s);
	/* dm devices may stack: each pass removes those nothing uses now. */
	s.unowned_only = true;
	for (int pass = 0; pass < 8; pass++) {
		reg_each(&dm_registry, collect, &s);
		size_t left = s.n, removed = 0;
		for (size_t i = 0; i < s.n; i++)
			removed += teardown(&dm_dir_kind, "dm", s.v[i], NULL) == 0;
		names_clear(&s);
		if (!left || !removed)
			break;
	}
	s.unowned_only = false;
	thin_each_pool(collect, &s);
	for (size_t i = 0; i < s.n; i++)
		teardown(&thin_dir_kind, "thin", s.v[i], NULL);
	names_clear(&s);
	s.unowned_only = true;
	reg_each(&loop_registry, collect, &s);
	for (size_t i = 0; i < s.n; i++)
		teardown(&loop_dir_kind, "loop", s.v[i], NULL);
	names_clear(&s);
}

static bool has_u64(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static bool has_uid(const uid_t *v, size_t n, uid_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static void reap_round(void)
{
	char **tenants;
	size_t nt;
	if (tenants_list(&tenants, &nt) != 0)
		return;
	uint64_t *ns = NULL;
	uid_t *uids = NULL;
	size_t nns = 0, nuids = 0;
	if (nt && kproc_census(&ns, &nns, &uids, &nuids) == 0) {
		for (size_t i = 0; i < nt; i++) {
			if (strncmp(tenants[i], "pidns-", 6) == 0) {
				if (!has_u64(ns, nns, strtoull(tenants[i] + 6, NULL, 10)))
					reap_tenant(tenants[i], false);
			} else if (!has_uid(uids, nuids, (uid_t)strtoul(tenants[i], NULL, 10))) {
				reap_tenant(tenants[i], true);
			}
		}
	}
	free(ns);
	free(uids);
	names_free(tenants, nt);
}

static void *reaper_main(void *arg)
{
	pthread_mutex_lock(&stop_lock);
	while (!stopping) {
		pthread_mutex_unlock(&stop_lock);
		reap_round();
		pthread_mutex_lock(&stop_lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (!stopping)
			pthread_cond_timedwait(&stop_cond, &stop_lock, &ts);
	}
	pthread_mutex_unlock(&stop_lock);
	return NULL;
}

int reaper_start(void)
{
	if (!tenancy.reap || !tenancy_on() || running)
		return 0;
	int r = pthread_create(&reaper, NULL, reaper_main, NULL);
	if (r)
		return -r;
	running = true;
	return 0;
}

void reaper_stop(void)
{
	if (!running)
		return;
	pthread_mutex_lock(&stop_lock);
	stopping = true;
	pthread_cond_signal(&stop_cond);
	pthread_mutex_unlock(&stop_lock);
	pthread_join(reaper, NULL);
	running = false;
}
