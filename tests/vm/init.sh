#!/bin/busybox sh
# PID 1 of the stsfs test VM (copied into the initramfs by run-in-vm.sh; runs
# under busybox sh, not bash).
#
# 1. mounts proc/sys/devtmpfs and insmods the preloaded modules in the order
#    listed in /etc/stsfs-vm/modules (the guest cannot autoload modules: the
#    kernel would run the host's modprobe, which has no modules for this
#    kernel);
# 2. mounts the host's / over virtio-9p at /mnt, gives it fresh proc, sysfs,
#    devtmpfs, devpts, /dev/shm and its own tmpfs /tmp and /run;
# 3. chroots into it and runs $RUN/cmd.sh (written by the host: working
#    directory, environment and the command);
# 4. writes the exit status to $RUN/status on the host and powers off.
#
# Kernel command line parameters (set by run-in-vm.sh):
#   stsfs.run=DIR      the host directory shared with run-in-vm.sh
#   stsfs.msize=N      9p msize
#   stsfs.cache=MODE   9p cache mode
#   stsfs.verbose=1    say what happens
#   stsfs.shell=1      interactive mode (keep the console as a terminal)
#   stsfs.dmesg=1      print the kernel log after the command
#   stsfs.scratch=1    mount the virtio disk (ext4) at $RUN/scratch

PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

RUN=
MSIZE=262144
CACHE=loose
VERBOSE=0
SHELL_MODE=0
DMESG=0
SCRATCH=0
KEEP=
ROOT=/mnt

say() { echo "stsfs-vm: $*"; }
info() { [ "$VERBOSE" = 1 ] && say "$*"; return 0; }

halt_now() {
	sync
	poweroff -f
	sleep 5
	exit 1 # init exiting panics the kernel; panic=-1 then ends QEMU
}

# A setup failure: tell the host (if the shared directory is reachable) and stop.
setup_failed() {
	say "setup failed: $*"
	if [ -n "$RUN" ] && [ -d "$ROOT$RUN" ]; then
		echo "$*" >"$ROOT$RUN/setup-error"
	fi
	halt_now
}

