# kguest's helpers for the guest's console shell (busybox ash or dash),
# defined once per shell: the initramfs's shell sources this file, the vng
# backend sends it after boot.

# kguest_stat PID: the fields of /proc/PID/stat after "(comm)", from the
# state on (state ppid pgrp ...; field 20 is the start time).
kguest_stat() {
	read -r _ks <"/proc/$1/stat" 2>/dev/null || return 1
	echo "${_ks##*) }"
}

# kguest_starttime PID: when PID started (field 22 of its stat), which tells a
# process from a later one with the same pid.
kguest_starttime() {
	_kst=$(kguest_stat "$1") || return 1
	# shellcheck disable=SC2086
	set -- $_kst
	echo "${20}"
}

# kguest_tree PID: PID and every process below it, one per line.  Builtins
# only: it runs when the guest may be busy.
kguest_tree() {
	_kt_set=" $1 "
	_kt_grew=1
	while [ -n "$_kt_grew" ]; do
		_kt_grew=
		for _kt_f in /proc/[0-9]*/stat; do
			_kt_p=${_kt_f#/proc/}
			_kt_p=${_kt_p%/stat}
			case $_kt_set in *" $_kt_p "*) continue ;; esac
			read -r _kt_s <"$_kt_f" 2>/dev/null || continue
			_kt_s=${_kt_s##*) }
			_kt_s=${_kt_s#* }
			case $_kt_set in *" ${_kt_s%% *} "*) _kt_set="$_kt_set$_kt_p " _kt_grew=1 ;; esac
		done
	done
	for _kt_p in $_kt_set; do echo "$_kt_p"; done
}

# kguest_watch SECONDS PID: if PID (a test command's shell) still runs after
# SECONDS, print the state and kernel stack of each of its processes and
# threads; kguest's timeout follows shortly.  Returns once PID is gone.
# Only builtins in the loop but sleep: it must keep time on a busy guest.
kguest_watch() {
	_kw_secs=$1 _kw_p=$2
	read -r _kw_now _ </proc/uptime
	_kw_end=$((${_kw_now%.*} + _kw_secs))
	_kw_start=$(kguest_starttime "$_kw_p") || return 0
	while [ "${_kw_now%.*}" -lt "$_kw_end" ]; do
		sleep 1
		[ -d "/proc/$_kw_p" ] || return 0
		read -r _kw_now _ </proc/uptime
	done
	# the same process, not another that took its pid
	[ "$(kguest_starttime "$_kw_p")" = "$_kw_start" ] || return 0
	echo
	echo "kguest: still running after $_kw_secs s; the kernel stacks of its processes:"
	for _kw_q in $(kguest_tree "$_kw_p"); do
		for _kw_task in /proc/"$_kw_q"/task/*; do
			read -r _kw_st <"$_kw_task/stat" 2>/dev/null || continue
			_kw_st=${_kw_st##*) }
			read -r _kw_comm <"$_kw_task/comm"
			echo "pid ${_kw_task##*/} ($_kw_comm), state ${_kw_st%% *}:"
			while read -r _kw_line; do echo "    $_kw_line"; done <"$_kw_task/stack"
		done 2>/dev/null
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
