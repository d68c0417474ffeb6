#!/bin/bash
# Run a command inside a QEMU guest booted with Debian 12's own kernel, in a
# chroot of the host's / (shared over virtio-9p), and exit with its status.
# The guest has device-mapper, loop and fuse even where the host kernel has
# none. See docs/vm.md.
#
#   tests/vm/run-in-vm.sh [OPTIONS] [--] COMMAND [ARG...]
set -euo pipefail

usage() {
	cat <<'EOF'
usage: run-in-vm.sh [OPTIONS] [--] COMMAND [ARG...]

Runs COMMAND (exec'd, not through a shell: use `bash -c '...'` for shell
syntax) inside a QEMU/TCG guest running Debian 12's kernel, chrooted into the
host's / with the caller's working directory, PATH and selected environment.
Exits with COMMAND's exit status.

options:
  --timeout SECS   kill the guest after SECS seconds (default 1800, or
                   $STSFS_VM_TIMEOUT); exit status 124
  --env NAME[=VAL] pass NAME (from this environment, or set to VAL) into the
                   guest; repeatable. CI, PATH, HOME, TERM, LANG, LC_ALL, TZ
                   and every STSFS_* variable are always passed.
  --shell          interactive: after COMMAND (or without one) start a bash
                   on the guest console; no timeout unless --timeout is given.
                   Ctrl-A x kills QEMU.
  --verbose        show the kernel's boot log and what the guest init does
  --dmesg          print the guest's kernel log after COMMAND
  --scratch SIZE   give the guest an empty ext4 file system of SIZE (e.g. 4G,
                   sparse, deleted afterwards) on a virtio disk, mounted at
                   $STSFS_VM_SCRATCH_DIR: a place for loop images that avoids
                   9p (see docs/vm.md, "Loop devices on 9p")
  --skip-ok        exit 77 (skip) instead of 125 when the VM cannot run here
  -h, --help       this text

exit status: COMMAND's status; 124 timeout; 125 the VM could not run or the
guest died without reporting a status (77 instead with --skip-ok when the VM
cannot be set up here).

environment: STSFS_VM_CACHE (default /var/cache/stsfs/vm), STSFS_VM_TIMEOUT,
STSFS_VM_MEM (2G), STSFS_VM_SMP (2), STSFS_VM_ACCEL (tcg), STSFS_VM_MODULES
(extra modules to preload), STSFS_VM_KERNEL_PKG (pin a linux-image package),
STSFS_VM_RUN_PARENT (where the shared run directory goes, default /var/tmp),
STSFS_VM_SCRATCH (as --scratch), STSFS_VM_9P_CACHE (9p cache mode, loose).
EOF
}

# The caller's PATH goes to the guest; host tools may live in sbin.
readonly CALLER_PATH=$PATH
PATH=$PATH:/usr/sbin:/sbin
readonly VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly INIT_SCRIPT=$VM_DIR/init.sh
# Bump when the initramfs layout changes, to rebuild cached images.
readonly INITRD_FORMAT=1
readonly EXIT_CANNOT_RUN=125
readonly EXIT_TIMEOUT=124

CACHE=${STSFS_VM_CACHE:-/var/cache/stsfs/vm}
TIMEOUT=${STSFS_VM_TIMEOUT:-}
MEM=${STSFS_VM_MEM:-2G}
SMP=${STSFS_VM_SMP:-2}
ACCEL=${STSFS_VM_ACCEL:-tcg}
MSIZE=262144
NINEP_CACHE=${STSFS_VM_9P_CACHE:-loose}
RUN_PARENT=${STSFS_VM_RUN_PARENT:-/var/tmp}

# Loaded in this order, each after its own dependencies. Missing ones are
# reported at build time, built-in ones skipped quietly.
PRELOAD=(crc32c_generic ecb xts virtio_pci 9pnet_virtio 9p loop fuse dm-mod
	dm-thin-pool dm-cache-smq dm-era dm-delay dm-flakey dm-zero dm-snapshot
	dm-mirror dm-crypt dm-integrity dm-writecache dm-unstripe)
