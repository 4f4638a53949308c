// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress oom: regions larger than a memory cgroup's memory.max.  The
 * toucher is OOM-killed inside the cgroup, an eager region fails with
 * ENOMEM, and regions within the limit work as anywhere else.
 */
#include "stress.h"

/* ---- oom ----------------------------------------------------------------- */

struct oomsh {
	_Atomic long progress;
	_Atomic int ready;	/* the non-toucher has pre-faulted its pages */
};

static void wait_ready(struct oomsh *sh)
{
	double end = now_s() + 60;

	while (!atomic_load(&sh->ready) && now_s() < end)
		sleep_us(1000);
}

static char cg_dir[128];

static long cg_read(const char *file, const char *key)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cg_dir, file);
	return key ? read_keyed(path, key) : read_long(path);
}

static int enter_cgroup(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
	return write_str(path, "0");
}

/* Pre-fault a few pages of the first 2 MiB, so that checking them later needs no memory. */
static void prefault(const char *base)
{
	for (long p = 0; p < 512; p += 64)
		(void)*(volatile const uint64_t *)(base + kword_off(p));
}

static int check_prefaulted(const char *base, uint64_t seed, long done)
{
	for (long p = 0; p < 512 && p < done; p += 64)
		if (*(volatile const uint64_t *)(base + kword_off(p)) != kval(seed, p))
			return E_MISMATCH;
	return 0;
}

/* A lazy region of @big bytes, sforked from inside the cgroup: the pid, or -1. */
static pid_t oom_sfork(size_t big, int d, char **addr)
{
	void *a = NULL;
	pid_t c;

	if (enter_cgroup())
		return -1;
	c = sfork(big, dir_flag[d] | SFORK_LAZY, &a);
	*addr = a;
	return c;
}

/* Lazy region beyond the limit, touched by the child: the child must die. */
static int oom_child_touches(struct oomsh *sh, size_t big, size_t limit, int d, uint64_t seed)
{
	long npages = big / PAGE, done;
	char *addr;
	pid_t c = oom_sfork(big, d, &addr);
	int st;

	if (c < 0)
		return E_SFORK;
	if (c == 0) {
		wait_ready(sh);
		_exit(touch_pages(addr, npages, 1, seed, &sh->progress));
	}
	prefault(addr);
	atomic_store(&sh->ready, 1);
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	done = atomic_load(&sh->progress);
	if (WIFEXITED(st))
		return E_OVER_LIMIT;	/* it touched all of it */
	if (!WIFSIGNALED(st) || (WTERMSIG(st) != SIGKILL && WTERMSIG(st) != SIGBUS))
		return E_CHILD_STATUS;
	if ((size_t)done * PAGE > limit)
		return E_OVER_LIMIT;
	return check_prefaulted(addr, seed, done);
}

/* Lazy region beyond the limit, touched by the parent: the parent must die, the child sees its data. */
static int oom_parent_touches(struct oomsh *sh, size_t big, int d, uint64_t seed)
{
	long npages = big / PAGE;
	double end;
	pid_t me = getpid(), c;
	char *addr;

	c = oom_sfork(big, d, &addr);
	if (c < 0)
		return E_SFORK;
	if (c == 0) {
		prefault(addr);
		atomic_store(&sh->ready, 1);
		end = now_s() + 120;
		while (getppid() == me) {
			if (now_s() > end)
				_exit(E_TIMEOUT);
			sleep_us(2000);
		}
		_exit(check_prefaulted(addr, seed, atomic_load(&sh->progress)));
	}
	wait_ready(sh);
	touch_pages(addr, npages, 1, seed, &sh->progress);
	kill(c, SIGKILL);
	return E_OVER_LIMIT;
}

/* Eager region beyond the limit: ENOMEM, and nothing left behind. */
static int maps_lines(void)
{
	char maps[65536];
	int n = 0;

	if (read_str("/proc/self/maps", maps, sizeof(maps)))
		return -1;
	for (char *p = maps; (p = strchr(p, '\n')); p++)
		n++;
	return n;
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) != -1;
	return n;
}

/*
 * Eager region beyond the limit: ENOMEM, and nothing left behind.  Mappings
 * and descriptors are counted rather than looked for by name: a region's
 * name in maps is the module's business.
 */
