# shellcheck shell=bash
# Shared helpers for vmimages/kernels/* (sourced, not run).
#
# Every step prints "==> what" when it starts and "    what: N.Ns" when it
# ends; failures print what failed and what to do about it.  The timings of
# a run are appended to $CACHE/timings.log.

KERNELS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJECT_ROOT=$(cd "$KERNELS_DIR/../.." && pwd)
PROG=${0##*/}

_T_START=$(date +%s.%N)
_STEP_NAME=
_STEP_T0=
_TIMINGS=()
TIMINGS_LOG=

die() {
	# die "what went wrong" ["what to do"]
	printf '%s: error: %s\n' "$PROG" "$1" >&2
	[ -n "${2:-}" ] && printf '%s: fix: %s\n' "$PROG" "$2" >&2
	exit 1
}

_elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# step NAME CMD [ARGS...]: run one step (a command or a function, in this
# shell, under set -e), timed.  A failure exits via the EXIT trap below,
# which names the step.
step() {
	local name=$1
	shift
	_STEP_NAME=$name
	_STEP_T0=$(date +%s.%N)
	printf '==> %s\n' "$name"
	"$@"
	local t
	t=$(_elapsed "$_STEP_T0")
	printf '    %s: %ss\n' "$name" "$t"
	_TIMINGS+=("$(printf '%8ss  %s' "$t" "$name")")
	_STEP_NAME=
}

_on_exit() {
	local rc=$1
	if [ "$rc" != 0 ] && [ -n "$_STEP_NAME" ]; then
		printf '%s: step "%s" failed (exit %s) after %ss\n' \
			"$PROG" "$_STEP_NAME" "$rc" "$(_elapsed "$_STEP_T0")" >&2
	fi
}
trap '_on_exit $?' EXIT

# skip NAME WHY: a step that had nothing to do.
skip() { printf '==> %s: skipped (%s)\n' "$1" "$2"; }

finish() {
	local total
	total=$(_elapsed "$_T_START")
	printf '==> %s: done in %ss\n' "$PROG" "$total"
	if [ -n "$TIMINGS_LOG" ] && [ -d "$(dirname "$TIMINGS_LOG")" ]; then
		{
			printf '# %s %s  (%s)\n' "$(date -Is)" "$PROG" "${*:-}"
			printf '%s\n' "${_TIMINGS[@]}"
			printf '%8ss  total\n' "$total"
		} >>"$TIMINGS_LOG"
	fi
}

need_root() {
	[ "$(id -u)" = 0 ] || die "$PROG needs root ($1)" "run it as root: sudo $0 $*"
}

# apt_host_install PKG...: install bookworm packages on the host, if missing.
apt_host_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	need_root "apt-get install ${missing[*]}"
	local log
	log=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o DPkg::Lock::Timeout=600 -o Dpkg::Progress-Fancy=0 "${missing[@]}" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		die "apt-get install ${missing[*]} failed (output above)" \
			"run 'apt-get update' and retry; if the package is unknown, check /etc/apt/sources.list*"
	fi
	grep -E '^(Get|Setting up) ' "$log" | sed 's/^/    apt: /' || true
	rm -f "$log"
}

# lock FILE: hold an exclusive lock for the rest of the script (concurrent
# provisioning of one cache waits instead of racing).
lock() {
	mkdir -p "$(dirname "$1")"
	exec 9>"$1"
	if ! flock -n 9; then
		echo "==> waiting for another $PROG on $(dirname "$1") (lock $1)"
		flock 9
	fi
}

# mounts_under DIR: print mount points at or below DIR (must be none before rm -rf).
mounts_under() {
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts
}

# human SIZE-IN-BYTES-OR-PATH
dsize() { du -sh --apparent-size "$1" 2>/dev/null | cut -f1; }

# load_descriptor FILE: source a kernel.env written by provision-*.
load_descriptor() {
	[ -f "$1" ] || return 1
	# shellcheck disable=SC1090
	. "$1"
}

