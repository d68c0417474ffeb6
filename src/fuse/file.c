/* Files: attribute text rendered at open, values applied per write,
 * `data` spliced to and from the device, poll(2) and blocking `wait`. */
#include "glue.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stsfs/state.h"
#include "stsfs/value.h"
#include "watch.h"

struct fh {
	struct node *node;
	char *text;       /* rendered at open */
	size_t len;
	char *wbuf;       /* value being written */
	size_t wlen;
	bool pending;     /* a checked value (file_def.check) to store at close */
	int refused;      /* errno of a refused write: later writes fail too */
	int fd;           /* FT_DATA: the device */
	int dfd;          /* FT_DATA: the device, O_DIRECT (-1 where it cannot) */
	dev_t dev;        /* FT_DATA: the device (block_data_opened) */
	bool direct;      /* FT_DATA: the writer asked for O_DIRECT */
	/* Pollable files: the event counter the text was rendered at. */
	uint64_t id;
	bool has_event;
	uint32_t event_nr;
	char event_key[160];
	bool was_read;
	bool writer;
	/* Opened again by a worker that took over: what was written before
	 * went to the dead worker. */
	bool reopened;
	bool wrote; /* a write reached this worker */
	uint64_t fhid; /* the id the kernel knows it by */
	/* Reads of one handle may run on several threads at once; a read that
	 * renders afresh must not free text another is replying from. */
	pthread_mutex_t text_lock;
};

static void fh_free(struct fh *h)
{
	if (h->fd >= 0) {
		close(h->fd);
		block_data_closed(h->dev);
	}
	if (h->dfd >= 0)
		close(h->dfd);
	pthread_mutex_destroy(&h->text_lock);
	free(h->text);
	free(h->wbuf);
	free(h);
}