static int oom_eager(size_t big, int d)
{
	int maps = maps_lines(), fds = open_fds(), err;
	void *addr = NULL;

	if (enter_cgroup())
		return E_SFORK;
	if (sfork(big, dir_flag[d] | SFORK_EAGER, &addr) == 0)
		_exit(0);
	err = errno;
	if (addr || err == 0) {
		while (wait(NULL) > 0)
			;
		return E_EAGER_OK;
	}
	if (err != ENOMEM)
		return E_EAGER_ERRNO;
	if (waitpid(-1, NULL, WNOHANG) >= 0 || errno != ECHILD)
		return E_LEFTOVER;
	if (maps < 0 || maps_lines() != maps || open_fds() != fds)
		return E_LEFTOVER;
	return 0;
}

/* Regions within the limit work as anywhere else. */
static int oom_fits(size_t len, int alloc, uint64_t seed)
{
	if (enter_cgroup())
		return E_SFORK;
	return one_pair(D_BI, alloc == SFORK_EAGER ? 2 : 1, len, seed, NULL) ? E_MISMATCH : 0;
}

/* Run @what in a new process that moves itself into the cgroup; its exit status. */
#define IN_CGROUP(st, what) do {					\
		pid_t _p = fork();					\
		if (_p == 0)						\
			_exit(what);					\
		while (waitpid(_p, &(st), 0) < 0 && errno == EINTR)	\
			;						\
	} while (0)

int mode_oom(long n, size_t limit, size_t big, uint64_t seed)
{
	struct oomsh *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char buf[512], path[256];
	long ooms0 = 0, vm0 = 0, ooms, vm, peak = -1, kills_child = 0, kills_parent = 0, sigbus = 0,
	     enomem = 0, orphans = 0, maxpages = 0, minpages = LONG_MAX;
	int added_memory = 0, bad = 0, st;
	double t0 = now_s();

	if (sh == MAP_FAILED)
		return 1;
	if (read_keyed("/proc/vmstat", "oom_kill") < 0) {
		failf("/proc/vmstat has no oom_kill (a kernel without CONFIG_VM_EVENT_COUNTERS): "
		      "nothing would show an OOM kill outside the cgroup");
		return 1;
	}
	if (read_str(CGROOT "/cgroup.controllers", buf, sizeof(buf)) || !strstr(buf, "memory")) {
		failf("no cgroup2 memory controller at " CGROOT);
		return 1;
	}
	if (read_str(CGROOT "/cgroup.subtree_control", buf, sizeof(buf)) == 0 &&
	    !strstr(buf, "memory")) {
		if (write_str(CGROOT "/cgroup.subtree_control", "+memory")) {
			failf("enabling memory in " CGROOT "/cgroup.subtree_control: %s",
			      strerror(errno));
			return 1;
		}
		added_memory = 1;
	}
	snprintf(cg_dir, sizeof(cg_dir), CGROOT "/sfork-stress-%d", getpid());
	if (mkdir(cg_dir, 0755)) {
		failf("mkdir %s: %s", cg_dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/memory.max", cg_dir);
	snprintf(buf, sizeof(buf), "%zu", limit);
	if (write_str(path, buf)) {
		failf("%s: %s", path, strerror(errno));
		bad = 1;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg_dir);
	write_str(path, "0");	/* absent without swap accounting: fine */
	info("%ld rounds in %s (memory.max %zu MiB): lazy regions of %zu MiB touched, eager ones "
	     "asked for (seed %lu)", n, cg_dir, limit >> 20, big >> 20, (unsigned long)seed);
	ooms0 = cg_read("memory.events", "oom_kill");
	vm0 = read_keyed("/proc/vmstat", "oom_kill");

	IN_CGROUP(st, oom_fits(limit / 2, SFORK_LAZY, seed));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failf("a lazy region of half memory.max in the cgroup: status 0x%x", st);
		bad = 1;
	}
	IN_CGROUP(st, oom_fits(limit / 4, SFORK_EAGER, seed + 1));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failf("an eager region of a quarter of memory.max in the cgroup: status 0x%x", st);
		bad = 1;
	}
	if (cg_read("memory.events", "oom_kill") != ooms0) {
		failf("regions within memory.max caused an OOM kill");
		bad = 1;
	}

	for (long i = 0; i < n && !bad; i++) {
		int child_touches = i % 2 == 0;
		int d = child_touches ? (i % 4 ? D_C2P : D_BI) : (i % 4 == 1 ? D_P2C : D_BI);
		long before = cg_read("memory.events", "oom_kill"), got;
		uint64_t s = mix64(seed ^ i);

		atomic_store(&sh->progress, 0);
		atomic_store(&sh->ready, 0);
		if (child_touches) {
			IN_CGROUP(st, oom_child_touches(sh, big, limit, d, s));
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("round %ld: the child touching a %s region: parent status 0x%x: %s",
				      i, dir_name[d], st,
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "parent killed");
				bad = 1;
			}
			kills_child++;
		} else {
			IN_CGROUP(st, oom_parent_touches(sh, big, d, s));
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS)
				sigbus++;
			else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
				failf("round %ld: the parent touching a %s region was not killed: status 0x%x%s%s",
				      i, dir_name[d], st, WIFEXITED(st) ? ": " : "",
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "");
				bad = 1;
			}
			kills_parent++;
		}
		got = atomic_load(&sh->progress);
		if (got > maxpages)
			maxpages = got;
		if (got < minpages)
			minpages = got;
		if ((size_t)got * PAGE > limit) {
			failf("round %ld: %ld pages touched, beyond memory.max", i, got);
			bad = 1;
		}
		/* The orphaned child of a killed parent is ours to reap. */
		while ((waitpid(-1, &st, 0)) > 0) {
			orphans++;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("round %ld: the child of the killed parent: status 0x%x%s%s", i,
				      st, WIFEXITED(st) ? ": " : "",
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "");
				bad = 1;
			}
		}
		if (cg_read("memory.events", "oom_kill") <= before) {
			failf("round %ld: no OOM kill in the cgroup", i);
			bad = 1;
		}

		before = cg_read("memory.events", "oom_kill");
		IN_CGROUP(st, oom_eager(big, d));
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failf("round %ld: eager %s region of %zu MiB: status 0x%x: %s", i, dir_name[d],
			      big >> 20, st, WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "killed");
			bad = 1;
		} else {
			enomem++;
		}
		if (cg_read("memory.events", "oom_kill") != before) {
			failf("round %ld: an eager sfork beyond memory.max caused an OOM kill", i);
			bad = 1;
		}
		if (verbose)
			info("... round %ld: %ld pages before the kill", i, got);
	}
	peak = cg_read("memory.peak", NULL);

