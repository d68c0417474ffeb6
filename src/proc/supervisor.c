/* The supervisor (include/stsfs/supervisor.h). It mounts, reads the kernel's
 * INIT request into the shared map, and starts workers: each is this
 * program executed again, handed the connection, the map and the state
 * lock. A worker that dies is replaced at once on the same connection; the
 * kernel's callers wait, they never see ENOTCONN.
 *
 * Stopping: TERM, INT or HUP unmount the tree, then end the worker. An
 * unmount ends the worker by itself (its reads fail with ENODEV) and the
 * supervisor with it. The worker dies with the supervisor
 * (PR_SET_PDEATHSIG), and runs in a process group of its own so that a
 * terminal's Ctrl-C reaches only the supervisor.
 *
 * Under systemd (fdstore.h, docs/systemd.md) the connection and the map
 * are kept in the service manager's file descriptor store once the first
 * worker is ready. A stop signal then leaves the mount (a restart follows,
 * and the kernel queues its callers' requests meanwhile): the worker is
 * ended and the supervisor exits 0. The next start gets both back and
 * serves the same connection: no mount, no INIT read. When the mount ends
 * the store is emptied (FDSTOREREMOVE). */
#include "stsfs/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stsfs/fdstore.h"
#include "stsfs/log.h"
#include "stsfs/mountns.h"
#include "stsfs/takeover.h"
#include "stsfs/tree.h"

struct super {
	struct fuse_session *se; /* NULL when the connection came from the store */
	const char *mountpoint;
	int fuse_fd, map_fd, cwd_fd;
	char **argv;
	char exe[PATH_MAX];
	sigset_t sigs;
	pid_t worker;
	pid_t stragglers[64]; /* dead workers not reaped yet */
	int ready_fd; /* the read end of the running worker's ready pipe */
	bool stopping;
	bool stored; /* the connection and the map are in the service manager */
	bool keep;   /* stopping leaves the mount: a restart takes it over */
	int lock_fd; /* the state directory's lock (mountns.h) */
	/* Whether this namespace still has the mount: the mount table (POLLPRI
	 * when it changes) and the connection's device. */
	int mountinfo_fd;
	dev_t dev;
	double gone_since; /* when the mount was first missed; 0: present */
	bool gone_said;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void keep_on_exec(int fd)
{
	fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC);
}

/* In the child: dies with the supervisor, its own process group, the
 * descriptors named in WORKER_ENV, the directory the daemon was started
 * in (relative options are resolved there, then the worker moves to /). */
static void exec_worker(struct super *s, int ready_w, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	setpgid(0, 0);
	sigprocmask(SIG_UNBLOCK, &s->sigs, NULL);
	int fds[] = { s->fuse_fd, s->map_fd, ready_w, s->cwd_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		keep_on_exec(fds[i]);
	char env[64];
	snprintf(env, sizeof(env), "%d:%d:%d:%d", s->fuse_fd, s->map_fd, ready_w, s->cwd_fd);
	setenv(WORKER_ENV, env, 1);
	/* By path, so the worker has its name (and an upgraded binary is the
	 * next worker); the running one where the path is gone. */
	if (s->exe[0])
		execv(s->exe, s->argv);
	execv("/proc/self/exe", s->argv);
	log_msg(L_ERROR, "cannot start a worker: %s", strerror(errno));
	_exit(WORKER_EXIT_FATAL);
}

static int start_worker(struct super *s)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return -errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(ready[0]);
		close(ready[1]);
		return e;
	}
	if (pid == 0)
		exec_worker(s, ready[1], parent);
	close(ready[1]);
	if (s->ready_fd >= 0)
		close(s->ready_fd);
	s->ready_fd = ready[0];
	s->worker = pid;
	return 0;
}

/* A killed worker's main thread can be dead while another of its threads
 * still sits in the kernel: a notification waiting for a directory lock
 * that a caller holds while it waits for an answer only the next worker can
 * give. waitpid cannot reap it yet; its leader being a zombie is enough to
 * start the next. */
