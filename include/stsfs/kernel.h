/* Kernel access: loop ioctls, libblkid, libdevmapper, external tools.
 * No FUSE types here. Every function returns 0 (or a count) or -errno and,
 * on failure, writes a short reason into `why` (STSFS_WHY_LEN bytes). */
#ifndef STSFS_KERNEL_H
#define STSFS_KERNEL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stsfs/cancel.h"
#include "stsfs/kv.h"
#include "stsfs/value.h"

/* ---- loop devices ---- */

struct kloop_config {
	const char *backing;   /* canonical path of the backing file */
	int backing_fd;        /* >= 0: this file (opened by its writer), not the path */
	uint64_t offset;
	uint64_t sizelimit;
	uint32_t sector_size;  /* 0: kernel default */
	bool read_only, autoclear, partscan, direct_io;
	/* The path was checked as it is: open it without following any
	 * symlink, and only a regular file (a writer of a checked directory
	 * must not swap in a link to a host file in between). */
	bool exact_path;
};

/* What the kernel reports for a bound loop device (sysfs + LOOP_GET_STATUS64). */
struct kloop_state {
	int nr;
	dev_t dev;
	char backing[PATH_MAX];
	dev_t backing_dev;
	ino_t backing_ino;
	uint64_t offset, sizelimit, size_bytes;
	uint32_t sector_size;
	bool read_only, autoclear, partscan, direct_io;
};

/* Attach to a free device: LOOP_CTL_GET_FREE + LOOP_CONFIGURE, retrying with
 * a fresh device when another program takes it first (EBUSY); falls back to
 * LOOP_SET_FD + LOOP_SET_STATUS64 on kernels without LOOP_CONFIGURE. */
int kloop_attach(const struct kloop_config *cfg, int *nr, char *why);
/* Detach; -EBUSY (device unchanged) while anything else holds it open. */
int kloop_detach(int nr, char *why);
/* -ENXIO when the device does not exist or has no backing file. */
int kloop_query(int nr, struct kloop_state *st);
/* Bound loop device numbers, ascending. Caller frees *nrs. */
int kloop_list(int **nrs, size_t *n);
/* Re-read the backing file's size into the device's capacity. */
int kloop_set_capacity(int nr, char *why);
int kloop_set_offset_limit(int nr, uint64_t offset, uint64_t sizelimit, char *why);
int kloop_set_flag(int nr, unsigned lo_flag, bool on, char *why);
int kloop_set_direct_io(int nr, bool on, char *why);
int kloop_set_sector_size(int nr, uint32_t size, char *why);
void kloop_devpath(int nr, char *buf, size_t len);

/* ---- block devices (any MAJ:MIN) ---- */

/* /dev path of a block device; creates the node under /dev when missing
 * (no udev, e.g. in the test VM). */
int kblk_devpath(dev_t dev, const char *kname, char *buf, size_t len);
int kblk_size(dev_t dev, uint64_t *bytes);
/* True when something holds the device (dm table, mount): sysfs holders or
 * an exclusive opener. */
bool kblk_in_use(dev_t dev);

/* libblkid low-level probe of a region (size 0: to the end), as `blkid -p
 * -o export` names the values. Nothing found is not an error. Several
 * signatures (libblkid's "ambivalent result"): ambivalent=1, signatures=N
 * and one signature record (struct kblk_sig's fields) each, as wipefs
 * lists them. */
int kblk_probe(const char *devpath, uint64_t offset, uint64_t size, struct kv_block *out, char *why);

/* One signature (file system, RAID, partition table...) as wipefs lists it. */
struct kblk_sig {
	char type[32];   /* TYPE or PTTYPE */
	char usage[32];  /* USAGE, "partition-table" for PTTYPE */
	uint64_t offset; /* of the magic, bytes into the region */
	char magic[65];  /* the magic bytes, hex */
	char uuid[64];
	char label[128];
};
#define KBLK_MAX_SIGS 64
/* Every signature of the region, in libblkid's probing order. */
int kblk_signatures(const char *devpath, uint64_t offset, uint64_t size, struct kblk_sig *sigs, size_t *n,
		    char *why);
