/* stsfs: options, start-up, mount. */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stsfs/crash.h"
#include "stsfs/kernel.h"
#include "stsfs/log.h"
#include "stsfs/mountns.h"
#include "stsfs/state.h"
#include "stsfs/supervisor.h"
#include "stsfs/tenancy.h"
#include "stsfs/tree.h"
#include "stsfs/value.h"

struct options opts;

struct cli {
	char *image_dir;
	char *state_dir;
	char *owner;
	char *mode;
	char *cache_timeout;
	char *log_level;
	char *tenancy;
	char *quota;
	char *propagation;
	int reap;
	int allow_host_devices;
	int manage_external;
	int allow_other;
	int allow_root;
	int help;
	int version;
	char **allow;
	size_t n_allow;
	/* MOUNTPOINT, or SOURCE MOUNTPOINT as mount.fuse3 passes them */
	char *positional[2];
	int n_positional;
};

enum { KEY_ALLOW_BACKING, KEY_ALLOW_BACKING_O };

#define CLI_OPT(t, field) { t, offsetof(struct cli, field), 1 }
static const struct fuse_opt cli_spec[] = {
	CLI_OPT("--image-dir=%s", image_dir),
	CLI_OPT("--image-dir %s", image_dir),
	CLI_OPT("--state-dir=%s", state_dir),
	CLI_OPT("--state-dir %s", state_dir),
	CLI_OPT("--owner=%s", owner),
	CLI_OPT("--owner %s", owner),
	CLI_OPT("--mode=%s", mode),
	CLI_OPT("--mode %s", mode),
	CLI_OPT("--cache-timeout=%s", cache_timeout),
	CLI_OPT("--cache-timeout %s", cache_timeout),
	CLI_OPT("--log-level=%s", log_level),
	CLI_OPT("--log-level %s", log_level),
	CLI_OPT("--tenancy=%s", tenancy),
	CLI_OPT("--tenancy %s", tenancy),
	CLI_OPT("--quota=%s", quota),
	CLI_OPT("--quota %s", quota),
	CLI_OPT("--propagation=%s", propagation),
	CLI_OPT("--propagation %s", propagation),
	CLI_OPT("--reap", reap),
	/* Every option also as a -o mount option, for mount -t fuse.stsfs
	 * and /etc/fstab (docs/mount.md). */
	CLI_OPT("image_dir=%s", image_dir),
	CLI_OPT("state_dir=%s", state_dir),
	CLI_OPT("owner=%s", owner),
	CLI_OPT("mode=%s", mode),
	CLI_OPT("cache_timeout=%s", cache_timeout),
	CLI_OPT("log_level=%s", log_level),
	CLI_OPT("tenancy=%s", tenancy),
	CLI_OPT("propagation=%s", propagation),
	CLI_OPT("reap", reap),
	CLI_OPT("allow_host_devices", allow_host_devices),
	CLI_OPT("manage_external", manage_external),
	/* FUSE's own option: stsfs passes it to the kernel always and keeps
	 * its meaning itself (docs/security.md). */
	CLI_OPT("allow_other", allow_other),
	/* FUSE's too: libfuse would refuse other users itself, before stsfs
	 * could say why. Kept here as "the mounter and root". */
	CLI_OPT("allow_root", allow_root),
	FUSE_OPT_KEY("allow_backing=%s", KEY_ALLOW_BACKING_O),
	CLI_OPT("--allow-host-devices", allow_host_devices),
	CLI_OPT("--manage-external", manage_external),
	CLI_OPT("--help", help),
	CLI_OPT("-h", help),
	CLI_OPT("--version", version),
	CLI_OPT("-V", version),
	FUSE_OPT_KEY("--allow-backing=%s", KEY_ALLOW_BACKING),
	FUSE_OPT_KEY("--allow-backing %s", KEY_ALLOW_BACKING),
	FUSE_OPT_END
};

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cli *cli = data;
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (cli->n_positional == 2)
			return 1; /* libfuse refuses a third */
		cli->positional[cli->n_positional++] = strdup(arg);
		return 0;
	}
	if (key != KEY_ALLOW_BACKING && key != KEY_ALLOW_BACKING_O)
		return 1; /* keep for libfuse */
	/* fuse_opt hands over "--allow-backing=DIR", "--allow-backingDIR" or
	 * "allow_backing=DIR". */
	const char *dir = arg + strlen(key == KEY_ALLOW_BACKING ? "--allow-backing" : "allow_backing");
	if (*dir == '=')
		dir++;
	char **p = realloc(cli->allow, (cli->n_allow + 1) * sizeof(*p));
	if (!p)
		return -1;
	cli->allow = p;
	cli->allow[cli->n_allow++] = strdup(dir);
	return 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [SOURCE] MOUNTPOINT\n\n"
	       "stsfs options:\n"
	       "    --image-dir DIR        where owned images are created (/var/lib/stsfs/images)\n"
	       "    --state-dir DIR        what survives a restart (/var/lib/stsfs)\n"
	       "    --allow-backing DIR    directory whose files may back loop devices (repeatable)\n"
	       "    --allow-host-devices   let tables and pools use devices stsfs did not create\n"
	       "    --manage-external      let users change and remove devices stsfs did not create\n"
	       "    --owner UID:GID        owner of the tree (root)\n"
	       "    --mode MODE            mode of directories, and the base of file modes (0755)\n"
	       "    --cache-timeout SECS   how long the kernel may keep names and attributes (1; 0: never)\n"
	       "    --log-level LEVEL      error, warning, info or debug (info); -o log_level=LEVEL\n"
	       "    --tenancy uid|pidns    each object belongs to the caller's uid or pid namespace;\n"
	       "                           tenants see only their own (implies -o allow_other, mode 0777)\n"
	       "    --quota loops=N,dm=N,thin=N,bytes=SIZE  limits per tenant (EDQUOT)\n"
	       "    --reap                 remove a tenant's objects when it goes away\n"
	       "    --propagation shared|none  make the mount point's parent a shared mount (a bind of\n"
	       "                           itself if need be), so that unmounts and restarts reach\n"
	       "                           containers that bind it with rslave (shared); none: leave it\n"
	       "    -h, --help             this help\n"
	       "    -V, --version          print the version\n"
	       "Each also as a -o mount option: -o image_dir=DIR,state_dir=DIR,allow_backing=DIR,\n"
	       "allow_host_devices,manage_external,owner=UID:GID,mode=MODE,cache_timeout=SECS,log_level=LEVEL,\n"
	       "tenancy=MODE,reap,propagation=shared|none (--quota has no -o form: its value has commas)\n"
	       "(mount -t fuse.stsfs SOURCE MOUNTPOINT -o ...; SOURCE is ignored)\n\n",
	       prog);
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

