/* Open file handles as ids the kernel keeps (fuse_file_info.fh): the epoch
 * of the worker that opened it, the open flags, a serial. A worker finds its
 * own handles here; a dead worker's ids, which the kernel still holds after
 * a takeover, carry what is needed to open the file again. */
#include "glue.h"

#include <fcntl.h>
#include <stdlib.h>

#define BUCKETS 1024
#define SERIAL_BITS 40
#define FLAG_BITS 8

struct entry {
	uint64_t id;
	void *obj;
	struct entry *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *table[BUCKETS];
static uint64_t epoch, serial;

enum { F_READ = 1, F_WRITE = 2, F_DIRECT = 4, F_DIR = 8 };

void handles_start(uint32_t worker_epoch)
{
	epoch = worker_epoch & 0xffff;
}

static unsigned flag_bits(int flags, bool dir)
{
	int acc = flags & O_ACCMODE;
	return (acc != O_WRONLY ? F_READ : 0) | (acc != O_RDONLY ? F_WRITE : 0) | (flags & O_DIRECT ? F_DIRECT : 0) |
	       (dir ? F_DIR : 0);
}

int handle_open_flags(uint64_t id)
{
	unsigned f = (unsigned)(id >> SERIAL_BITS) & ((1u << FLAG_BITS) - 1);
	int acc = (f & F_READ) && (f & F_WRITE) ? O_RDWR : (f & F_WRITE) ? O_WRONLY : O_RDONLY;
	return acc | (f & F_DIRECT ? O_DIRECT : 0);
}

bool handle_foreign(uint64_t id)
{
	return id >> (SERIAL_BITS + FLAG_BITS) != epoch;
}

static struct entry **bucket(uint64_t id)
{
	return &table[(id * 11400714819323198485u) >> 54];
}

static void insert_locked(uint64_t id, void *obj, struct entry *e)
{
	e->id = id;
	e->obj = obj;
	e->next = *bucket(id);
	*bucket(id) = e;
}

uint64_t handle_new(void *obj, int flags, bool dir)
{
	struct entry *e = malloc(sizeof(*e));
	if (!e)
		return 0;
	pthread_mutex_lock(&lock);
	uint64_t id = epoch << (SERIAL_BITS + FLAG_BITS) | (uint64_t)flag_bits(flags, dir) << SERIAL_BITS |
		      (++serial & ((1ull << SERIAL_BITS) - 1));
	insert_locked(id, obj, e);
	pthread_mutex_unlock(&lock);
	return id;
}

void *handle_get(uint64_t id)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *bucket(id);
	while (e && e->id != id)
		e = e->next;
	void *obj = e ? e->obj : NULL;
	pthread_mutex_unlock(&lock);
	return obj;
}

/* A dead worker's handle opened again: the first of two racing threads
 * wins, and the loser frees its copy. */
void *handle_adopt(uint64_t id, void *obj)
{
	struct entry *e = malloc(sizeof(*e));
	pthread_mutex_lock(&lock);
	struct entry *have = *bucket(id);
	while (have && have->id != id)
		have = have->next;
	void *winner = have ? have->obj : e ? obj : NULL;
	if (!have && e)
		insert_locked(id, obj, e);
	else
		free(e);
	pthread_mutex_unlock(&lock);
	return winner;
}

void *handle_take(uint64_t id)
{
	pthread_mutex_lock(&lock);
	struct entry **pp = bucket(id);
	while (*pp && (*pp)->id != id)
		pp = &(*pp)->next;
	struct entry *e = *pp;
	if (e)
		*pp = e->next;
	pthread_mutex_unlock(&lock);
	void *obj = e ? e->obj : NULL;
	free(e);
	return obj;
}