/* Erases every signature of the region as `wipefs -a` does (no partition
 * table reread), on the device opened O_EXCL: -EBUSY while it is mounted
 * or held. sigs (KBLK_MAX_SIGS, may be NULL) gets what was erased. */
int kblk_wipe(const char *devpath, uint64_t offset, uint64_t size, struct kblk_sig *sigs, size_t *n, char *why);

struct kblk_part {
	int partno;
	uint64_t start, size; /* bytes */
	char type[64];
	char uuid[64];
	char name[128];
};
/* Partition list; *parts is NULL with *n = 0 when there is no table. */
int kblk_partitions(const char *devpath, struct kblk_part **parts, size_t *n, char *why);

/* ---- external tools (dmpd) ---- */

/* Runs argv[0] (searched in PATH) without a shell, stdin from /dev/null;
 * collects stdout and stderr (malloc'd, NUL-terminated; either may be NULL
 * to discard) and the exit status. -ENOENT when the tool is missing;
 * -EINTR when cancel fired (the tool is killed). cancel may be NULL. */
int ktool_run(const char *const argv[], struct cancel *cancel, char **out, char **err, int *exit_code, char *why);

/* ---- persistent-data metadata (thin-pool, cache, era) ---- */

enum kmeta_kind { KMETA_THIN, KMETA_CACHE, KMETA_ERA };
enum kmeta_op { KMETA_CHECK, KMETA_DUMP, KMETA_LS, KMETA_DELTA };

struct kmeta_req {
	enum kmeta_kind kind;
	enum kmeta_op op;          /* KMETA_LS and KMETA_DELTA: thin only */
	const char *devpath;       /* the metadata device */
	const char *live_name;     /* the dm device using it; NULL when inactive */
	const char *tmp_dir;       /* live cache/era: where the copy is made */
	uint64_t snap1, snap2;     /* KMETA_DELTA: thin device ids */
	struct cancel *cancel;     /* may be NULL */
};

struct kmeta_result {
	char *out, *err;           /* malloc'd */
	int exit_code;
	enum kmeta_kind kind;      /* whose tool ran (the request's kind) */
	char argv0[16];            /* the tool that ran */
};

/* Runs the dmpd tool for op on consistent metadata. Inactive: straight on
 * the metadata device. Live thin pool: on a metadata snapshot
 * (reserve_metadata_snap, always released; one the user already holds is
 * used and kept). Live cache/era (no snapshot in their tools): suspended
 * (which commits the metadata) just long enough to copy the metadata device
 * to an unnamed file in tmp_dir, then resumed; the tool reads the copy.
 * Runs for one device are serialised. -EINTR when q->cancel fires while
 * waiting for another run or while the tool runs (it is killed). */
int kmeta_run(const struct kmeta_req *q, struct kmeta_result *res, char *why);
void kmeta_result_free(struct kmeta_result *res);
/* "thin-pool", "cache", "era" -> kind; -EINVAL otherwise. */
int kmeta_kind_of(const char *target, enum kmeta_kind *kind);

/* One run on a device's metadata at a time (kmeta_run takes it with the
 * live name, or the metadata device path while inactive): waits for other
 * runs on name; -EINTR when cancel fires first. */
struct kmeta_claim {
	char name[160];
	struct kmeta_claim *next;
};
int kmeta_claim(struct kmeta_claim *b, const char *name, struct cancel *cancel, char *why);
void kmeta_unclaim(struct kmeta_claim *b);

/* ---- writing persistent-data metadata (src/kernel/meta_write.c) ---- */

enum kmeta_wop { KMETA_RESTORE, KMETA_REPAIR, KMETA_TRIM };

struct kmeta_wreq {
	enum kmeta_kind kind;
	enum kmeta_wop op;         /* KMETA_TRIM: thin only */
	const char *devpath;       /* the metadata device, not in use by dm */
	const char *data_path;     /* KMETA_TRIM: the data device */
	const char *xml;           /* KMETA_RESTORE: the tool's XML */
	const char *tmp_dir;       /* where the XML and the new image are made */
	int prev_fd;               /* KMETA_REPAIR: receives the old metadata */
	struct cancel *cancel;     /* may be NULL */
};

