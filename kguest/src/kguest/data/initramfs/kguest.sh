# kguest's helpers for the guest's console shell (busybox ash or dash),
# defined once per shell: the initramfs's shell sources this file, the vng
# backend sends it after boot.

# kguest_stat PID: the fields of /proc/PID/stat after "(comm)", from the
# state on (state ppid pgrp ...; field 20 is the start time).
kguest_stat() {
	_ks=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	echo "${_ks##*) }"
}

# kguest_tree PID: PID and every process below it, one per line.
kguest_tree() {
	_kt_set=" $1 "
	_kt_grew=1
	while [ -n "$_kt_grew" ]; do
		_kt_grew=
		for _kt_f in /proc/[0-9]*/stat; do
			_kt_p=${_kt_f#/proc/}
			_kt_p=${_kt_p%/stat}
			case $_kt_set in *" $_kt_p "*) continue ;; esac
			_kt_s=$(kguest_stat "$_kt_p") || continue
			# shellcheck disable=SC2086
			set -- $_kt_s
			case $_kt_set in *" $2 "*) _kt_set="$_kt_set$_kt_p " _kt_grew=1 ;; esac
		done
	done
	for _kt_p in $_kt_set; do echo "$_kt_p"; done
}

# kguest_watch SECONDS PID: if PID (a test command's shell) still runs after
# SECONDS, print the state and kernel stack of each of its processes and
# threads; kguest's timeout follows shortly.  Returns once PID is gone.
kguest_watch() {
	# shellcheck disable=SC2046
	set -- "$1" "$2" $(kguest_stat "$2")
	_kw_secs=$1 _kw_t=$1 _kw_p=$2 _kw_start=${22}
	[ -n "$_kw_start" ] || return 0
	while [ "$_kw_t" -gt 0 ]; do
		sleep 1
		_kw_t=$((_kw_t - 1))
		# shellcheck disable=SC2046
		set -- $(kguest_stat "$_kw_p")
		[ "${20}" = "$_kw_start" ] || return 0
	done
	echo
	echo "kguest: still running after $_kw_secs s; the kernel stacks of its processes:"
	for _kw_q in $(kguest_tree "$_kw_p"); do
		for _kw_task in /proc/"$_kw_q"/task/*; do
			_kw_s=$(kguest_stat "$_kw_q/task/${_kw_task##*/}") || continue
			# shellcheck disable=SC2086
			set -- $_kw_s
			echo "pid ${_kw_task##*/} ($(cat "$_kw_task/comm" 2>/dev/null)), state $1:"
			sed 's/^/    /' "$_kw_task/stack" 2>/dev/null
		done
	done
	echo "kguest: (end of stacks)"
}

# kguest_look MARK: write MARK into the kernel log, print the taint, then the
# kernel log between the previous kguest mark and MARK.  The log itself is
# left as it is, for the tests' own dmesg.
kguest_look() {
	echo "kguest: --- $1 ---" >/dev/kmsg
	echo "KGTAINT $(cat /proc/sys/kernel/tainted)"
	dmesg | awk -v m="kguest: --- $1 ---" '
		index($0, "kguest: --- ") { if (index($0, m)) exit; b = ""; next }
		{ b = b $0 "\n" }
		END { printf "%s", b }'
}
