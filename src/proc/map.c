/* The map shared by the workers of one mount (include/stsfs/takeover.h):
 * a memfd the supervisor keeps open, sized once; the kernel fills only the
 * pages used. */
#include "stsfs/takeover.h"

#include <errno.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef FUSE_HAS_RESEND
#define FUSE_HAS_RESEND (1ULL << 39)
#endif

#define PAGE 4096u
#define ROUND(x) (((x) + PAGE - 1) / PAGE * PAGE)

static size_t hdr_size(void)
{
	return ROUND(sizeof(struct map_header));
}

static size_t reqs_size(void)
{
	return (size_t)MAP_REQ_SLOTS * MAP_REQ_BUF;
}

static size_t nodes_size(void)
{
	return ROUND((size_t)MAP_NODE_SLOTS * sizeof(struct nodeslot));
}

static size_t map_size(void)
{
	return hdr_size() + reqs_size() + nodes_size() + (size_t)MAP_VALUE_SLOTS * MAP_VALUE_MAX;
}

int map_create(const void *init, size_t init_len)
{
	if (init_len > MAP_INIT_MAX)
		return -E2BIG;
	int fd = memfd_create("stsfs-map", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct shared_map m;
	int r = ftruncate(fd, (off_t)map_size()) < 0 ? -errno : map_attach(fd, &m);
	if (r < 0) {
		close(fd);
		return r;
	}
	m.hdr->magic = MAP_MAGIC;
	m.hdr->hwm = FUSE_ROOT_ID + 1;
	m.hdr->init_len = (uint32_t)init_len;
	memcpy(m.hdr->init, init, init_len);
	munmap(m.hdr, map_size());
	return fd;
}

int map_attach(int fd, struct shared_map *m)
{
	void *p = mmap(NULL, map_size(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	m->hdr = p;
	m->reqbuf = (unsigned char *)p + hdr_size();
	m->nodes = (struct nodeslot *)(m->reqbuf + reqs_size());
	m->values = (unsigned char *)m->nodes + nodes_size();
	if (m->hdr->magic && m->hdr->magic != MAP_MAGIC) {
		munmap(p, map_size());
		return -EINVAL;
	}
	return 0;
}

unsigned char *map_req_data(struct shared_map *m, unsigned slot)
{
	return m->reqbuf + (size_t)slot * MAP_REQ_BUF;
}

bool init_has_resend(const unsigned char *init, size_t len)
{
	struct fuse_in_header ih;
	struct fuse_init_in in;
	if (len < sizeof(ih) + sizeof(in))
		return false;
	memcpy(&ih, init, sizeof(ih));
	memcpy(&in, init + sizeof(ih), sizeof(in));
	if (ih.opcode != FUSE_INIT || in.major != 7 || in.minor < 40 || !(in.flags & FUSE_INIT_EXT))
		return false;
	return ((uint64_t)in.flags2 << 32) & FUSE_HAS_RESEND;
}