/* Runs *_restore / *_repair into a new image in tmp_dir (removed after)
 * and, only when the tool exits 0, copies the image onto the metadata
 * device (repair first copies the old content to prev_fd); thin_trim runs
 * on the devices. A tool that fails leaves the device untouched: 0 with
 * res->exit_code set. Claims q->devpath (kmeta_claim). */
int kmeta_write(const struct kmeta_wreq *q, struct kmeta_result *res, char *why);
/* thin_metadata_size -b BLOCK -s LEN -m MAX_THINS (sectors) or
 * cache_metadata_size --block-size BLOCK --device-size LEN; *bytes only
 * when the tool exits 0. */
/* The number of thins stsfs sizes a pool's metadata for (thin_metadata_size
 * -m): the example in its manual page. */
#define KMETA_THIN_MAX_THINS 1000
int kmeta_size(enum kmeta_kind kind, uint64_t block_sectors, uint64_t len_sectors, uint64_t max_thins,
	       struct cancel *cancel, struct kmeta_result *res, uint64_t *bytes, char *why);

/* Thin pool metadata: *present when devpath holds a pool's superblock. */
int kthin_has_superblock(const char *devpath, bool *present, char *why);
/* Zeroes the superblock block: the kernel then formats fresh metadata. */
int kthin_wipe_superblock(const char *devpath, char *why);

/* ---- uevents ---- */

/* A socket that hears every block uevent; -errno where netlink is closed. */
int kuevent_open(char *why);
/* Blocks until the next uevent of a loop or dm device (devname: loop3,
 * dm-1). */
int kuevent_next(int fd, char *devname, size_t len);

/* ---- system facts ---- */

void ksys_kernel_release(char *buf, size_t len);

/* ---- processes (src/kernel/procns.c) ---- */

/* The inode of pid's pid namespace (pid 0: this process's). */
int kproc_pidns(pid_t pid, uint64_t *ino);
/* Whether process pid runs in a user namespace (its uid_map is not the
 * host's): 0 no, 1 yes, 2 yes and host uid is its root there; -1 unknown. */
int kproc_userns(pid_t pid, uid_t uid);
/* The pid namespaces and the real uids of every process now (sorted
 * arrays; free each). */
int kproc_census(uint64_t **pidns, size_t *n_pidns, uid_t **uids, size_t *n_uids);
/* ---- paths as the writing process sees them (caller.c) ---- */

/* Who wrote a value: pid 0 is the daemon itself (its own root, uid 0). */
struct kcaller {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};
/* The writer of the value this thread applies now (set by the FUSE layer
 * around a write; NULL: the daemon's own work, as at start-up). */
void kcaller_set(const struct kcaller *who);
const struct kcaller *kcaller_current(void);
/* Opens PATH as the caller sees it: resolved in its root and mount
 * namespace (symlinks and .. kept inside its root), with its uid, gid and
 * groups. -EACCES when it may not; the reason says who. */
int kcaller_open(const struct kcaller *who, const char *path, int flags, int *fd, char *why);
/* The path of the file open as fd in the daemon's own namespace,
 * verified by device and inode; "" when only the caller's namespace has
 * it (out: len bytes). */
int kcaller_host_path(const struct kcaller *who, int fd, char *out, size_t len);
/* The device number of the block device PATH names, as the caller sees it. */
int kcaller_dev(const struct kcaller *who, const char *path, dev_t *dev, char *why);

/* `thin_check -V`; "unavailable" when the tools are missing. Cached. */
const char *ksys_thin_tools_version(void);

/* ---- device-mapper (driver facts) ---- */

void kdm_library_version(char *buf, size_t len);
/* -ENODEV when the running kernel has no device-mapper. */
int kdm_driver_version(char *buf, size_t len, char *why);
/* One "name MAJOR.MINOR.PATCH" per loaded target. */
int kdm_targets(char **text, char *why);
void kdm_init(void);

