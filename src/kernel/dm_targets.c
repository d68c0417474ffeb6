/* Which device-mapper target types the kernel can take: the ones it lists
 * (DM_LIST_VERSIONS), and the ones it would load a module for when a table
 * names them. On a table load the kernel asks for module "dm-TARGET"
 * (request_module), which modprobe finds as a module of that name or an
 * alias in the running kernel's module directory. Nothing is loaded here. */
#include "stsfs/kernel.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stsfs/dm_ref.h"

/* modprobe treats '-' and '_' in module names alike. */
static bool same_module(const char *a, size_t alen, const char *b)
{
	size_t i;
	for (i = 0; i < alen && b[i]; i++) {
		char x = a[i] == '-' ? '_' : a[i], y = b[i] == '-' ? '_' : b[i];
		if (x != y)
			return false;
	}
	return i == alen && !b[i];
}

/* A module file's name without directory and .ko[.gz|.xz|.zst]. */
static bool file_is_module(const char *path, size_t len, const char *module)
{
	const char *base = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			base = path + i + 1;
	size_t blen = len - (size_t)(base - path);
	static const char *const ext[] = { ".ko", ".ko.gz", ".ko.xz", ".ko.zst" };
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		size_t el = strlen(ext[i]);
		if (blen > el && memcmp(base + blen - el, ext[i], el) == 0)
			return same_module(base, blen - el, module);
	}
	return false;
}

#define MAX_CANDIDATES 8

struct candidates {
	char name[MAX_CANDIDATES][128];
	size_t n;
};

static void add_candidate(struct candidates *c, const char *name, size_t len)
{
	if (c->n < MAX_CANDIDATES && len < sizeof(c->name[0])) {
		memcpy(c->name[c->n], name, len);
		c->name[c->n++][len] = '\0';
	}
}

/* "alias PATTERN MODULE" lines whose PATTERN matches want. */
static void scan_aliases(const char *dir, const char *file, const char *want, struct candidates *c)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		char *save = NULL, *kw = strtok_r(line, " \t\n", &save);
		char *pat = strtok_r(NULL, " \t\n", &save), *mod = strtok_r(NULL, " \t\n", &save);
		if (kw && pat && mod && strcmp(kw, "alias") == 0 && fnmatch(pat, want, 0) == 0)
			add_candidate(c, mod, strlen(mod));
	}
	free(line);
	fclose(f);
}

/* In modules.builtin ("PATH.ko" per line) or modules.dep ("PATH: DEPS"
 * per line, the file present): 1 builtin, 2 module file, 0 neither. */
static int scan_modules(const char *dir, const char *file, const struct candidates *c, char *found,
			size_t foundlen)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	bool dep = strcmp(file, "modules.dep") == 0;
	char *line = NULL;
	size_t cap = 0;
	int hit = 0;
	while (!hit && getline(&line, &cap, f) > 0) {
		size_t len = strcspn(line, dep ? ":\n" : "\n");
		for (size_t i = 0; i < c->n && !hit; i++) {
			if (!file_is_module(line, len, c->name[i]))
				continue;
			line[len] = '\0';
			if (line[0] == '/')
				snprintf(path, sizeof(path), "%s", line);
			else
				snprintf(path, sizeof(path), "%s/%s", dir, line);
			if (!dep)
				hit = 1;
			else if (access(path, R_OK) == 0)
				hit = 2;
			if (hit)
				snprintf(found, foundlen, "%s", path);
		}
	}
	free(line);
	fclose(f);
	return hit;
}

static bool listed(const char *list, const char *type)
{
	size_t tl = strlen(type);
	for (const char *l = list; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, type, tl) == 0 && l[tl] == ' ')
			return true;
	return false;
}

static bool modules_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/modules_disabled", "re");
	int v = 0;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v == 1;
}

void kdm_modules_dir(char *buf, size_t len)
{
	const char *env = getenv("STSFS_MODULES_DIR");
	if (env && env[0]) {
		snprintf(buf, len, "%s", env);
		return;
	}
	char rel[256];
	ksys_kernel_release(rel, sizeof(rel));
	snprintf(buf, len, "/lib/modules/%s", rel);
}

int kdm_target_known(const char *type, char *why)
{
	char *list = NULL;
	if (kdm_available(why) != 0 || kdm_targets(&list, why) != 0)
		return -ENODEV;
	bool loaded = listed(list, type);
	free(list);
	if (loaded)
		return 0;

	char dir[4096], want[DM_TARGET_NAME_MAX + 8], found[4096] = "";
	kdm_modules_dir(dir, sizeof(dir));
	snprintf(want, sizeof(want), "dm-%s", type);
	struct candidates c = { .n = 0 };
	add_candidate(&c, want, strlen(want));
	scan_aliases(dir, "modules.alias", want, &c);
	scan_aliases(dir, "modules.builtin.alias", want, &c);
	int hit = scan_modules(dir, "modules.builtin", &c, found, sizeof(found));
	if (!hit)
		hit = scan_modules(dir, "modules.dep", &c, found, sizeof(found));
	if (hit == 1)
		return 0; /* built in: the kernel has it once device-mapper is up */
	if (hit == 2 && !modules_disabled())
		return 0;
	if (hit == 2)
		return why_set(why, -EINVAL,
			       "unknown target type '%s': not loaded, and module %s cannot be loaded "
			       "(/proc/sys/kernel/modules_disabled is 1)",
			       type, found);
	return why_set(why, -EINVAL, "unknown target type '%s': the kernel does not list it and %s has no module %s",
		       type, dir, want);
}