static bool leader_dead(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* Reaps workers that died with a thread stuck in the kernel, once it got
 * its answer. */
static void reap_stragglers(struct super *s)
{
	for (size_t i = 0; i < sizeof(s->stragglers) / sizeof(s->stragglers[0]); i++)
		if (s->stragglers[i] > 0 && waitpid(s->stragglers[i], NULL, WNOHANG) != 0)
			s->stragglers[i] = 0;
}

static void add_straggler(struct super *s, pid_t pid)
{
	for (size_t i = 0; i < sizeof(s->stragglers) / sizeof(s->stragglers[0]); i++)
		if (s->stragglers[i] <= 0) {
			s->stragglers[i] = pid;
			return;
		}
}

enum ended { RUNNING, EXITED, KILLED };

/* Whether the worker has ended, and how: its exit status in *status. */
static enum ended worker_ended(struct super *s, int *status)
{
	int st;
	if (s->worker <= 0) {
		*status = 0;
		return EXITED;
	}
	pid_t r = waitpid(s->worker, &st, WNOHANG);
	/* A leader that has ended waits for its other threads; they end at
	 * once unless one is stuck in the kernel. */
	for (int i = 0; r == 0 && i < 20 && leader_dead(s->worker); i++) {
		usleep(5000);
		r = waitpid(s->worker, &st, WNOHANG);
	}
	if (r == s->worker) {
		s->worker = 0;
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? -WTERMSIG(st) : -1;
		return WIFEXITED(st) ? EXITED : KILLED;
	}
	if (r < 0 || leader_dead(s->worker)) {
		add_straggler(s, s->worker);
		s->worker = 0;
		*status = -1;
		return KILLED;
	}
	return RUNNING;
}

/* Whether the kernel still has the connection (not unmounted, not
 * aborted): /dev/fuse polls POLLERR once it is gone. */
static bool connected(struct super *s)
{
	struct pollfd p = { .fd = s->fuse_fd, .events = POLLIN };
	return poll(&p, 1, 0) >= 0 && !(p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

static void unmount(struct super *s)
{
	if (!s->stopping) {
		s->stopping = true;
		bool alive = connected(s);
		if (s->stored && alive) {
			s->keep = true;
			return;
		}
		if (s->se)
			fuse_session_unmount(s->se);
		else if (alive && umount2(s->mountpoint, MNT_DETACH) < 0)
			log_msg(L_ERROR, "unmounting %s: %s", s->mountpoint, strerror(errno));
	}
}

/* The mount gone from this namespace while the connection lives on: a
 * copy of it in another mount namespace (a container that bound the tree
 * while the parent was not shared), or files open after umount -l, keep
 * it. Nothing else would tell the admin why the daemon did not end. The
 * kernel ends the connection just after the mount goes when nothing else
 * holds it: half a second later it is no race. */
static void watch_mount(struct super *s)
{
	if (s->mountinfo_fd < 0 || s->gone_said || s->stopping)
		return;
	struct pollfd p = { .fd = s->mountinfo_fd, .events = POLLPRI };
	if (poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR))) {
		int r = mountns_has_dev(s->mountinfo_fd, s->dev);
		if (r == 0 && !s->gone_since)
			s->gone_since = now_s();
		else if (r == 1)
			s->gone_since = 0;
	}
	if (!s->gone_since || now_s() - s->gone_since < 0.5 || !connected(s))
		return;
	s->gone_said = true;
	log_msg(L_WARNING,
		"the mount at %s is gone from this mount namespace, but other mount namespaces still use "
		"it (containers that bound it while its parent was not a shared mount), or files opened "
		"before umount -l: this daemon serves them until they unmount it, and keeps the state "
		"directory; to end it now: kill %ld, or echo 1 > /sys/fs/fuse/connections/%u/abort "
		"(docs/containers.md, \"Mount propagation\")",
		s->mountpoint, (long)getpid(), minor(s->dev));
}

/* The connection's device and the mount table to watch; the lock notes
 * both for a second daemon. */
static void watch_start(struct super *s)
{
	if (mountns_fuse_dev_at(s->mountpoint, &s->dev) != 1) {
		/* Taken over from a store whose mount is not here. */
		holder_note(s->lock_fd, 0, s->mountpoint);
		return;
	}
	holder_note(s->lock_fd, s->dev, s->mountpoint);
	s->mountinfo_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (s->mountinfo_fd >= 0)
		mountns_has_dev(s->mountinfo_fd, s->dev); /* read once: POLLPRI means a change after */
}

/* --propagation shared: before the mount, so that the mount is an event
 * the shared parent carries to its slaves. A parent that cannot be shared
 * (no CAP_SYS_ADMIN) leaves the tree working, only not followed. */
static void share_parent(const char *mountpoint)
{
	char why[PATH_MAX + 128];
	if (opts.share_parent && mountns_share_parent(mountpoint, why, sizeof(why)) < 0)
		log_msg(L_WARNING,
			"%s; containers that bind the parent will not see unmounts and restarts "
			"(--propagation, docs/containers.md)",
			why);
}

static void stop(struct super *s)
{
	unmount(s);
	if (s->worker > 0)
		kill(s->worker, SIGTERM);
}


/* Waits up to timeout_s for a signal or a worker's end. A stop signal
 * unmounts and asks the worker to end. */
static void wait_a_while(struct super *s, double timeout_s)
{
	struct timespec ts = { (time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e9) };
	int sig = sigtimedwait(&s->sigs, NULL, &ts);
	if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
		stop(s);
	reap_stragglers(s);
	watch_mount(s);
}

/* The first worker reports ready (it adopted the state dir's objects and
 * answered INIT) or ends. */
static int wait_ready(struct super *s)
{
	for (;;) {
		int status;
		enum ended e = worker_ended(s, &status);
		if (e != RUNNING)
			return e == EXITED && status == 0 ? 0 : -1;
		struct timespec ts = { 0, 0 };
		char c;
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(s->ready_fd, &rd);
		struct timeval tv = { 0, 100000 };
		if (select(s->ready_fd + 1, &rd, NULL, NULL, &tv) > 0 && read(s->ready_fd, &c, 1) == 1)
			return 0;
		int sig = sigtimedwait(&s->sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
			stop(s);
	}
}

/* Restarts dead workers until one exits: 0 when the mount ended. A worker
 * that keeps dying at once is restarted after a pause that grows to 2 s. */
static int serve(struct super *s)
{
	double started = now_s(), pause = 0;
	for (;;) {
		if (s->worker <= 0) {
			if (s->stopping)
				return 0;
			if (start_worker(s) < 0)
				wait_a_while(s, 1);
			started = now_s();
			continue;
		}
		int status;
		enum ended e = worker_ended(s, &status);
		if (e == RUNNING) {
			wait_a_while(s, 0.1);
			continue;
		}
		/* systemd's stop signals every process of the unit
		 * (KillMode=control-group): a worker that ended at its TERM
		 * before the supervisor saw its own is no unmount. */
		if (e == EXITED && status == 0 && s->stored && !s->stopping && connected(s)) {
			for (double end = now_s() + 2; !s->stopping && now_s() < end;)
				wait_a_while(s, end - now_s());
			if (s->stopping)
				return 0;
			log_msg(L_WARNING, "the worker ended, the mount did not; starting another");
			continue;
		}
		if (e == EXITED && (status == 0 || status == WORKER_EXIT_FATAL || s->stopping))
			return status == 0 || s->stopping ? 0 : 1;
		if (s->stopping)
			return 0;
		pause = now_s() - started < 0.2 ? (pause ? pause * 2 : 0.05) : 0;
		if (pause > 2)
			pause = 2;
		char how[64] = "";
		if (e == KILLED && status < -1)
			snprintf(how, sizeof(how), " by signal %d (%s)", -status, strsignal(-status));
		log_msg(L_WARNING, "the worker %s%s; starting another%s", e == EXITED ? "exited" : "was killed", how,
			pause ? " after a pause" : "");
		if (pause)
			wait_a_while(s, pause);
	}
}

/* Detaches from the terminal; the parent exits once the first worker is
 * ready, with its status, so `stsfs /sts && ls /sts` works. Returns the
 * descriptor to report on. */
static int detach(void)
{
	int st[2];
	if (pipe2(st, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		char ok = 1;
		close(st[1]);
		_exit(read(st[0], &ok, 1) == 1 && ok == 0 ? 0 : 1);
	}
	close(st[0]);
	setsid();
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	return st[1];
}

/* The first request of a new mount is INIT; it is kept for every worker. */
static int read_init(struct super *s)
{
	size_t size = MAP_REQ_BUF;
	unsigned char *buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	ssize_t n;
	while ((n = read(s->fuse_fd, buf, size)) < 0 && errno == EINTR)
		;
	int r = n < 0 ? -errno : map_create(buf, (size_t)n);
	free(buf);
	if (r < 0)
		return r;
	s->map_fd = r;
	return 0;
}

/* The connection and the map from the service manager's store: the mount
 * stays as it is, and the map holds INIT. 1 when taken, 0 when there is
 * nothing to take, -1 when what was passed is not ours. */
static int take_over(struct super *s)
{
	int fuse_fd, map_fd;
	int r = fdstore_take(&fuse_fd, &map_fd);
	if (r <= 0)
		return r < 0 ? -1 : 0;
	s->fuse_fd = fuse_fd;
	s->map_fd = map_fd;
	log_msg(L_INFO, "serving %s on the connection the service manager kept", s->mountpoint);
	return 1;
}

/* Once the first worker serves: the store gets both, then READY=1. */
static void notify_ready(struct super *s)
{
	if (fdstore_usable()) {
		int r = fdstore_save(s->fuse_fd, s->map_fd);
		if (r < 0)
			log_msg(L_ERROR, "storing the connection in the service manager: %s", strerror(-r));
		s->stored = r == 0;
	}
	char msg[64];
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld\n", (long)getpid());
	fdstore_notify(msg, -1);
}

int supervise(struct fuse_args *args, const char *mountpoint, char **argv, bool foreground, int lock_fd)
{
	static const struct fuse_lowlevel_ops no_ops;
	struct super s = { .argv = argv, .ready_fd = -1, .map_fd = -1, .mountpoint = mountpoint };
	s.lock_fd = lock_fd;
	s.mountinfo_fd = -1;
	bool notify = fdstore_init();
	int taken = take_over(&s);
	if (taken < 0)
		return 1;
	s.cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ssize_t len = readlink("/proc/self/exe", s.exe, sizeof(s.exe) - 1);
	s.exe[len > 0 ? len : 0] = '\0';
	if (!taken)
		s.se = fuse_session_new(args, &no_ops, sizeof(no_ops), NULL);
	if ((!taken && !s.se) || s.cwd_fd < 0)
		return 1;
	int ret = 1, report = -1;
	if (!taken) {
		share_parent(mountpoint);
		if (fuse_session_mount(s.se, mountpoint) != 0)
			goto out;
		s.fuse_fd = fuse_session_fd(s.se);
		int r = read_init(&s);
		if (r < 0) {
			log_msg(L_ERROR, "reading the kernel's INIT: %s", strerror(-r));
			goto out_unmount;
		}
	} else if (notify && fdstore_usable()) {
		/* A stop before the first worker is ready leaves the mount
		 * too: the store still holds the connection. */
		s.stored = true;
	}
	if (!foreground && (report = detach()) < 0)
		goto out_unmount;
	watch_start(&s); /* after detach: the lock names the process that stays */
	if (!foreground) { /* stderr is /dev/null now: the log goes to syslog, the workers' too */
		log_to_syslog();
		setenv(LOG_ENV, "syslog", 1);
	}
	if (chdir("/") < 0)
		goto out_unmount;
	sigemptyset(&s.sigs);
	sigaddset(&s.sigs, SIGCHLD);
	sigaddset(&s.sigs, SIGTERM);
	sigaddset(&s.sigs, SIGINT);
	sigaddset(&s.sigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &s.sigs, NULL);
	if (start_worker(&s) < 0 || wait_ready(&s) < 0) {
		log_msg(L_ERROR, "the worker did not start");
		goto out_unmount;
	}
	if (report >= 0) {
		char ok = 0;
		if (write(report, &ok, 1) != 1)
			goto out_unmount;
		close(report);
		report = -1;
	}
	if (notify)
		notify_ready(&s);
	ret = serve(&s);
out_unmount:
	stop(&s);
	/* A worker's thread stuck in the kernel is answered by nobody now:
	 * the unmount ends its wait. */
	for (int i = 0; i < 100 && s.worker > 0; i++) {
		int status;
		if (worker_ended(&s, &status) != RUNNING)
			break;
		usleep(50000);
	}
	/* The mount has ended: the store lets go of it. */
	if (s.stored && !s.keep && !connected(&s))
		fdstore_remove();
out:
	if (s.mountinfo_fd >= 0)
		close(s.mountinfo_fd);
	if (s.se)
		fuse_session_destroy(s.se);
	else if (taken) {
		close(s.fuse_fd);
		close(s.map_fd);
	}
	return ret;
}
