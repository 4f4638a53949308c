# Run as /job/run, from /tmp, by the package-check guest of pytests/test_deb.py
# (scripts/deb-testroot): what a user does with sfork's packages on a fresh
# Debian 12 machine, step by step.  Each step's output comes between
# "@@step NAME" and "@@end NAME STATUS SECONDS"; the test judges them.

step() {
	name=$1
	t0=$(date +%s)
	shift
	echo "@@step $name"
	"$@" 2>&1
	rc=$?
	echo "@@end $name $rc $(($(date +%s) - t0))"
}

apt_() { DEBIAN_FRONTEND=noninteractive apt -y -o Dpkg::Progress-Fancy=0 "$@"; }

# What is there before: the running kernel, its headers, no dkms, no sfork.
before() {
	kver=$(uname -r)
	echo "kernel $kver"
	test -e "/lib/modules/$kver/build/Makefile" && echo "headers yes"
	echo "dkms $(dpkg-query -W -f '${db:Status-Abbrev}' dkms 2>/dev/null)"
	ls -d /var/lib/dkms/sfork /usr/src/sfork-* /dev/sfork 2>/dev/null
	find /lib/modules -name 'sfork.ko*'
	grep '^sfork ' /proc/modules
	true
}

# The module that is loaded, and the file DKMS installed.
loaded() {
	ko=$(modinfo -F filename sfork)
	echo "file $ko"
	grep '^sfork ' /proc/modules
	echo "dev $(stat -c '%F %a' /dev/sfork)"
	echo "file-build-id $(readelf -n "$ko" | sed -n 's/.*Build ID: *//p')"
	echo "loaded-notes $(od -An -v -tx1 /sys/module/sfork/notes/.note.gnu.build-id | tr -d ' \n')"
	echo "modules-load.d $(cat /usr/lib/modules-load.d/sfork.conf | grep -v '^#')"
}

# README.md's example, built as README.md says.
build_example() {
	mkdir -m 755 /tmp/example && cp /job/prog.c /tmp/example/ && cd /tmp/example &&
		cc prog.c $(pkg-config --cflags --libs sfork) &&
		ldd ./a.out
}

# Run the example and show the module's region counter around it.
run_example() {
	grep '^regions_created ' /sys/kernel/debug/sfork/stats
	(cd /tmp/example && "$@" ./a.out)
	echo "exit $?"
	grep '^regions_created ' /sys/kernel/debug/sfork/stats
}

# Whatever of sfork is left.
leftovers() {
	kver=$(uname -r)
	grep '^sfork ' /proc/modules
	ls -d /dev/sfork /var/lib/dkms/sfork /usr/src/sfork-* /usr/lib/modules-load.d/sfork.conf \
		/usr/include/sfork.h /usr/lib/*/libsfork* /usr/lib/*/pkgconfig/sfork.pc 2>/dev/null
	find /lib/modules -name 'sfork.ko*'
	grep -l sfork "/lib/modules/$kver/modules.dep"
	dkms status -m sfork
	dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' sfork-dkms libsfork1 libsfork-dev 2>/dev/null
	true
}

cd /job || exit 1
step before before
step install apt_ install ./sfork-dkms_*.deb ./libsfork1_*.deb ./libsfork-dev_*.deb
step dkms dkms status -m sfork
step loaded loaded
step pkg-config sh -c 'pkg-config --modversion sfork && pkg-config --cflags --libs sfork'
step build build_example
step run-root run_example
step run-nobody run_example setpriv --reuid=65534 --regid=65534 --clear-groups
step remove apt_ remove sfork-dkms libsfork1 libsfork-dev
step leftovers leftovers