/* ---- device-mapper devices ----
 * Tables are given as split lines (stsfs/dm_ref.h), device references
 * already translated to MAJ:MIN. Without device-mapper: -ENODEV. */

struct dm_lines;

struct kdm_info {
	bool exists;
	dev_t dev;
	int open_count;
	uint32_t event_nr;
	uint32_t target_count;
	bool live_table, inactive_table, suspended, read_only;
	char uuid[130];
};

struct kdm_target {
	uint64_t start, length;
	char type[64];
	char *params;
};

/* -ENODEV (with a reason) when the kernel has no device-mapper. */
int kdm_available(char *why);
int kdm_create(const char *name, const char *uuid, bool read_only, const struct dm_lines *table, char *why);
/* -EBUSY while the device is open. */
int kdm_remove(const char *name, char *why);
/* Loads the table as the inactive one and resumes; when the kernel refuses
 * it (at the load or the resume) the live table stays. */
int kdm_reload(const char *name, const struct dm_lines *table, char *why);
/* Only loads the table as the inactive one, so the kernel checks it now;
 * kdm_swap then makes it live. A refused table leaves no inactive one. */
int kdm_load(const char *name, const struct dm_lines *table, char *why);
/* Resumes with the inactive table kdm_load loaded (table: the same, to name
 * the line in a reason); when the kernel refuses it the live table stays.
 * Loading a table twice is not the same as once: a snapshot's exception
 * store is handed over to the first inactive table that takes it. */
int kdm_swap(const char *name, const struct dm_lines *table, char *why);
int kdm_suspend(const char *name, bool noflush, char *why);
int kdm_resume(const char *name, char *why);
int kdm_rename(const char *name, const char *newname, char *why);
/* *response: malloc'd, may be NULL when the target says nothing. */
int kdm_message(const char *name, uint64_t sector, const char *msg, char **response, char *why);
/* A dm device's geometry (dmsetup setgeometry; what HDIO_GETGEO reports). */
struct kdm_geometry {
	uint32_t cylinders, heads, sectors;
	uint64_t start;
};
/* The kernel refuses (EINVAL, its logged reason in why) cylinders over
 * 65535, heads or sectors over 255, and a start beyond C*H*S. */
int kdm_set_geometry(const char *name, const struct kdm_geometry *g, char *why);
/* All zeros when none is set; -ENODEV when the device does not exist. */
int kdm_geometry(const char *name, struct kdm_geometry *g, char *why);
/* Drops the inactive table (dmsetup clear); having none is not an error. */
int kdm_clear(const char *name, char *why);
/* A missing device is not an error: info->exists is false. */
int kdm_info(const char *name, struct kdm_info *info, char *why);
/* The live table, or the status lines. Free with kdm_targets_free. */
int kdm_table(const char *name, struct kdm_target **t, size_t *n, char *why);
int kdm_status(const char *name, struct kdm_target **t, size_t *n, char *why);
void kdm_targets_free(struct kdm_target *t, size_t n);
int kdm_deps(const char *name, dev_t **devs, size_t *n, char *why);
/* Names of all device-mapper devices; empty without device-mapper. Free
 * each name and the array. */
int kdm_list(char ***names, size_t *n, char *why);
/* Waits for an event after event_nr; *new_event_nr is the device's then. */
int kdm_wait_event(const char *name, uint32_t event_nr, uint32_t *new_event_nr, char *why);
/* True when the kernel has this target type loaded (or it cannot tell). */
bool kdm_target_loaded(const char *type);

/* Whether a table line of this target type can load: 0 when the kernel
 * lists the type, or has it built in, or has a module for it that it would
 * load at the table load (module dm-TYPE, or one with that alias, in
 * kdm_modules_dir); nothing is loaded here. -EINVAL with a reason ("unknown
 * target type 'X': ...") when none of these; -ENODEV when it cannot tell
 * (no device-mapper). */
int kdm_target_known(const char *type, char *why);
/* $STSFS_MODULES_DIR, or /lib/modules/RELEASE of the running kernel. */
void kdm_modules_dir(char *buf, size_t len);

#endif
