/* The FUSE session: the operations of node.c, attr.c, dir.c and file.c in
 * one table, the mount and the multi-threaded loop. */
#include "glue.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "stsfs/log.h"
#include "stsfs/supervisor.h"
#include "stsfs/tenancy.h"
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

/* The worker: takes over the mount's connection from the supervisor.
 * INIT, kept in the map, is answered again so that this session knows the
 * connection's terms (the kernel drops an answer to a request it no longer
 * waits for); then the dead worker's nodes and requests are taken over,
 * and the names the kernel keeps are dropped, since objects may have
 * changed while nobody served them. */
int worker_run(struct fuse_args *args, int fuse_fd, int map_fd, int ready_fd, bool single_thread)
{
	static struct shared_map map;
	int r = map_attach(map_fd, &map);
	if (r < 0) {
		log_msg(L_ERROR, "the shared map: %s", strerror(-r));
		return WORKER_EXIT_FATAL;
	}
	uint32_t epoch = __atomic_add_fetch(&map.hdr->epoch, 1, __ATOMIC_ACQ_REL);
	handles_start(epoch);
	values_attach(&map);
	if ((r = nodes_attach(&map)) < 0) {
		log_msg(L_ERROR, "taking over the nodes: %s", strerror(-r));
		return WORKER_EXIT_FATAL;
	}
	struct fuse_session *se = fuse_session_new(args, all_ops(), sizeof(struct fuse_lowlevel_ops), NULL);
	if (!se)
		return WORKER_EXIT_FATAL;
	int ret = WORKER_EXIT_FATAL;
	if (inflight_io(se, fuse_fd, &map, epoch) != 0 || fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	struct fuse_buf init = { .mem = map.hdr->init, .size = map.hdr->init_len };
	fuse_session_process_buf(se, &init);
	cache_start(se, opts.cache_timeout);
	if (epoch > 1) {
		cache_all_changed();
		unsigned rewritten;
		r = inflight_take_over(fuse_fd, &rewritten);
		if (r < 0)
			log_msg(L_ERROR, "asking the kernel to resend: %s", strerror(-r));
		else if (inflight_replays())
			log_msg(L_INFO, "worker %u took over, answering %d requests left in flight (%u answers written again)",
				epoch, r, rewritten);
	}
	char ready = 1;
	if (write(ready_fd, &ready, 1) != 1 || close(ready_fd) != 0)
		goto out_signals;
	if ((r = reaper_start()) < 0)
		log_msg(L_ERROR, "starting the reaper: %s", strerror(-r));
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
	reaper_stop();
	watch_shutdown();
	ret = ret ? 1 : 0;
out_signals:
	fuse_remove_signal_handlers(se);
	if (!cache_stop())
		return ret; /* exiting: the kernel closes the connection */
out_destroy:
	fuse_session_destroy(se);
	return ret;
}
