// SPDX-License-Identifier: GPL-2.0-or-later
// One process that repeats one operation N times and prints the mean
// microseconds per operation (or, for whole-directory operations, the total),
// so that bench/run.sh measures syscalls and ioctls rather than fork+exec.
//
//   benchtool looptree N DIR SIZE       mkdir DIR/bench_I, size, active 1, rmdir
//   benchtool loopraw N FILE            LOOP_CTL_GET_FREE, LOOP_CONFIGURE, LOOP_CLR_FD
//   benchtool losetup N FILE            `losetup -f --show FILE` + `losetup -d DEV`
//   benchtool read N PATH               open + read to EOF + close
//   benchtool lsl N DIR                 opendir + readdir + fstatat of each entry
//   benchtool readall N DIR ATTR        read DIR/ENTRY/ATTR of every entry (us per pass)
//   benchtool mkdirs DIR PREFIX FROM TO mkdir DIR/PREFIXi for i in [FROM, TO) (total us)
//   benchtool exec N CMD [ARG...]       fork + exec + wait, stdout to /dev/null
//   benchtool dmstatus N NAME           libdevmapper DM_DEVICE_STATUS (DM_TABLE_STATUS)
//   benchtool thintree N POOLDIR SIZE   mkdir POOLDIR/bench_I, size, active 1, rmdir
//
// Every failure is fatal (exit 1, with the path and errno): a benchmark that
// silently measured failing calls would be worse than none.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libdevmapper.h>

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("benchtool: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void put(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	size_t n = strlen(value);
	if (write(fd, value, n) != (ssize_t)n)
		die("write %s to %s: %s", value, path, strerror(errno));
	if (close(fd) < 0)
		die("close %s: %s", path, strerror(errno));
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0)
			die("read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == cap)
			got = 0; /* keep reading to EOF; only the byte count matters */
	}
	close(fd);
	return got;
}

/* mkdir, size, active 1, rmdir: a loop object or a thin volume. */
static void tree_lifecycle(const char *dir, const char *size, int i)
{
	char obj[4096], f[4200], val[64];
	snprintf(obj, sizeof obj, "%s/bench_%d", dir, i);
	if (mkdir(obj, 0755) < 0)
		die("mkdir %s: %s", obj, strerror(errno));
	snprintf(f, sizeof f, "%s/size", obj);
	snprintf(val, sizeof val, "%s\n", size);
	put(f, val);
	snprintf(f, sizeof f, "%s/active", obj);
	put(f, "1\n");
	if (rmdir(obj) < 0)
		die("rmdir %s: %s", obj, strerror(errno));
}

static void loop_raw(int ctl, const char *file)
{
	int n = ioctl(ctl, LOOP_CTL_GET_FREE);
	if (n < 0)
		die("LOOP_CTL_GET_FREE: %s", strerror(errno));
	char dev[64];
	snprintf(dev, sizeof dev, "/dev/loop%d", n);
	int lfd = open(dev, O_RDWR | O_CLOEXEC);
	if (lfd < 0)
		die("open %s: %s", dev, strerror(errno));
	int bfd = open(file, O_RDWR | O_CLOEXEC);
	if (bfd < 0)
		die("open %s: %s", file, strerror(errno));
	struct loop_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.fd = (unsigned)bfd;
	snprintf((char *)cfg.info.lo_file_name, LO_NAME_SIZE, "%s", file);
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) < 0) {
		if (errno != EINVAL && errno != ENOTTY)
			die("LOOP_CONFIGURE %s: %s", dev, strerror(errno));
		if (ioctl(lfd, LOOP_SET_FD, bfd) < 0)
			die("LOOP_SET_FD %s: %s", dev, strerror(errno));
		if (ioctl(lfd, LOOP_SET_STATUS64, &cfg.info) < 0)
			die("LOOP_SET_STATUS64 %s: %s", dev, strerror(errno));
	}
	close(bfd);
	if (ioctl(lfd, LOOP_CLR_FD) < 0)
		die("LOOP_CLR_FD %s: %s", dev, strerror(errno));
	close(lfd);
}