# chroot_run ROOT [--bind HOSTDIR]... [--env VAR=VALUE]... [--cwd DIR] -- CMD [ARGS...]
# Run CMD inside the chroot ROOT in a private mount namespace with /dev and
# /proc mounted and each HOSTDIR bound at the same path.  Every mount lives
# only in that namespace: nothing is left mounted when CMD ends, however it
# ends, and no other process (nor a later rm -rf of ROOT) ever sees them.
# The environment is reset (PATH, HOME, LANG, TERM plus the --env ones).
chroot_run() {
	local root=$1 cwd=/ binds=() envs=() made=() b rc=0
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--bind) binds+=("$2"); shift 2 ;;
		--env) envs+=("$2"); shift 2 ;;
		--cwd) cwd=$2; shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	[ -x "$root/usr/bin/env" ] || die "$root is not a usable chroot" "rerun the provision script"
	local d
	for b in "${binds[@]}"; do
		[ -d "$b" ] || die "chroot_run: $b is not a directory"
		# remember every directory mkdir -p will create for the mount point
		d=$root$b
		while [ ! -e "$d" ] && [ ! -L "$d" ]; do made+=("$d"); d=$(dirname "$d"); done
	done
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
	unshare --mount --propagation private -- /bin/bash -c '
		set -e
		root=$1 cwd=$2 nb=$3 ne=$4
		shift 4
		mount --rbind /dev "$root/dev"
		mount -t proc proc "$root/proc"
		for ((i = 0; i < nb; i++)); do
			mkdir -p "$root$1"
			mount --bind "$1" "$root$1"
			shift
		done
		envs=()
		for ((i = 0; i < ne; i++)); do envs+=("$1"); shift; done
		exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive \
			"${envs[@]}" /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
	' chroot_run "$root" "$cwd" "${#binds[@]}" "${#envs[@]}" "${binds[@]}" "${envs[@]}" "$@" || rc=$?
	# mount points this call had to create (empty again now), deepest first
	for d in "${made[@]}"; do rmdir "$d" 2>/dev/null || true; done
	return "$rc"
}

# banner_of VMLINUZ: the version banner in an x86 bzImage (where kguest reads it).
banner_of() {
	python3 - "$1" <<-'PY'
		import struct, sys
		h = open(sys.argv[1], "rb").read(0x10000)
		if h[0x202:0x206] != b"HdrS":
		    sys.exit(f"{sys.argv[1]}: not an x86 bzImage")
		off = struct.unpack_from("<H", h, 0x20E)[0] + 0x200
		print(h[off:off + 256].split(b"\0", 1)[0].decode(errors="replace"))
	PY
}

# check_pair VMLINUZ KDIR KVER HINT: the image and the headers are both KVER.
# Sets KERNEL_BANNER and KERNEL_CC (the compiler the kernel was built with).
check_pair() {
	local uts
	[ -f "$1" ] || die "$1 missing" "$4"
	KERNEL_BANNER=$(banner_of "$1")
	[ "${KERNEL_BANNER%% *}" = "$3" ] || die "$1 is '${KERNEL_BANNER%% *}', expected $3" "$4"
	uts=$(sed -n 's/.*UTS_RELEASE "\(.*\)".*/\1/p' "$2/include/generated/utsrelease.h" 2>/dev/null)
	[ "$uts" = "$3" ] || die "headers $2 are '${uts:-missing}', expected $3" "$4"
	KERNEL_CC=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"/\1/p' "$2/.config")
}

# compare_cc KERNEL_CC BUILD_CC: warn when the module's compiler differs in major.
compare_cc() {
	local kv=${1##* } cv=${2##* }
	if [ "${kv%%.*}" != "${cv%%.*}" ]; then
		echo "    WARNING: kernel built with '$1' but modules build with '$2'" >&2
	elif [ "$kv" != "$cv" ]; then
		echo "    note: kernel built with '$1', modules with '$2' (same major)"
	else
		echo "    compiler: $2 (same as the kernel's)"
	fi
}

# write_descriptor CACHE KEY=VALUE...: CACHE/kernel.env (sourceable shell) and
# CACHE/kernel.json (same keys; BUILD_PREFIX as a list), both atomically.
write_descriptor() {
	local cache=$1
	shift
	python3 - "$cache" "$PROG" "$@" <<-'PY'
		import json, os, shlex, sys, time
		cache, prog, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
		d = dict(p.split("=", 1) for p in pairs)
		env = [f"# Written by vmimages/kernels/{prog} on {time.strftime('%F %T')}.  Sourceable."]
		env += [f"{k}={shlex.quote(v)}" for k, v in d.items()]
		d["BUILD_PREFIX"] = shlex.split(d.get("BUILD_PREFIX", ""))
		for name, text in (("kernel.env", "\n".join(env) + "\n"),
		                   ("kernel.json", json.dumps(d, indent=2) + "\n")):
		    tmp = os.path.join(cache, f".{name}.tmp")
		    with open(tmp, "w") as f:
		        f.write(text)
		    os.replace(tmp, os.path.join(cache, name))
	PY
}
