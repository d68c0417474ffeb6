/* What one worker hands to the next through the supervisor: a memfd map
 * shared by every worker of a mount, holding the kernel's INIT request,
 * the node ids the kernel holds (a slot each) and, where the kernel cannot
 * resend requests (before Linux 6.9), each request a worker has read and not
 * yet answered. No FUSE library types: the supervisor uses it too. */
#ifndef STSFS_TAKEOVER_H
#define STSFS_TAKEOVER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAP_MAGIC 0x3170616d73667373ULL /* "ssfsmap1" */
#define MAP_INIT_MAX 4096
/* A request slot holds the largest request the kernel sends (1 MiB of
 * write data, the header and the page libfuse reserves). */
#define MAP_REQ_BUF ((1u << 20) + 8192)
#define MAP_REQ_SLOTS 192
#define MAP_NODE_SLOTS (1u << 19)
/* Values being written (an attribute value spread over several write(2)s,
 * a table checked per write and stored at close), so that a worker taking
 * over goes on with them. Larger values are not kept. */
#define MAP_VALUE_SLOTS 64
#define MAP_VALUE_MAX (64u << 10)

enum reqstate {
	REQ_FREE,    /* nobody's */
	REQ_READING, /* a worker thread's: a header in it is a request read
		      * and not answered yet */
	REQ_REPLAY,  /* a new worker is answering a dead worker's request */
};

struct reqslot {
	uint32_t state;
	uint32_t epoch; /* the worker that owns it */
};

struct valslot {
	uint64_t fh;  /* the file handle's id; 0: free */
	uint32_t len; /* written last: the bytes below it are the value */
	uint32_t pad;
};

struct map_header {
	uint64_t magic;
	uint32_t epoch;    /* bumped by each worker at start */
	uint32_t hwm;      /* node slots ever used: [1, hwm) */
	uint32_t init_len; /* the kernel's INIT request, as read */
	uint32_t pad;
	unsigned char init[MAP_INIT_MAX];
	struct reqslot req[MAP_REQ_SLOTS];
	struct valslot val[MAP_VALUE_SLOTS];
	/* The answer to the request in req[i], kept after it in the slot's
	 * buffer before it is written (0: none). Last in the header, so that a
	 * map made before it was added reads as having none. */
	uint32_t answer_len[MAP_REQ_SLOTS];
};

/* A node id is gen << 32 | slot: a freed slot comes back under a new id, so
 * a stale id the kernel still holds never names another object. */
struct nodeslot {
	uint64_t parent;
	uint64_t nlookup;
	uint32_t gen;
	uint8_t used;
	uint8_t hashed; /* its name still resolves to it (not renamed over) */
	uint8_t pad[2];
	char name[NAME_MAX + 1];
};

struct shared_map {
	struct map_header *hdr;
	unsigned char *reqbuf; /* MAP_REQ_SLOTS * MAP_REQ_BUF */
	struct nodeslot *nodes;
	unsigned char *values; /* MAP_VALUE_SLOTS * MAP_VALUE_MAX */
};

/* The supervisor: a new map holding INIT (the first request of the mount).
 * Returns the memfd, or -errno. */
int map_create(const void *init, size_t init_len);
/* Maps a map made by map_create (fd stays open). 0 or -errno. */
int map_attach(int fd, struct shared_map *m);
unsigned char *map_req_data(struct shared_map *m, unsigned slot);

/* The FUSE ABI facts the supervisor and the workers read off INIT. */
/* The kernel resends requests on FUSE_NOTIFY_RESEND (FUSE_HAS_RESEND,
 * protocol 7.40, Linux 6.9). */
bool init_has_resend(const unsigned char *init, size_t len);

#endif