/* Runs argv; with out != NULL its stdout is captured there (trailing newline removed). */
static void run(char *const argv[], char *out, size_t cap)
{
	int p[2];
	if (out && pipe(p) < 0)
		die("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		if (out) {
			dup2(p[1], 1);
			close(p[0]);
			close(p[1]);
		} else {
			int nul = open("/dev/null", O_WRONLY);
			dup2(nul, 1);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if (out) {
		close(p[1]);
		size_t got = 0;
		ssize_t r;
		while (got + 1 < cap && (r = read(p[0], out + got, cap - 1 - got)) > 0)
			got += (size_t)r;
		close(p[0]);
		out[got] = 0;
		while (got && out[got - 1] == '\n')
			out[--got] = 0;
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		die("%s failed (status %d)", argv[0], st);
}

static void dm_status(const char *name)
{
	struct dm_task *t = dm_task_create(DM_DEVICE_STATUS);
	if (!t)
		die("dm_task_create failed");
	if (!dm_task_set_name(t, name) || !dm_task_run(t))
		die("DM_DEVICE_STATUS %s failed", name);
	uint64_t start, len;
	char *type, *params;
	void *next = NULL;
	do
		next = dm_get_next_target(t, next, &start, &len, &type, &params);
	while (next);
	if (!type || !params)
		die("%s: no target", name);
	dm_task_destroy(t);
}

static void lsl(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d)))
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("stat %s/%s: %s", dir, e->d_name, strerror(errno));
	closedir(d);
}

static void readall(const char *dir, const char *attr)
{
	DIR *d = opendir(dir);
	if (!d)
		die("opendir %s: %s", dir, strerror(errno));
	struct dirent *e;
	char path[8192], buf[65536];
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, attr);
		slurp(path, buf, sizeof buf);
	}
	closedir(d);
}

static long count(const char *s)
{
	char *end;
	long n = strtol(s, &end, 10);
	if (*end || n < 0)
		die("not a count: %s", s);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		die("usage: see the head of bench/benchtool.c");
	const char *op = argv[1];
	char buf[65536];
	double t0;

	if (!strcmp(op, "mkdirs") && argc == 6) {
		long from = count(argv[4]), to = count(argv[5]);
		t0 = now_us();
		for (long i = from; i < to; i++) {
			snprintf(buf, sizeof buf, "%s/%s%ld", argv[2], argv[3], i);
			if (mkdir(buf, 0755) < 0)
				die("mkdir %s: %s", buf, strerror(errno));
		}
		printf("%.1f\n", now_us() - t0);
		return 0;
	}

	long n = count(argv[2]);
	if (n < 1)
		die("N must be at least 1");
	if ((!strcmp(op, "looptree") || !strcmp(op, "thintree")) && argc == 5) {
		t0 = now_us();
		for (long i = 0; i < n; i++)
			tree_lifecycle(argv[3], argv[4], (int)i);
	} else if (!strcmp(op, "loopraw") && argc == 4) {
		int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
		if (ctl < 0)
			die("open /dev/loop-control: %s", strerror(errno));
		t0 = now_us();
		for (long i = 0; i < n; i++)
			loop_raw(ctl, argv[3]);
		close(ctl);
	} else if (!strcmp(op, "losetup") && argc == 4) {
		char dev[256];
		char *attach[] = {"losetup", "-f", "--show", argv[3], NULL};
		char *detach[] = {"losetup", "-d", dev, NULL};
		t0 = now_us();
		for (long i = 0; i < n; i++) {
			run(attach, dev, sizeof dev);
			run(detach, NULL, 0);
		}
	} else if (!strcmp(op, "read") && argc == 4) {
		t0 = now_us();
		for (long i = 0; i < n; i++)
			slurp(argv[3], buf, sizeof buf);
	} else if (!strcmp(op, "lsl") && argc == 4) {
		t0 = now_us();
		for (long i = 0; i < n; i++)
			lsl(argv[3]);
	} else if (!strcmp(op, "readall") && argc == 5) {
		t0 = now_us();
		for (long i = 0; i < n; i++)
			readall(argv[3], argv[4]);
	} else if (!strcmp(op, "exec") && argc >= 4) {
		t0 = now_us();
		for (long i = 0; i < n; i++)
			run(argv + 3, NULL, 0);
	} else if (!strcmp(op, "dmstatus") && argc == 4) {
		dm_log_init_verbose(0);
		t0 = now_us();
		for (long i = 0; i < n; i++)
			dm_status(argv[3]);
	} else {
		die("bad arguments for %s: see the head of bench/benchtool.c", op);
	}
	printf("%.1f\n", (now_us() - t0) / (double)n);
	return 0;
}
