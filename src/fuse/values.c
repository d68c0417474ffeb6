/* Values being written, kept in the shared map (takeover.h) by file handle
 * id: a worker that opens a dead worker's handle again goes on with the
 * value its writes had built, and its close stores it. */
#include "glue.h"

#include <stdlib.h>
#include <string.h>

static struct shared_map *map;

void values_attach(struct shared_map *m)
{
	map = m;
}

static struct valslot *find(uint64_t fh)
{
	for (unsigned i = 0; map && i < MAP_VALUE_SLOTS; i++)
		if (__atomic_load_n(&map->hdr->val[i].fh, __ATOMIC_ACQUIRE) == fh)
			return &map->hdr->val[i];
	return NULL;
}

static unsigned char *data_of(struct valslot *v)
{
	return map->values + (size_t)(v - map->hdr->val) * MAP_VALUE_MAX;
}

/* The value so far: bytes first, then its length. A value too large, or no
 * free slot, is not kept (a takeover then refuses the rest of it). */
void value_keep(uint64_t fh, const char *buf, size_t len)
{
	struct valslot *v = find(fh);
	if (!v && len <= MAP_VALUE_MAX) {
		for (unsigned i = 0; !v && i < MAP_VALUE_SLOTS; i++) {
			uint64_t free_id = 0;
			if (__atomic_compare_exchange_n(&map->hdr->val[i].fh, &free_id, fh, false, __ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED)) {
				v = &map->hdr->val[i];
				v->len = 0;
			}
		}
	}
	if (!v)
		return;
	if (len > MAP_VALUE_MAX) {
		value_drop(fh);
		return;
	}
	memcpy(data_of(v), buf, len);
	__atomic_store_n(&v->len, (uint32_t)len, __ATOMIC_RELEASE);
}

void value_drop(uint64_t fh)
{
	struct valslot *v = find(fh);
	if (v) {
		v->len = 0;
		__atomic_store_n(&v->fh, 0, __ATOMIC_RELEASE);
	}
}

/* The value a dead worker's handle had: a copy (malloc'd) and its length,
 * or -1 when none was kept. */
ssize_t value_find(uint64_t fh, char **out)
{
	struct valslot *v = find(fh);
	if (!v)
		return -1;
	size_t len = __atomic_load_n(&v->len, __ATOMIC_ACQUIRE);
	*out = malloc(len + 1);
	if (!*out)
		return -1;
	memcpy(*out, data_of(v), len);
	return (ssize_t)len;
}