static int parse_owner(const char *s)
{
	unsigned uid, gid;
	char extra;
	if (sscanf(s, "%u:%u%c", &uid, &gid, &extra) != 2) {
		fprintf(stderr, "stsfs: --owner wants UID:GID, not '%s'\n", s);
		return -1;
	}
	opts.uid = uid;
	opts.gid = gid;
	return 0;
}

static int parse_mode(const char *s)
{
	char *end;
	unsigned long m = strtoul(s, &end, 8);
	if (!*s || *end || m > 07777) {
		fprintf(stderr, "stsfs: --mode wants an octal mode like 0755, not '%s'\n", s);
		return -1;
	}
	opts.mode = (mode_t)m;
	return 0;
}

static int parse_cache_timeout(const char *s)
{
	char *end;
	double t = strtod(s, &end);
	if (!*s || *end || !(t >= 0 && t <= 3600)) {
		fprintf(stderr, "stsfs: --cache-timeout wants seconds from 0 to 3600, not '%s'\n", s);
		return -1;
	}
	opts.cache_timeout = t;
	return 0;
}

static int parse_propagation(const char *s)
{
	if (strcmp(s, "shared") != 0 && strcmp(s, "none") != 0) {
		fprintf(stderr, "stsfs: --propagation wants shared or none, not '%s'\n", s);
		return -1;
	}
	opts.share_parent = strcmp(s, "shared") == 0;
	return 0;
}

static int parse_log_level(const char *s)
{
	enum log_level level;
	if (log_parse_level(s, &level) != 0) {
		fprintf(stderr, "stsfs: --log-level wants error, warning, info or debug, not '%s'\n", s);
		return -1;
	}
	log_set_level(level);
	return 0;
}

