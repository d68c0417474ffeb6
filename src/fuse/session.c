/* The FUSE session: the operations of node.c, attr.c, dir.c and file.c in
 * one table, the mount and the multi-threaded loop. */
#include "glue.h"

#include "watch.h"

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = 255 };
	fuse_reply_statfs(req, &st);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Large device I/O in one request: 1 MiB writes (the kernel's max_pages). */
	conn->max_write = 1 << 20;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
}

static const struct fuse_lowlevel_ops *all_ops(void)
{
	static struct fuse_lowlevel_ops ops = {
		.init = op_init,
		.statfs = op_statfs,
	};
	attr_ops(&ops);
	dir_ops(&ops);
	file_ops(&ops);
	return &ops;
}

int tree_run(struct fuse_args *args, const char *mountpoint, bool foreground, bool single_thread)
{
	struct fuse_session *se = fuse_session_new(args, all_ops(), sizeof(struct fuse_lowlevel_ops), NULL);
	if (!se)
		return 1;
	int ret = 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, mountpoint) != 0)
		goto out_signals;
	fuse_daemonize(foreground);
	cache_start(se, opts.cache_timeout);
	if (single_thread) {
		ret = fuse_session_loop(se);
	} else {
		struct fuse_loop_config *cfg = fuse_loop_cfg_create();
		/* Blocking reads (dm `wait`) hold a thread each; keep spares. */
		fuse_loop_cfg_set_max_threads(cfg, 64);
		fuse_loop_cfg_set_idle_threads(cfg, 8);
		ret = fuse_session_loop_mt(se, cfg);
		fuse_loop_cfg_destroy(cfg);
	}
	watch_shutdown();
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