read -r -a EXTRA_MODULES <<<"${STSFS_VM_MODULES:-}"
PRELOAD+=("${EXTRA_MODULES[@]}")
# Loaded only with --scratch.
SCRATCH_MODULES=(virtio_blk ext4)
SCRATCH=${STSFS_VM_SCRATCH:-}

PASS_ENV=(CI PATH HOME TERM LANG LANGUAGE LC_ALL TZ USER LOGNAME)
SET_ENV=()
SHELL_MODE=0
VERBOSE=0
DMESG=0
SKIP_OK=0
COMMAND=()

# Filled in as things are made, emptied by cleanup.
RUN_DIR=
BUILD_DIR=
RUNNER_PID=
STTY_SAVED=
APT_UPDATED=0

say() { echo "run-in-vm: $*" >&2; }

cannot_run() {
	say "cannot run the VM: $*"
	if ((SKIP_OK)); then exit 77; fi
	exit "$EXIT_CANNOT_RUN"
}

# ---------------------------------------------------------------- arguments

parse_args() {
	while (($#)); do
		case $1 in
		--timeout) TIMEOUT=${2:?--timeout needs SECS}; shift ;;
		--timeout=*) TIMEOUT=${1#*=} ;;
		--env) add_env "${2:?--env needs NAME}"; shift ;;
		--env=*) add_env "${1#*=}" ;;
		--shell) SHELL_MODE=1 ;;
		--verbose) VERBOSE=1 ;;
		--dmesg) DMESG=1 ;;
		--skip-ok) SKIP_OK=1 ;;
		--scratch) SCRATCH=${2:?--scratch needs SIZE}; shift ;;
		--scratch=*) SCRATCH=${1#*=} ;;
		-h | --help) usage; exit 0 ;;
		--) shift; break ;;
		-*) say "unknown option '$1'"; usage >&2; exit 2 ;;
		*) break ;;
		esac
		shift
	done
	COMMAND=("$@")
	if ((${#COMMAND[@]} == 0 && !SHELL_MODE)); then
		usage >&2
		exit 2
	fi
	if [[ -z $TIMEOUT ]]; then
		((SHELL_MODE)) && TIMEOUT=0 || TIMEOUT=1800
	fi
	[[ $TIMEOUT =~ ^[0-9]+$ ]] || { say "bad timeout '$TIMEOUT'"; exit 2; }
	[[ -z $SCRATCH || $SCRATCH =~ ^[0-9]+[KMGT]?$ ]] || { say "bad scratch size '$SCRATCH'"; exit 2; }
}

add_env() {
	local name=${1%%=*}
	[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { say "bad --env '$1'"; exit 2; }
	if [[ $1 == *=* ]]; then
		SET_ENV+=("$1")
	else
		PASS_ENV+=("$name")
	fi
}

# ---------------------------------------------------------------- host tools

apt_update_once() {
	((APT_UPDATED)) && return 0
	say "apt-get update"
	apt-get update >&2 || return 1
	APT_UPDATED=1
}

apt_install() {
	say "installing $*"
	apt_update_once || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

is_static() { ! ldd "$1" >/dev/null 2>&1; }

ensure_host_tools() {
	local missing=()
	command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
	local bb
	bb=$(command -v busybox || true)
	[[ -n $bb ]] && is_static "$bb" || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	command -v depmod >/dev/null && command -v modprobe >/dev/null || missing+=(kmod)
	command -v gzip >/dev/null || missing+=(gzip)
	command -v flock >/dev/null || missing+=(util-linux)
	[[ -z $SCRATCH ]] || command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
	((${#missing[@]} == 0)) && return 0
	command -v apt-get >/dev/null || cannot_run "missing ${missing[*]} and no apt-get to install them"
	apt_install "${missing[@]}" || cannot_run "could not install ${missing[*]}"
}

check_host() {
	((EUID == 0)) || cannot_run "must run as root (QEMU exports / with security_model=passthrough)"
	[[ $(uname -m) == x86_64 ]] || cannot_run "needs an x86_64 host (guest kernel is Debian's amd64)"
	# The guest has its own /tmp: a checkout below /tmp (a common place for
	# a fresh clone) is carried into it, its top directory bound over.
	KEEP_TMP=
	case $PWD/ in
	/tmp/?*/*)
		KEEP_TMP=${PWD#/tmp/}
		KEEP_TMP=/tmp/${KEEP_TMP%%/*}
		[[ $KEEP_TMP != *[[:space:]]* ]] || cannot_run "working directory $PWD contains white space" ;;
	/tmp/ | /proc/* | /sys/* | /dev/* | /run/*)
		cannot_run "working directory $PWD is not shared with the guest (it has its own /tmp, /run, /dev, /proc, /sys)" ;;
	esac
	ensure_host_tools
}

# ---------------------------------------------------------------- kernel

# Prints "PACKAGE VERSION" of the kernel linux-image-amd64 depends on now.
# apt-cache takes ~1 s per call here, so the answer is kept until the package
# lists change.
resolve_kernel_pkg() {
	local key memo=$CACHE/resolved answer answer_key
	key=$({ echo "${STSFS_VM_KERNEL_PKG:-}"; ls -l --time-style=+%s /var/lib/apt/lists/ 2>/dev/null; } | sha256sum | cut -c1-16)
	if [[ -f $memo ]] && read -r answer_key answer <"$memo" && [[ $answer_key == "$key" ]]; then
		echo "$answer"
		return 0
	fi
	answer=$(resolve_kernel_pkg_apt) || return 1
	echo "$key $answer" >"$memo.tmp.$$" && mv "$memo.tmp.$$" "$memo"
	echo "$answer"
}

resolve_kernel_pkg_apt() {
	local pkg=${STSFS_VM_KERNEL_PKG:-} ver
	if [[ -z $pkg ]]; then
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	fi
	[[ -n $pkg ]] || return 1
	ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
	[[ -n $ver ]] || return 1
	echo "$pkg $ver"
}

# Sets KREL (kernel release) and KDIR (its cache directory holding the .deb
# and vmlinuz), downloading the package when it is not cached.
fetch_kernel() {
	local resolved pkg ver
	if ! resolved=$(resolve_kernel_pkg); then
		apt_update_once && resolved=$(resolve_kernel_pkg) || resolved=
	fi
	if [[ -z $resolved ]]; then
		use_cached_kernel && return 0
		cannot_run "cannot resolve the kernel package linux-image-amd64 depends on (apt-cache depends linux-image-amd64)"
	fi
	read -r pkg ver <<<"$resolved"
	KREL=${pkg#linux-image-}
	KDIR=$CACHE/kernels/${KREL}_$ver
	if [[ -f $KDIR/vmlinuz && -f $KDIR/package.deb ]]; then
		[[ -f $KDIR/vmlinux ]] || extract_vmlinux "$KDIR/vmlinuz" "$KDIR/vmlinux" || true
		return 0
	fi

	say "fetching $pkg $ver"
	BUILD_DIR=$(mktemp -d "$CACHE/.build.XXXXXX")
	# Lets apt's sandbox user write there (avoids apt's "unsandboxed" warning).
	chown _apt "$BUILD_DIR" 2>/dev/null || true
	if ! download_pkg "$pkg" "$ver"; then
		# The package lists may be stale: that version is gone from the mirror.
		apt_update_once && resolved=$(resolve_kernel_pkg) || resolved=
		[[ -n $resolved ]] || cannot_run "cannot resolve $pkg after apt-get update"
		read -r pkg ver <<<"$resolved"
		KREL=${pkg#linux-image-}
		KDIR=$CACHE/kernels/${KREL}_$ver
		download_pkg "$pkg" "$ver" || cannot_run "cannot download $pkg $ver (apt-get download)"
	fi
	local deb
	deb=$(echo "$BUILD_DIR"/*.deb)
	[[ -f $deb ]] || cannot_run "apt-get download $pkg gave no .deb"
	mkdir -p "$BUILD_DIR/vmlinuz.d" "$KDIR"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$BUILD_DIR/vmlinuz.d" --wildcards './boot/vmlinuz-*'
	mv "$BUILD_DIR"/vmlinuz.d/boot/vmlinuz-* "$KDIR/vmlinuz"
	extract_vmlinux "$KDIR/vmlinuz" "$KDIR/vmlinux" ||
		say "note: cannot extract vmlinux from the bzImage; booting the bzImage (slower)"
	mv "$deb" "$KDIR/package.deb"
	echo "$pkg $ver" >"$KDIR/package"
	cleanup_build_dir
}

# The uncompressed ELF kernel boots through its PVH entry point: that skips
# the decompressor, which takes ~4 s under TCG. Same idea as the kernel's
# scripts/extract-vmlinux: find the payload's magic, decompress, check ELF.
extract_vmlinux() {
	local image=$1 out=$2 magic tool offset
	for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
		tool=${magic%%:*}
		command -v "$tool" >/dev/null || continue
		for offset in $(LC_ALL=C grep -obUaP "${magic#*:}" "$image" | cut -d: -f1 | head -n 3); do
			tail -c "+$((offset + 1))" "$image" | "$tool" -dc >"$out.tmp" 2>/dev/null || true
			if [[ $(head -c 4 "$out.tmp" | od -An -c | tr -d ' ') == '177ELF' ]]; then
				mv "$out.tmp" "$out"
				return 0
			fi
		done
	done
	rm -f "$out.tmp"
	return 1
}

download_pkg() {
	(cd "$BUILD_DIR" && apt-get download "$1=$2" >&2)
}

# Offline fallback: the newest kernel already in the cache.
use_cached_kernel() {
	local dir
	dir=$(ls -d "$CACHE"/kernels/*/ 2>/dev/null | sort -V | tail -n 1)
	[[ -n $dir && -f $dir/vmlinuz && -f $dir/package.deb ]] || return 1
	KDIR=${dir%/}
	KREL=$(basename "$KDIR")
	KREL=${KREL%%_*}
	say "apt cannot resolve the kernel package; using the cached $KREL"
}

cleanup_build_dir() {
	[[ -n $BUILD_DIR ]] && rm -rf "$BUILD_DIR"
	BUILD_DIR=
}

# ---------------------------------------------------------------- initramfs

initrd_key() {
	{
		echo "format $INITRD_FORMAT"
		echo "modules ${PRELOAD[*]}"
		echo "scratch modules ${SCRATCH_MODULES[*]}"
		busybox 2>&1 | sed -n 1p
		cat "$INIT_SCRIPT"
	} | sha256sum | cut -c1-16
}

# Sets INITRD, building it if it is not cached for this kernel and init.
prepare_initrd() {
	INITRD=$KDIR/initrd-$(initrd_key).gz
	[[ -f $INITRD ]] && return 0
	say "building the initramfs for $KREL"
	BUILD_DIR=$(mktemp -d "$CACHE/.build.XXXXXX")
	local pkgroot=$BUILD_DIR/pkg root=$BUILD_DIR/root
	mkdir -p "$pkgroot" "$BUILD_DIR/empty.d"
	dpkg-deb --fsys-tarfile "$KDIR/package.deb" |
		tar -x -C "$pkgroot" --wildcards './lib/modules/*' './usr/lib/modules/*' 2>/dev/null || true
	if [[ ! -d $pkgroot/lib/modules/$KREL && -d $pkgroot/usr/lib/modules/$KREL ]]; then
		mkdir -p "$pkgroot/lib/modules" && mv "$pkgroot/usr/lib/modules/$KREL" "$pkgroot/lib/modules/"
	fi
	[[ -d $pkgroot/lib/modules/$KREL ]] || cannot_run "no lib/modules/$KREL in $KDIR/package.deb"
	depmod -b "$pkgroot" "$KREL"

	make_root_skeleton "$root"
	COPIED=()
	collect_modules "$pkgroot" "$root" modules "${PRELOAD[@]}"
	collect_modules "$pkgroot" "$root" modules-scratch "${SCRATCH_MODULES[@]}"
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc -R 0:0 --quiet) | gzip -6 >"$INITRD.tmp"
	rm -f "$KDIR"/initrd-*.gz
	mv "$INITRD.tmp" "$INITRD"
	cleanup_build_dir
}

make_root_skeleton() {
	local root=$1
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,mnt,tmp,run,etc/stsfs-vm,lib/modules/"$KREL"}
	cp "$(command -v busybox)" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
	install -m 755 "$INIT_SCRIPT" "$root/init"
	cat >"$root/sbin/stsfs-modprobe" <<'EOF'
#!/bin/sh
# Called by the kernel for module autoloading (/proc/sys/kernel/modprobe).
echo "stsfs-vm: kernel asked to load module: $* (no autoload in the guest; add it to STSFS_VM_MODULES)" >/dev/kmsg
exit 1
EOF
	chmod 755 "$root/sbin/stsfs-modprobe"
}

# collect_modules PKGROOT ROOT LIST MODULE...: resolves the modules with
# modprobe --show-depends against the package's tree, copies them
# (decompressed) and writes their load order to /etc/stsfs-vm/LIST.
declare -A COPIED=()
collect_modules() {
	local pkgroot=$1 root=$2 list=$3 mod line path base
	shift 3
	local -A seen=()
	local order=() builtin=() absent=()
	for mod; do
		local deps
		if ! deps=$(modprobe -d "$pkgroot" -S "$KREL" -C "$BUILD_DIR/empty.d" --show-depends "$mod" 2>/dev/null); then
			absent+=("$mod")
			continue
		fi
		while read -r line; do
			case $line in
			builtin\ *) builtin+=("${line#builtin }") ;;
			insmod\ *)
				path=${line#insmod }
				path=${path%% *}
				base=$(basename "$path")
				base=${base%.xz}
				base=${base%.zst}
				base=${base%.gz}
				[[ -n ${seen[$base]:-} ]] && continue
				seen[$base]=1
				[[ -n ${COPIED[$base]:-} ]] || copy_module "$path" "$root/lib/modules/$KREL/$base"
				COPIED[$base]=1
				order+=("$base")
				;;
			esac
		done <<<"$deps"
	done
	printf '%s\n' "${order[@]}" >"$root/etc/stsfs-vm/$list"
	printf '%s\n' "${builtin[@]}" >>"$root/etc/stsfs-vm/builtin"
	if ((${#absent[@]})); then
		say "warning: not in kernel $KREL: ${absent[*]}"
	fi
}

copy_module() {
	case $1 in
	*.xz) need_tool xz xz-utils && xz -dc "$1" >"$2" ;;
	*.zst) need_tool zstd zstd && zstd -qdc "$1" >"$2" ;;
	*.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

need_tool() { # need_tool COMMAND PACKAGE
	command -v "$1" >/dev/null || apt_install "$2" || cannot_run "could not install $2"
}

prepare_vm_image() {
	mkdir -p "$CACHE/kernels" || cannot_run "cannot create the cache directory $CACHE"
	exec {lock_fd}>"$CACHE/.lock"
	flock -w 900 "$lock_fd" || cannot_run "cache $CACHE is locked by another run"
	fetch_kernel
	prepare_initrd
	flock -u "$lock_fd"
	exec {lock_fd}>&-
}

# ---------------------------------------------------------------- the run

# Run directories of runs that were SIGKILLed (no trap ran): their QEMU is
# gone (it dies with its parent). Fresh ones without a pid file yet are kept.
reap_stale_run_dirs() {
	local dir pid
	for dir in "$RUN_PARENT"/stsfs-vm.*; do
		[[ -d $dir ]] || continue
		if [[ -f $dir/qemu.pid ]]; then
			pid=$(<"$dir/qemu.pid")
			[[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/exe" 2>/dev/null) == */qemu-system-* ]] && continue
		elif [[ -z $(find "$dir" -maxdepth 0 -mmin +60) ]]; then
			continue
		fi
		rm -rf "$dir"
	done
}

make_run_dir() {
	mkdir -p "$RUN_PARENT"
	reap_stale_run_dirs
	RUN_DIR=$(mktemp -d "$(realpath "$RUN_PARENT")/stsfs-vm.XXXXXX")
	case $RUN_DIR/ in
	/tmp/* | /proc/* | /sys/* | /dev/* | /run/*)
		cannot_run "STSFS_VM_RUN_PARENT=$RUN_PARENT is not shared with the guest" ;;
	esac
	[[ $RUN_DIR != *[[:space:]]* ]] || cannot_run "run directory '$RUN_DIR' contains white space"
}

# An empty ext4 image for --scratch, in the run directory (deleted with it).
make_scratch_disk() {
	[[ -n $SCRATCH ]] || return 0
	truncate -s "$SCRATCH" "$RUN_DIR/scratch.img"
	mkfs.ext4 -q -F -m 0 -N 65536 -E nodiscard,root_owner=0:0 "$RUN_DIR/scratch.img" ||
		cannot_run "mkfs.ext4 of the $SCRATCH scratch disk failed"
	mkdir "$RUN_DIR/scratch"
}

env_names() {
	local name
	for name in "${PASS_ENV[@]}"; do echo "$name"; done
	compgen -e | grep '^STSFS_' || true
}

write_command_script() {
	local name
	{
		echo '#!/bin/bash'
		echo '# Written by run-in-vm.sh; runs in the guest, chrooted into the host root.'
		while read -r name; do
			if [[ $name == PATH ]]; then
				printf 'export PATH=%q\n' "$CALLER_PATH"
			elif [[ -v $name ]]; then
				printf 'export %s=%q\n' "$name" "${!name}"
			fi
		done < <(env_names | sort -u)
		for name in "${SET_ENV[@]}"; do
			printf 'export %s=%q\n' "${name%%=*}" "${name#*=}"
		done
		echo 'export STSFS_IN_VM=1'
		[[ -z $SCRATCH ]] || printf 'export STSFS_VM_SCRATCH_DIR=%q\n' "$RUN_DIR/scratch"
		printf 'umask %s\n' "$(umask)"
		printf 'cd -- %q || exit 125\n' "$PWD"
		if ((SHELL_MODE)); then
			write_shell_part
		else
			printf 'exec'
			printf ' %q' "${COMMAND[@]}"
			echo ' </dev/null'
		fi
	} >"$RUN_DIR/cmd.sh"
}

write_shell_part() {
	if ((${#COMMAND[@]})); then
		printf '%q ' "${COMMAND[@]}"
		echo
		echo 'echo "run-in-vm: command exited with status $?"'
	fi
	echo 'echo "run-in-vm: guest shell; exit to power off (its status is returned), Ctrl-A x kills QEMU"'
	echo 'export TERM=${TERM:-vt220}'
	echo 'exec setsid -c bash -i </dev/ttyS0 >/dev/ttyS0 2>&1'
}

kernel_image() {
	if [[ -f $KDIR/vmlinux ]]; then echo "$KDIR/vmlinux"; else echo "$KDIR/vmlinuz"; fi
}

qemu_args() {
	local append="console=ttyS0 panic=-1 oops=panic 8250.nr_uarts=1 edd=off"
	if ((VERBOSE)); then
		append+=" loglevel=7 stsfs.verbose=1"
	else
		append+=" quiet loglevel=4"
	fi
	append+=" stsfs.run=$RUN_DIR stsfs.msize=$MSIZE stsfs.cache=$NINEP_CACHE"
	((SHELL_MODE)) && append+=" stsfs.shell=1"
	((DMESG)) && append+=" stsfs.dmesg=1"
	[[ -z $SCRATCH ]] || append+=" stsfs.scratch=1"
	[[ -z $KEEP_TMP ]] || append+=" stsfs.keep=$KEEP_TMP"
	QEMU=(qemu-system-x86_64 -machine q35 -accel "$ACCEL" -m "$MEM" -smp "$SMP"
		-nodefaults -no-user-config -display none -no-reboot
		-kernel "$(kernel_image)" -initrd "$INITRD" -append "$append"
		-virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap
		-pidfile "$RUN_DIR/qemu.pid")
	[[ $ACCEL == tcg ]] && QEMU+=(-cpu max) || QEMU+=(-cpu host)
	if [[ -n $SCRATCH ]]; then
		QEMU+=(-drive "file=$RUN_DIR/scratch.img,format=raw,if=none,id=scratch,cache=unsafe,discard=unmap"
			-device virtio-blk-pci,drive=scratch)
	fi
	if ((SHELL_MODE)); then
		QEMU+=(-chardev stdio,id=con,mux=on,signal=off -serial chardev:con -mon chardev=con,mode=readline)
	else
		QEMU+=(-chardev stdio,id=con,signal=on -serial chardev:con)
	fi
}

# Runs QEMU under timeout(1); sets QEMU_STATUS.
run_qemu() {
	local limit=()
	((TIMEOUT > 0)) && limit=(timeout --foreground --kill-after=10 "$TIMEOUT")
	# If this script is SIGKILLed, its child gets SIGTERM (and passes it on).
	setpriv --help 2>/dev/null | grep -q -- --pdeathsig && limit=(setpriv --pdeathsig TERM "${limit[@]}")
	if ((SHELL_MODE)); then
		[[ -t 0 ]] && STTY_SAVED=$(stty -g)
		"${limit[@]}" "${QEMU[@]}" <&0 &
	else
		"${limit[@]}" "${QEMU[@]}" </dev/null &
	fi
	RUNNER_PID=$!
	QEMU_STATUS=0
	wait "$RUNNER_PID" || QEMU_STATUS=$?
	RUNNER_PID=
}

report() {
	if [[ -f $RUN_DIR/status ]]; then
		local rc
		rc=$(<"$RUN_DIR/status")
		[[ $rc =~ ^[0-9]+$ ]] || { say "bad exit status '$rc' from the guest"; exit "$EXIT_CANNOT_RUN"; }
		exit "$rc"
	fi
	if [[ -f $RUN_DIR/setup-error ]]; then
		cannot_run "$(<"$RUN_DIR/setup-error")"
	fi
	if ((TIMEOUT > 0)) && ((QEMU_STATUS == 124 || QEMU_STATUS == 137)); then
		say "timed out after $TIMEOUT s: QEMU killed (raise --timeout or STSFS_VM_TIMEOUT)"
		exit "$EXIT_TIMEOUT"
	fi
	say "the guest stopped without reporting an exit status (QEMU exit status $QEMU_STATUS; see the console output above)"
	exit "$EXIT_CANNOT_RUN"
}

# ---------------------------------------------------------------- cleanup

kill_qemu() {
	local pid
	if [[ -n $RUNNER_PID ]]; then
		kill -TERM "$RUNNER_PID" 2>/dev/null || true
	fi
	[[ -n $RUN_DIR && -f $RUN_DIR/qemu.pid ]] || return 0
	pid=$(<"$RUN_DIR/qemu.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */qemu-system-* ]] || return 0
		((i == 1)) && kill -TERM "$pid" 2>/dev/null
		((i == 10)) && kill -KILL "$pid" 2>/dev/null
		sleep 0.5
	done
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	kill_qemu
	if [[ -n $RUNNER_PID ]]; then wait "$RUNNER_PID" 2>/dev/null || true; fi
	[[ -n $STTY_SAVED ]] && stty "$STTY_SAVED" 2>/dev/null
	[[ -n $RUN_DIR ]] && rm -rf "$RUN_DIR"
	[[ -n $BUILD_DIR ]] && rm -rf "$BUILD_DIR"
	[[ -n ${INITRD:-} ]] && rm -f "$INITRD.tmp"
	exit "$rc"
}

main() {
	parse_args "$@"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	check_host
	prepare_vm_image
	make_run_dir
	make_scratch_disk
	write_command_script
	qemu_args
	((VERBOSE)) && say "${QEMU[*]}"
	run_qemu
	report
}

main "$@"