/* Allowed directories are compared after resolving, like the paths. */
static int resolve_allowed(struct cli *cli)
{
	opts.allow_backing = calloc(cli->n_allow ? cli->n_allow : 1, sizeof(char *));
	if (!opts.allow_backing)
		return -1;
	for (size_t i = 0; i < cli->n_allow; i++) {
		char real[PATH_MAX];
		if (!cli->allow[i] || !realpath(cli->allow[i], real)) {
			log_msg(L_ERROR, "--allow-backing %s: %s", cli->allow[i] ? cli->allow[i] : "", strerror(errno));
			return -1;
		}
		opts.allow_backing[opts.n_allow_backing++] = strdup(real);
	}
	return 0;
}

/* Relative directories are taken from where stsfs was started; the
 * daemon then serves from /, so that no relative name in a table or a
 * backing file reaches into that directory. */
static char *absolute(const char *dir)
{
	if (dir[0] == '/')
		return strdup(dir);
	char cwd[PATH_MAX], *out;
	if (!getcwd(cwd, sizeof(cwd)) || asprintf(&out, "%s/%s", cwd, dir) < 0)
		return NULL;
	return out;
}

static int absolute_dirs(void)
{
	char *image = absolute(opts.image_dir), *state = absolute(opts.state_dir);
	if (!image || !state) {
		free(image);
		free(state);
		return -1;
	}
	opts.image_dir = image; /* kept for the life of the process */
	opts.state_dir = state;
	return 0;
}

/* The objects the state dir and the kernel hold, adopted by each worker. */
static int adopt_objects(void)
{
	char why[STSFS_WHY_LEN] = "";
	if (state_init(opts.state_dir, why) != 0) {
		log_msg(L_ERROR, "%s", why);
		return -1;
	}
	kdm_init();
	if (loop_startup(why) != 0 || dm_startup(why) != 0 || thin_startup(why) != 0) {
		log_msg(L_ERROR, "%s", why);
		return -1;
	}
	return 0;
}

/* The supervisor checks the state dir and holds its lock for the life of
 * the mount; workers come and go under it. */
static int supervisor_main(struct fuse_args *args, const char *mountpoint, char **argv, bool foreground)
{
	char why[STSFS_WHY_LEN] = "";
	if (state_init(opts.state_dir, why) != 0) {
		log_msg(L_ERROR, "%s", why);
		return 1;
	}
	int lock_fd = holder_lock(opts.state_dir);
	if (lock_fd < 0)
		return 1;
	return supervise(args, mountpoint, argv, foreground, lock_fd);
}