static uint64_t next_fh_id(void)
{
	static uint64_t last;
	return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static int render(struct ctx *c, const struct file_def *f, bool json, char **out)
{
	if (f->show)
		return f->show(c, out);
	struct kv_doc doc = { 0 };
	int r = f->kv(c, &doc);
	if (r == 0) {
		*out = json ? kv_render_json(&doc, f->kv_array) : kv_render_text(&doc);
		if (!*out)
			r = -ENOMEM;
	}
	kv_doc_free(&doc);
	return r;
}

/* Renders h's file; for a pollable file first notes the event counter, so
 * an event during the rendering wakes a later poll rather than being lost. */
static int render_fh(struct ctx *c, struct fh *h)
{
	const struct file_def *f = h->node->file;
	if (f->pollable && c->kind->event_nr)
		h->has_event = c->kind->event_nr(c, &h->event_nr, h->event_key, sizeof(h->event_key)) == 0;
	char *text = NULL;
	int r = render(c, f, h->node->json, &text);
	if (r == 0) {
		free(h->text);
		h->text = text;
		h->len = strlen(text);
	}
	return r;
}

/* `wait`: blocks until the object's event counter moves past the one it
 * has now. An inactive object returns at once; rendering says why. */
static int wait_event(struct ctx *c)
{
	uint32_t nr;
	char key[sizeof(((struct fh *)NULL)->event_key)];
	if (!c->kind->event_nr || c->kind->event_nr(c, &nr, key, sizeof(key)) != 0)
		return 0;
	int r = watch_block(c->kind, key, nr, c->cancel);
	if (r == -EAGAIN)
		return why_set(c->why, r, "cannot start a thread to wait for %s", key);
	return r;
}

static int open_data(struct ctx *c, struct fh *h, int flags)
{
	struct blockref b;
	int r = c->kind->block(c, &b);
	if (r)
		return r;
	bool wr = (flags & O_ACCMODE) != O_RDONLY;
	if (wr && b.data_allowed && c->kind->refuses && (r = c->kind->refuses(c, c->why)) != 0)
		return r;
	if (wr && (b.read_only || !b.data_allowed))
		return why_set(c->why, -EROFS, "%s is read-only", b.devpath);
	if (!b.data_allowed)
		return why_set(c->why, -EPERM, "%s was not created by stsfs", b.devpath);
	int mode = (wr ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	h->fd = open(b.devpath, mode | (flags & (O_SYNC | O_DSYNC)));
	if (h->fd < 0)
		return why_set(c->why, -errno, "cannot open %s: %s", b.devpath, strerror(errno));
	h->dev = b.dev;
	block_data_opened(b.dev);
	/* Aligned reads bypass the device's page cache, as the device node
	 * read with O_DIRECT does. A direct writer's writes reach the device
	 * before write(2) returns, and so does the device's refusal (a thin
	 * pool out of space). */
	h->dfd = open(b.devpath, mode | O_DIRECT);
	h->direct = wr && (flags & O_DIRECT) && h->dfd >= 0;
	return 0;
}

/* Opens n for flags into a new handle. A handle of a dead worker opened
 * again (reopened) does not wait for an event: its open had returned. */
static int open_fh(fuse_req_t req, struct node *n, int flags, bool reopened, struct fh **out)
{
	struct ctx c;
	if (!n || !n->file || !node_valid(n) || ctx_for(n, &c) != 0 || (!reopened && view_enter(req, &c) != 0))
		return -ENOENT;
	const struct file_def *f = n->file;
	int acc = flags & O_ACCMODE;
	bool wants_write = acc != O_RDONLY;
	bool wants_read = acc != O_WRONLY;
	int r = reopened ? 0 : perm_check(req, n, &c, (wants_read ? R_OK : 0) | (wants_write || (flags & O_TRUNC) ? W_OK : 0),
					   n->name, "open");
	if (r < 0)
		return r;
	/* Root passes the permission bits; the table still decides. */
	if ((wants_write && !(f->perm & 0200)) || (wants_read && !(f->perm & 0400)) || (wants_write && n->json)) {
		why_set(c.why, -EACCES, "%s is %s: no one may %s it", n->name,
			(f->perm & 0200) && !n->json ? "write-only" : "read-only", wants_write ? "write" : "read");
		report(&c, -EACCES, false, NULL, "%s open", n->name);
		return -EACCES;
	}
	struct fh *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->node = n;
	h->fd = -1;
	h->dfd = -1;
	h->reopened = reopened;
	h->writer = wants_write;
	pthread_mutex_init(&h->text_lock, NULL);
	h->id = next_fh_id();
	struct cancel cancel = CANCEL_INIT;
	interruptible(req, &c, &cancel);
	if (f->type == FT_DATA)
		r = open_data(&c, h, flags);
	else if (wants_read && f->waits && !reopened)
		r = wait_event(&c);
	if (r == 0 && f->type != FT_DATA && wants_read)
		r = render_fh(&c, h);
	uninterruptible(req, &c);
	if (r < 0) {
		if (c.why[0] && r != -EINTR)
			report(&c, r, false, NULL, "%s open", f->name);
		fh_free(h);
		return r;
	}
	*out = h;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h;
	int r = open_fh(req, node_get(ino), fi->flags, false, &h);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = h->fhid = handle_new(h, fi->flags, false);
	if (h->writer && h->fd < 0)
		value_keep(h->fhid, "", 0);
	fi->direct_io = 1;
	fi->keep_cache = 0;
	/* Only a writer has anything to do at close (FOPEN_NOFLUSH). */
	fi->noflush = !h->writer;
	if (!fi->fh || fuse_reply_open(req, fi) != 0) {
		handle_take(fi->fh);
		fh_free(h);
		if (!fi->fh)
			fuse_reply_err(req, ENOMEM);
	}
}

/* A dead worker's handle opened again goes on with the value its writes
 * built (values.c): checked already, and stored at close if its file
 * stores at close. */
static void resume_value(struct fh *h, uint64_t id)
{
	char *val;
	ssize_t len = value_find(id, &val);
	h->fhid = id;
	if (len < 0 || !h->writer)
		return;
	h->wbuf = val;
	h->wlen = (size_t)len;
	h->wrote = true;
	h->pending = len > 0 && h->node->file->check != NULL;
}

/* The handle behind fi, opened again if a dead worker opened it; NULL
 * after replying with the error. */
static struct fh *fh_of(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = handle_get(fi->fh), *mine;
	if (h)
		return h;
	int r = handle_foreign(fi->fh) ? open_fh(req, node_get(ino), handle_open_flags(fi->fh), true, &mine) : -EBADF;
	if (r == 0)
		resume_value(mine, fi->fh);
	if (r == 0 && (h = handle_adopt(fi->fh, mine)) != mine)
		fh_free(mine);
	if (!h)
		fuse_reply_err(req, r < 0 ? -r : ENOMEM);
	return h;
}

#define DIRECT_ALIGN 4096

/* Each thread's buffer for O_DIRECT reads (aligned, as O_DIRECT needs),
 * kept between requests and freed when the thread ends. */
static pthread_key_t read_buf_key;
static pthread_once_t read_buf_once = PTHREAD_ONCE_INIT;
struct read_buf {
	void *mem;
	size_t len;
};

static void read_buf_free(void *p)
{
	struct read_buf *b = p;
	free(b->mem);
	free(b);
}

static void read_buf_init(void)
{
	pthread_key_create(&read_buf_key, read_buf_free);
}

static void *read_buf(size_t size)
{
	pthread_once(&read_buf_once, read_buf_init);
	struct read_buf *b = pthread_getspecific(read_buf_key);
	if (!b && (b = calloc(1, sizeof(*b))) && pthread_setspecific(read_buf_key, b) != 0) {
		free(b);
		b = NULL;
	}
	if (b && b->len < size) {
		free(b->mem);
		b->len = 0;
		if (posix_memalign(&b->mem, DIRECT_ALIGN, size) != 0)
			b->mem = NULL;
		else
			b->len = size;
	}
	return b ? b->mem : NULL;
}

/* A sector-aligned read straight from the device (O_DIRECT); false when
 * the read is not aligned or direct I/O is refused: the caller splices. */
static bool read_direct(fuse_req_t req, struct fh *h, size_t size, off_t off)
{
	void *mem;
	if (h->dfd < 0 || off % 512 || size % 512 || !(mem = read_buf(size)))
		return false;
	ssize_t n = pread(h->dfd, mem, size, off);
	if (n < 0 && errno == EINVAL)
		return false;
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, mem, (size_t)n);
	return true;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(req, ino, fi);
	if (!h)
		return;
	if (h->fd >= 0 && read_direct(req, h, size, off))
		return;
	if (h->fd >= 0) {
		/* Device bytes: spliced from the device without a copy here. */
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = h->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	pthread_mutex_lock(&h->text_lock);
	/* After poll(2) said an event came, lseek(0) + read shows the new state. */
	int r = 0;
	if (off == 0 && h->was_read && h->node->file->pollable) {
		struct ctx c;
		struct cancel cancel = CANCEL_INIT;
		r = ctx_for(h->node, &c);
		if (r == 0) {
			interruptible(req, &c, &cancel);
			r = render_fh(&c, h);
			uninterruptible(req, &c);
		}
	}
	h->was_read = true;
	if (r < 0)
		fuse_reply_err(req, -r);
	else if ((size_t)off >= h->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, h->text + off, h->len - (size_t)off < size ? h->len - (size_t)off : size);
	pthread_mutex_unlock(&h->text_lock);
}

static int apply_with(fuse_req_t req, struct fh *h, bool only_check)
{
	struct ctx c;
	const struct file_def *f = h->node->file;
	if (ctx_for(h->node, &c) != 0)
		return -ENOENT;
	struct cancel cancel = CANCEL_INIT;
	char *val = malloc(h->wlen + 1);
	if (!val)
		return -ENOMEM;
	int r;
	if (!f->raw) {
		r = value_trim(h->wbuf, h->wlen, val, h->wlen + 1, c.why, sizeof(c.why));
	} else if (memchr(h->wbuf, '\0', h->wlen)) {
		r = why_set(c.why, -EINVAL, "value contains a NUL byte");
	} else {
		memcpy(val, h->wbuf, h->wlen);
		val[h->wlen] = '\0';
		r = 0;
	}
	if (r == 0) {
		/* Paths in the value are the writer's (src/kernel/caller.c). */
		const struct fuse_ctx *fc = fuse_req_ctx(req);
		struct kcaller who = { fc->pid, fc->uid, fc->gid };
		kcaller_set(&who);
		interruptible(req, &c, &cancel);
		r = only_check ? f->check(&c, val) : f->store(&c, val);
		uninterruptible(req, &c);
		kcaller_set(NULL);
	}
	if (r >= 0 && !only_check && log_enabled(L_DEBUG)) {
		char path[512];
		ctx_path(&c, path, sizeof(path));
		log_msg(L_DEBUG, "%s: %s written: %.200s", path, f->name, val);
	}
	free(val);
	if (r < 0 && r != -EINTR)
		report(&c, r, false, NULL, "%s write", f->name);
	if (r >= 0) /* what the object shows may have changed (active: data, device) */
		cache_dir_changed(h->node->parent);
	return r;
}

/* Each write(2) is applied when it arrives, so that it fails itself with
 * the reason (bash ignores close's errno). A write at offset 0 starts a
 * value; one at the end of what this open file wrote continues it, and the
 * whole value so far is applied again. Multi-line values (check set) are
 * checked per write and stored once, at close. A refused write ends the
 * value: later writes to this open file fail with the same errno and apply
 * nothing, so the rest of a value never takes effect on its own. */
/* The device refused I/O (a thin pool out of space, a dm error target):
 * the reason goes to the object's error file too. */
static void data_failed(struct fh *h, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void data_failed(struct fh *h, int r, const char *fmt, ...)
{
	struct ctx c;
	if (ctx_for(h->node, &c) != 0)
		return;
	char what[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	why_set(c.why, r, "data: %s: %s", what, strerror(-r));
	report(&c, r, false, NULL, "data I/O");
}

/* The start of a value went to a worker that died: the rest alone must not
 * be applied. Returns the errno. */
static int refuse_lost_value(struct fh *h)
{
	struct ctx c;
	if (ctx_for(h->node, &c) == 0) {
		why_set(c.why, -EIO, "%s: stsfs restarted while the value was being written; write it again",
			h->node->name);
		report(&c, -EIO, false, NULL, "%s write", h->node->name);
	}
	return EIO;
}

/* O_DIRECT needs memory aligned to the device's blocks: the request's
 * bytes are copied into such a buffer. Writes whose offset or length are
 * not whole sectors go through the page cache and are synced. */
static ssize_t write_direct(struct fh *h, struct fuse_bufvec *in, size_t size, off_t off)
{
	void *mem = NULL;
	if (posix_memalign(&mem, DIRECT_ALIGN, size ? size : 1) != 0)
		return -ENOMEM;
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);
	out.buf[0].mem = mem;
	ssize_t n = fuse_buf_copy(&out, in, 0);
	if (n >= 0 && (off % 512 || n % 512)) {
		n = pwrite(h->fd, mem, (size_t)n, off);
		n = n < 0 || fdatasync(h->fd) < 0 ? -errno : n;
	} else if (n >= 0) {
		n = pwrite(h->dfd, mem, (size_t)n, off);
		n = n < 0 ? -errno : n;
	}
	free(mem);
	return n;
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(req, ino, fi);
	if (!h)
		return;
	size_t size = fuse_buf_size(in);
	if (h->fd >= 0) {
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = h->fd;
		out.buf[0].pos = off;
		ssize_t n = h->direct ? write_direct(h, in, size, off) : fuse_buf_copy(&out, in, 0);
		if (n < 0) {
			data_failed(h, (int)n, "writing %zu bytes at offset %lld", size, (long long)off);
			fuse_reply_err(req, (int)-n);
			return;
		}
		fuse_reply_write(req, (size_t)n);
		return;
	}
	if (!h->node->file->store) {
		fuse_reply_err(req, EACCES);
		return;
	}
	if (h->refused) {
		fuse_reply_err(req, h->refused);
		return;
	}
	if (h->reopened && off != 0 && !h->wrote) {
		h->refused = refuse_lost_value(h);
		fuse_reply_err(req, h->refused);
		return;
	}
	if ((off != 0 && (size_t)off != h->wlen) || (size_t)off + size > MAX_WRITE_VALUE) {
		fuse_reply_err(req, off ? EINVAL : EFBIG);
		return;
	}
	char *p = realloc(h->wbuf, (size_t)off + size + 1);
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->wbuf = p;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	dst.buf[0].mem = h->wbuf + off;
	ssize_t n = fuse_buf_copy(&dst, in, 0);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	h->wlen = (size_t)off + (size_t)n;
	h->wrote = true;
	bool deferred = h->node->file->check != NULL;
	int r = apply_with(req, h, deferred);
	h->pending = deferred && r == 0;
	if (r < 0) {
		value_drop(h->fhid);
		h->refused = -r;
		fuse_reply_err(req, -r);
		return;
	}
	value_keep(h->fhid, h->wbuf, h->wlen);
	fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(req, ino, fi);
	if (!h)
		return;
	int r = 0;
	/* A value checked per write and stored at close: its writes went to
	 * the dead worker, so close cannot store it. */
	if (h->reopened && h->writer && !h->wrote && h->node->file->check)
		r = -refuse_lost_value(h);
	if (h->pending) {
		h->pending = false;
		r = apply_with(req, h, false);
		value_drop(h->fhid);
	}
	fuse_reply_err(req, -r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fh *h = fh_of(req, ino, fi);
	if (!h)
		return;
	int r = 0;
	if (h->fd >= 0 && (datasync ? fdatasync(h->fd) : fsync(h->fd)) < 0) {
		r = errno;
		data_failed(h, -r, "%s", "flushing the device");
	}
	/* fsync(2) on an object's file makes the saved state durable now
	 * rather than at the next group commit. */
	if (h->fd < 0)
		state_sync();
	fuse_reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = handle_take(fi->fh);
	value_drop(fi->fh);
	if (h) {
		/* The kernel sends RELEASE once a read's answer reached it, while
		 * that read's thread may still be returning from writev(2) over
		 * h->text: wait for it to let go. */
		pthread_mutex_lock(&h->text_lock);
		pthread_mutex_unlock(&h->text_lock);
		fh_free(h);
	}
	fuse_reply_err(req, 0);
}

/* Pollable files are readable again once the object's event counter moved
 * past the one their text was rendered at (as sysfs_notify for sysfs
 * attributes); until then poll(2) blocks. Other files are always ready. */
static void op_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	const unsigned ready = POLLIN | POLLRDNORM | POLLPRI;
	struct fh *h = fh_of(req, ino, fi);
	if (!h)
		return;
	const struct file_def *f = h->node->file;
	struct ctx c;
	if (!f->pollable || ctx_for(h->node, &c) != 0 || !c.kind->event_nr) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, f->pollable ? ready : POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
		return;
	}
	uint32_t now, seen;
	char key[sizeof(h->event_key)], seen_key[sizeof(h->event_key)];
	/* A read on another thread may be rendering afresh. */
	pthread_mutex_lock(&h->text_lock);
	bool has_event = h->has_event;
	seen = h->event_nr;
	memcpy(seen_key, h->event_key, sizeof(seen_key));
	pthread_mutex_unlock(&h->text_lock);
	bool moved = !has_event || c.kind->event_nr(&c, &now, key, sizeof(key)) != 0 || now != seen ||
		     strcmp(key, seen_key) != 0;
	if (moved) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		fuse_reply_poll(req, ready);
		return;
	}
	if (ph)
		watch_add(c.kind, key, seen, h->id, ph);
	fuse_reply_poll(req, 0);
}

void file_ops(struct fuse_lowlevel_ops *ops)
{
	ops->open = op_open;
	ops->read = op_read;
	ops->write_buf = op_write_buf;
	ops->flush = op_flush;
	ops->fsync = op_fsync;
	ops->release = op_release;
	ops->poll = op_poll;
}
