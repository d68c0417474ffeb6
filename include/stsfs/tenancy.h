/* Tenancy (--tenancy uid|pidns): each object belongs to the tenant that made
 * it. A tenant's object is kept under the internal name "TENANT:NAME" (its
 * state record, its image and its dm device are called so), which no user
 * can type: ':' is not allowed in names. The FUSE layer shows a tenant only
 * the names with its own prefix, without the prefix; the host sees its own
 * (unprefixed) objects and every tenant's under tenants/TENANT/. Tree layer:
 * no FUSE types. */
#ifndef STSFS_TENANCY_H
#define STSFS_TENANCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stsfs/tree.h"

/* "pidns-" and 20 digits, or a uid, and the NUL */
#define TENANT_MAX 32

enum tenancy_mode { TENANCY_OFF, TENANCY_UID, TENANCY_PIDNS };

/* Limits per tenant; -1: none. */
struct quota {
	long long loops, dm, thin;
	long long bytes;
};

struct tenancy_options {
	enum tenancy_mode mode;
	struct quota quota;
	bool reap;
};
extern struct tenancy_options tenancy;

static inline bool tenancy_on(void)
{
	return tenancy.mode != TENANCY_OFF;
}

/* "uid", "pidns" -> mode; -EINVAL otherwise. */
int tenancy_parse_mode(const char *s, enum tenancy_mode *mode);
/* "loops=N,dm=N,thin=N,bytes=SIZE" (any subset) -> q; -EINVAL with why. */
int tenancy_parse_quota(const char *s, struct quota *q, char *why, size_t whylen);

/* The tenant a request's caller belongs to: "" for the host. uid mode: its
 * uid unless 0; pidns mode: "pidns-INODE" unless it is the daemon's own pid
 * namespace. -ESRCH when the caller cannot be told (pidns mode, no pid). */
int tenant_of_caller(uid_t uid, pid_t pid, char *out, size_t len);

/* The internal name of a tenant's object: "TENANT:NAME" ("" tenant: NAME). */
int tenant_qualify(const char *tenant, const char *name, char *out, size_t len);
/* An internal name's tenant (into tenant, "" for none) and the name a user
 * sees (returned, inside internal). */
const char *tenant_split(const char *internal, char *tenant, size_t len);
/* loop/, dm/ and thin/: the directories whose objects belong to tenants. */
bool tenant_scoped_kind(const struct dir_kind *k);
/* The path's tenant: the tenant of c->comp[1] under loop/, dm/, thin/. */
const char *ctx_object_tenant(const struct ctx *c, char *tenant, size_t len);

/* The tenant whose names references resolve among, for the request this
 * thread serves ("" the host's); set by the FUSE layer per request, and by
 * the reaper. */
void tenant_scope_set(const char *tenant);
const char *tenant_scope(void);

/* A tenant's use. */
struct tenant_usage {
	long long loops, dm, thin;
	long long bytes;
};
void tenant_usage(const char *tenant, struct tenant_usage *u);
/* EDQUOT (with the limit in why) when one more object of kind ("loop",
 * "dm", "thin") would pass tenant's quota ("": the host, no quota). */
int tenant_quota_object(const char *kind, const char *tenant, char *why);
/* EDQUOT when an owned image of internal name's tenant growing from old to
 * new bytes would pass its bytes quota. */
int tenant_quota_bytes(const char *internal, uint64_t old_size, uint64_t new_size, char *why);

/* A reason as the tenant reads it: every "TENANT:" that starts a name in
 * msg is dropped (loop/1000:disk is its loop/disk). */
void tenant_unscope(char *msg, const char *tenant);

/* The tenant's own `error` for a directory above its objects (the root,
 * loop/, dm/, thin/). */
struct errslot *tenant_errslot(const char *tenant, const char *dir);

/* The tenants that have objects now (names malloc'd; free with names_free). */
int tenants_list(char ***names, size_t *n);

/* The reaper (--reap): a thread that removes the objects of tenants gone. */
int reaper_start(void);
void reaper_stop(void);

/* The object files tenancy adds to loop/NAME, dm/NAME and thin/POOL:
 * `ephemeral` (0/1), with --tenancy only. */
int tenancy_show_ephemeral(struct ctx *c, char **out);
int tenancy_store_ephemeral(struct ctx *c, const char *value);
bool tenancy_visible(struct ctx *c);
#define TENANCY_FILES                                                                                      \
	{ .name = "ephemeral", .perm = 0644, .show = tenancy_show_ephemeral, .store = tenancy_store_ephemeral, \
	  .visible = tenancy_visible }

extern const struct dir_kind tenants_kind;
extern const struct dir_kind tenant_view_kind;
extern const struct dir_kind quota_kind;

#endif