parse_cmdline() {
	local word
	for word in $(cat /proc/cmdline); do
		case $word in
		stsfs.run=*) RUN=${word#*=} ;;
		stsfs.msize=*) MSIZE=${word#*=} ;;
		stsfs.cache=*) CACHE=${word#*=} ;;
		stsfs.verbose=1) VERBOSE=1 ;;
		stsfs.shell=1) SHELL_MODE=1 ;;
		stsfs.dmesg=1) DMESG=1 ;;
		stsfs.scratch=1) SCRATCH=1 ;;
		stsfs.keep=/tmp/*) KEEP=${word#*=} ;;
		esac
	done
}

mount_early() {
	/bin/busybox --install -s
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
}

# load_modules LIST: insmod each module of /etc/stsfs-vm/LIST in order;
# modules already loaded are skipped. Built-in ones were left out at build time.
load_modules() {
	local krel mod name
	krel=$(uname -r)
	while read -r mod; do
		[ -n "$mod" ] || continue
		name=$(echo "${mod%.ko}" | tr - _)
		grep -q "^$name " /proc/modules && continue
		info "insmod $mod"
		insmod "/lib/modules/$krel/$mod" || say "warning: insmod $mod failed"
	done <"/etc/stsfs-vm/$1"
}

mount_scratch() {
	[ "$SCRATCH" = 1 ] || return 0
	local dir="$ROOT$RUN/scratch" i
	load_modules modules-scratch
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[ -b /dev/vda ] && break
		sleep 0.5
	done
	info "mount /dev/vda $dir"
	mount -t ext4 /dev/vda "$dir" || setup_failed "cannot mount the scratch disk"
	chmod 1777 "$dir"
}

check_devices() {
	local dev missing=
	for dev in /dev/mapper/control /dev/loop-control /dev/fuse; do
		[ -e "$dev" ] || missing="$missing $dev"
	done
	[ -z "$missing" ] || setup_failed "missing device nodes:$missing (a module did not load; see the messages above)"
}

# A working directory below the host's /tmp (stsfs.keep=/tmp/DIR): DIR is
# held aside while the guest's own /tmp is mounted, then put back in it.
keep_tmp_dir() {
	[ -n "$KEEP" ] || return 0
	mkdir -p /keep && mount -o bind "$ROOT$KEEP" /keep || setup_failed "cannot keep $KEEP of the host's /tmp"
}

restore_tmp_dir() {
	[ -n "$KEEP" ] || return 0
	mkdir -p "$ROOT$KEEP" && mount -o move /keep "$ROOT$KEEP" || setup_failed "cannot put $KEEP back in /tmp"
}

mount_host_root() {
	local opts="trans=virtio,version=9p2000.L,msize=$MSIZE,cache=$CACHE,access=client"
	info "mount -t 9p -o $opts hostroot $ROOT"
	mount -t 9p -o "$opts" hostroot "$ROOT" || setup_failed "cannot mount the host's / over 9p"
	[ -n "$RUN" ] && [ -d "$ROOT$RUN" ] || setup_failed "shared directory '$RUN' not found on the host"

	mount -t proc proc "$ROOT/proc" &&
		mount -t sysfs sysfs "$ROOT/sys" &&
		mount -t devtmpfs devtmpfs "$ROOT/dev" &&
		mkdir -p "$ROOT/dev/pts" "$ROOT/dev/shm" &&
		mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts "$ROOT/dev/pts" &&
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/dev/shm" &&
		keep_tmp_dir &&
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$ROOT/tmp" &&
		restore_tmp_dir &&
		mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$ROOT/run" ||
		setup_failed "cannot mount the guest's proc, sys, dev, /tmp or /run"
	mkdir -p "$ROOT/run/lock" && chmod 1777 "$ROOT/run/lock"
	ln -sfn /proc/self/fd "$ROOT/dev/fd"
	ln -sfn /proc/self/fd/0 "$ROOT/dev/stdin"
	ln -sfn /proc/self/fd/1 "$ROOT/dev/stdout"
	ln -sfn /proc/self/fd/2 "$ROOT/dev/stderr"
	# Optional extras; absent on some kernels.
	mount -t configfs configfs "$ROOT/sys/kernel/config" 2>/dev/null
	mount -t fusectl fusectl "$ROOT/sys/fs/fuse/connections" 2>/dev/null
	return 0
}

run_command() {
	local rc
	# Plain "\n" line ends on the host's stdout (kernel messages keep "\r\n").
	[ "$SHELL_MODE" = 1 ] || stty -onlcr 2>/dev/null
	info "running $RUN/cmd.sh"
	chroot "$ROOT" /usr/bin/env -i /bin/bash "$RUN/cmd.sh"
	rc=$?
	[ "$SHELL_MODE" = 1 ] || stty onlcr 2>/dev/null
	if [ "$DMESG" = 1 ]; then
		say "kernel log:"
		dmesg
	fi
	sync
	[ "$SCRATCH" = 1 ] && umount "$ROOT$RUN/scratch" 2>/dev/null
	echo "$rc" >"$ROOT$RUN/status.tmp" && mv "$ROOT$RUN/status.tmp" "$ROOT$RUN/status" ||
		say "cannot write the exit status to the host"
	say "exit status $rc"
}

parse_cmdline_early() {
	# /proc is needed to read the command line.
	mount_early
	parse_cmdline
}

parse_cmdline_early
hostname stsfs-vm
ip link set lo up 2>/dev/null
load_modules modules
# Module autoload requests go to a stub that logs them to the kernel log.
echo /sbin/stsfs-modprobe >/proc/sys/kernel/modprobe
mount_host_root
mount_scratch
check_devices
run_command
halt_now