out:
	kill_all_children();
	if (reap_all(60, NULL)) {
		failf("processes left in the cgroup after 60 s");
		bad = 1;
	}
	ooms = cg_read("memory.events", "oom_kill");
	vm = read_keyed("/proc/vmstat", "oom_kill");
	/* We never entered the cgroup; if we did, this moves us out. */
	write_str(CGROOT "/cgroup.procs", "0");
	for (int i = 0; rmdir(cg_dir) && i < 100; i++)
		sleep_us(50000);
	if (access(cg_dir, F_OK) == 0) {
		failf("rmdir %s: %s", cg_dir, strerror(errno));
		bad = 1;
	}
	if (added_memory)
		write_str(CGROOT "/cgroup.subtree_control", "-memory");
	if (!bad && ooms - ooms0 != vm - vm0) {
		failf("%ld OOM kills in the guest, %ld of them in the cgroup", vm - vm0, ooms - ooms0);
		bad = 1;
	}
	if (peak > (long)limit + (long)(64 * PAGE)) {
		failf("memory.peak %ld above memory.max %zu", peak, limit);
		bad = 1;
	}
	info("%ld rounds: %ld touching children and %ld touching parents killed (%ld by SIGBUS), "
	     "after %ld-%ld pages (limit %zu); %ld OOM kills, all in the cgroup (vmstat +%ld); "
	     "%ld eager regions refused with ENOMEM; %ld orphans reaped; memory.peak %ld; "
	     "cgroup removed; %.1f s: %s",
	     n, kills_child, kills_parent, sigbus, minpages == LONG_MAX ? 0 : minpages, maxpages,
	     limit / PAGE, ooms - ooms0, vm - vm0, enomem, orphans, peak, now_s() - t0,
	     bad ? "FAILED" : "ok");
	munmap(sh, sizeof(*sh));
	return bad;
}