/* A worker started by the supervisor (src/proc/supervisor.c). */
static int worker_main(const char *env, struct fuse_args *args, struct cli *cli, bool single_thread)
{
	int fuse_fd, map_fd, ready_fd, cwd_fd;
	log_init_from_env();
	if (sscanf(env, "%d:%d:%d:%d", &fuse_fd, &map_fd, &ready_fd, &cwd_fd) != 4) {
		log_msg(L_ERROR, "%s=%s is not a worker's", WORKER_ENV, env);
		return WORKER_EXIT_FATAL;
	}
	unsetenv(WORKER_ENV);
	crash_handlers_install();
	int fds[] = { fuse_fd, map_fd, ready_fd, cwd_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		fcntl(fds[i], F_SETFD, FD_CLOEXEC);
	int bad = fchdir(cwd_fd) < 0 || absolute_dirs() != 0 || resolve_allowed(cli) != 0 || chdir("/") < 0;
	close(cwd_fd);
	if (bad || adopt_objects() != 0)
		return WORKER_EXIT_FATAL;
	int ret = worker_run(args, fuse_fd, map_fd, ready_fd, single_thread);
	state_sync();
	return ret;
}

static void free_cli(struct cli *cli)
{
	for (size_t i = 0; i < cli->n_allow; i++)
		free(cli->allow[i]);
	free(cli->allow);
	free(cli->positional[0]);
	free(cli->positional[1]);
	free(cli->image_dir);
	free(cli->state_dir);
	free(cli->owner);
	free(cli->mode);
	free(cli->cache_timeout);
	free(cli->log_level);
	free(cli->tenancy);
	free(cli->quota);
	free(cli->propagation);
}

/* --tenancy, --quota, --reap (docs/tenancy.md). */
static int parse_tenancy(struct cli *cli)
{
	char why[256] = "";
	if (cli->tenancy && tenancy_parse_mode(cli->tenancy, &tenancy.mode) != 0) {
		fprintf(stderr, "stsfs: --tenancy wants uid or pidns, not '%s'\n", cli->tenancy);
		return -1;
	}
	if (cli->quota && tenancy_parse_quota(cli->quota, &tenancy.quota, why, sizeof(why)) != 0) {
		fprintf(stderr, "stsfs: --quota: %s\n", why);
		return -1;
	}
	if ((cli->quota || cli->reap) && !tenancy_on()) {
		fprintf(stderr, "stsfs: --quota and --reap need --tenancy uid or pidns\n");
		return -1;
	}
	tenancy.reap = cli->reap;
	return 0;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct cli cli = { 0 };
	struct fuse_cmdline_opts fo = { 0 };
	int ret = 1;
	if (fuse_opt_parse(&args, &cli, cli_spec, cli_proc) != 0)
		goto out;
	if (cli.help) {
		usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (cli.version) {
		printf("stsfs %s\nFUSE library version %s\n", STSFS_VERSION, fuse_pkgversion());
		ret = 0;
		goto out;
	}
	/* mount.fuse3 runs "stsfs SOURCE MOUNTPOINT -o ...": the source names
	 * nothing here. */
	if (cli.n_positional && fuse_opt_add_arg(&args, cli.positional[cli.n_positional - 1]) != 0)
		goto out;
	/* A worker reads its supervisor's command line: a relative mount
	 * point is the starter's, resolved from the directory it started in. */
	int cwd_fd;
	const char *worker_env = getenv(WORKER_ENV);
	if (worker_env && sscanf(worker_env, "%*d:%*d:%*d:%d", &cwd_fd) == 1 && fchdir(cwd_fd) != 0)
		goto out;
	if (fuse_parse_cmdline(&args, &fo) != 0)
		goto out;
	if (!fo.mountpoint) {
		fprintf(stderr, "stsfs: no mount point (see %s --help)\n", argv[0]);
		goto out;
	}
	opts.image_dir = cli.image_dir ? cli.image_dir : "/var/lib/stsfs/images";
	opts.state_dir = cli.state_dir ? cli.state_dir : "/var/lib/stsfs";
	opts.allow_host_devices = cli.allow_host_devices;
	opts.manage_external = cli.manage_external;
	opts.mode = 0755;
	opts.cache_timeout = 1;
	opts.share_parent = true;
	if ((cli.owner && parse_owner(cli.owner) != 0) || (cli.mode && parse_mode(cli.mode) != 0) ||
	    (cli.cache_timeout && parse_cache_timeout(cli.cache_timeout) != 0) ||
	    (cli.log_level && parse_log_level(cli.log_level) != 0) ||
	    (cli.propagation && parse_propagation(cli.propagation) != 0) || parse_tenancy(&cli) != 0)
		goto out;
	/* Tenants are other users: they need the mount and room to mkdir. */
	if (tenancy_on() && !cli.mode)
		opts.mode = 0777;
	/* The kernel lets every user in and checks no modes: stsfs does both
	 * (src/fuse/perm.c), so that every refusal says why in `error`.
	 * Without -o allow_other only the mounter may use the tree, as FUSE
	 * would have it. */
	opts.mounter_only = !cli.allow_other && !tenancy_on();
	opts.mounter = getuid();
	opts.root_too = cli.allow_root;
	fuse_opt_add_arg(&args, "-oallow_other,fsname=stsfs,subtype=stsfs");
	if (fo.debug)
		fuse_opt_add_arg(&args, "-d");
	const char *worker = getenv(WORKER_ENV);
	if (worker)
		ret = worker_main(worker, &args, &cli, fo.singlethread);
	else if (absolute_dirs() == 0 && resolve_allowed(&cli) == 0)
		ret = supervisor_main(&args, fo.mountpoint, argv, fo.foreground);
out:
	for (size_t i = 0; i < opts.n_allow_backing; i++)
		free(opts.allow_backing[i]);
	free(opts.allow_backing);
	free(fo.mountpoint);
	free_cli(&cli);
	fuse_opt_free_args(&args);
	return ret;
}
