// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Any other fork gets the forking side's view and permission.
 *
 * Adapts LTP's fork04 (what a fork child inherits), fork14 (forks while
 * memory is mapped) and mem/vma/vma01 (the VMAs a child gets) to sfork.
 * For each direction (-d, or bi, p2c and c2p when -d is not given) and the
 * allocation -a:
 *
 *  0-1. the parent (0) or the child (1) of the sfork call does a plain
 *       fork() right after sfork returned, before any page was written;
 *  2-3. the same with vfork();
 *       a fork child of a read-only side: a store to each page raises
 *       SIGSEGV/SEGV_ACCERR, mprotect(PROT_READ | PROT_WRITE) fails with
 *       EACCES, and it sees the data the writer stores after the fork (the
 *       shared pages, not a snapshot); a fork child of a writing side can
 *       store, and both sfork processes see its data;
 *  4.   another thread of the parent forks while the region is created and
 *       armed but the calling thread has not forked yet (the region is made
 *       with SFORK_IOC_CREATE from <linux/sfork.h>, as libsfork does): that
 *       child has the parent's view, and the calling thread's fork after it
 *       still gets the child's side;
 *  5.   another thread forks in a loop while the main thread calls sfork()
 *       repeatedly: every child that caught a region has the parent's
 *       permission for it, and every sfork child has the child's.
 *
 * A module that arms the region for the whole process (so another thread's
 * fork takes the child's side), gives fork children the page-table entries
 * or the VM_WRITE of the other side, or lets a read-only side's fork child
 * write, fails one of these checks.
 */

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "tst_safe_pthread.h"
#include "sfork_test.h"

#define CP_PARENT	0
#define CP_CHILD	1
#define CP_GRAND	2

#define SEED1		41
#define SEED2		42

#define RACE_LOOPS	100

/* "who, when: ..." messages */
static const char *what(const char *who, const char *when)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), "%s, %s", who, when);
	return buf;
}

/* All but the last byte: case 5 stores to it without changing it. */
static void fill(unsigned char *p, unsigned int seed)
{
	sfork_fill_sample(p, 0, sfork_region_size - 1, seed, 1);
}

static int verify(const unsigned char *p, unsigned int seed, const char *who,
		  const char *when)
{
	return sfork_check_fill_sample(p, 0, sfork_region_size - 1, seed, 1,
				       what(who, when));
}

static int read_only(unsigned char *p, const char *who, const char *when)
{
	return sfork_check_read_only(p, sfork_region_size, what(who, when));
}

/* ---- cases 0-3: a side forks or vforks ---- */

/* vfork-safe: no exit(), no SAFE_*() that could end the process */
static void grandchild(unsigned char *p, int ro, unsigned int other_id,
		       const char *who)
{
	int bad = 0;

	if (ro) {
		bad |= read_only(p, who, "before any write");
		bad |= verify(p, 0, who, "before any write");
		if (tst_checkpoint_wake(other_id, 1, 10000) ||
		    tst_checkpoint_wait(CP_GRAND, 60000)) {
			tst_res(TFAIL | TERRNO, "%s: checkpoint", who);
			_exit(1);
		}
		bad |= verify(p, SEED1, who, "after the writer's stores");
		bad |= read_only(p, who, "after the writer's stores");
		if (!bad)
			tst_res(TPASS, "%s is read-only (SEGV_ACCERR, mprotect EACCES) and sees the writer's later stores",
				who);
	} else {
		bad |= verify(p, 0, who, "before any write");
		bad |= sfork_check_store(p, 0, who);
		if (!bad)
			fill(p, SEED1);
		if (!bad)
			tst_res(TPASS, "%s stored over the region", who);
	}
	_exit(bad);
}

static pid_t spawn(unsigned char *p, int ro, unsigned int other_id,
		   int use_vfork, const char *who)
{
	pid_t pid;

	tst_flush();
	pid = use_vfork ? vfork() : fork();
	if (!pid)
		grandchild(p, ro, other_id, who);
	if (pid < 0)
		tst_brk(TBROK | TERRNO, "%s failed", use_vfork ? "vfork" : "fork");
	return pid;
}

static void forking_side(unsigned char *p, int ro, unsigned int other_id,
			 int use_vfork, const char *side)
{
	char who[96];
	int status;
	pid_t pid;

	snprintf(who, sizeof(who), "%s child of the %s %s",
		 use_vfork ? "vfork" : "fork", ro ? "read-only" : "writing",
		 side);

	pid = spawn(p, ro, other_id, use_vfork, who);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0(who, status);

	if (ro)
		return;

	if (!verify(p, SEED1, side, "after its fork child's stores"))
		tst_res(TPASS, "the %s sees the stores of its %s", side, who);
	TST_CHECKPOINT_WAKE(other_id);
}

static void other_side(unsigned char *p, int forker_ro, unsigned int my_id,
		       const char *side)
{
	TST_CHECKPOINT_WAIT2(my_id, 60000);
	if (forker_ro) {
		fill(p, SEED1);
		TST_CHECKPOINT_WAKE(CP_GRAND);
		return;
	}
	if (!verify(p, SEED1, side, "after the other side's fork child stored"))
		tst_res(TPASS, "the %s sees the stores of the other side's fork child",
			side);
}

static void case_side_forks(unsigned int flags, int forker_is_child,
			    int use_vfork)
{
	int forker_ro = forker_is_child ? !sfork_child_writes(flags) :
					  !sfork_parent_writes(flags);
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_region_size, flags, &addr);
	if (!pid) {
		if (forker_is_child)
			forking_side(addr, forker_ro, CP_PARENT, use_vfork, "sfork child");
		else
			other_side(addr, forker_ro, CP_CHILD, "sfork child");
		exit(0);
	}

	if (forker_is_child)
		other_side(addr, forker_ro, CP_PARENT, "sfork parent");
	else
		forking_side(addr, forker_ro, CP_CHILD, use_vfork, "sfork parent");

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("sfork child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- case 4: another thread forks while the region is armed ---- */

struct thread_fork {
	unsigned char *p;
	int parent_ro;
	int status;
};

static void *thread_forks(void *arg)
{
	struct thread_fork *tf = arg;
	const char *who = "fork child of another thread of the parent";
	int bad = 0;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		tst_brk(TBROK | TERRNO, "fork in a thread failed");
	if (!pid) {
		if (tf->parent_ro) {
			bad |= read_only(tf->p, who, "region armed");
			bad |= verify(tf->p, 0, who, "region armed");
		} else {
			bad |= sfork_check_store(tf->p, 0, who);
			if (!bad)
				fill(tf->p, SEED1);
		}
		if (!bad)
			tst_res(TPASS, "%s has the parent's view (%s)", who,
				tf->parent_ro ? "read-only" : "writable");
		_exit(bad);
	}
	SAFE_WAITPID(pid, &tf->status, 0);
	return NULL;
}

static void *create_armed(size_t len, unsigned int flags)
{
	struct sfork_create req;
	void *addr = NULL;
	int fd;

	memset(&req, 0, sizeof(req));
	req.len = len;
	req.flags = flags;
	req.addr_ptr = (uintptr_t)&addr;

	fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR | O_CLOEXEC);
	SAFE_IOCTL(fd, SFORK_IOC_CREATE, &req);
	SAFE_CLOSE(fd);

	if (!addr || addr != (void *)(uintptr_t)req.addr)
		tst_brk(TBROK, "SFORK_IOC_CREATE: *addr_ptr %p, addr 0x%llx",
			addr, (unsigned long long)req.addr);
	return addr;
}

static void case_thread_fork_armed(unsigned int flags)
{
	struct thread_fork tf = { .parent_ro = !sfork_parent_writes(flags) };
	int child_ro = !sfork_child_writes(flags);
	const char *who = "child of the armed thread's fork";
	pthread_t thr;
	int status, bad = 0;
	pid_t pid;

	tf.p = create_armed(sfork_region_size, flags);

	SAFE_PTHREAD_CREATE(&thr, NULL, thread_forks, &tf);
	SAFE_PTHREAD_JOIN(thr, NULL);
	sfork_check_exit0("fork child of another thread", tf.status);

	/* the armed (this) thread forks now: the sfork child */
	pid = SAFE_FORK();
	if (!pid) {
		bad |= verify(tf.p, tf.parent_ro ? 0 : SEED1, who,
			      "after the other thread's child");
		if (child_ro) {
			bad |= read_only(tf.p, who, "after the other thread's child");
		} else {
			bad |= sfork_check_store(tf.p, 0, who);
			if (!bad)
				fill(tf.p, SEED2);
		}
		if (!bad)
			tst_res(TPASS, "%s has the child's side (%s)", who,
				child_ro ? "read-only" : "writable");
		exit(bad);
	}
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0(who, status);

	if (!verify(tf.p, child_ro ? SEED1 : SEED2, "parent", "after both children"))
		tst_res(TPASS, "parent sees the data of the writing child(ren)");
	if (tf.parent_ro) {
		if (!read_only(tf.p, "parent", "after both forks"))
			tst_res(TPASS, "parent is still read-only");
	} else if (!sfork_check_store(tf.p, 0, "parent")) {
		tst_res(TPASS, "parent can still store");
	}

	SAFE_MUNMAP(tf.p, sfork_region_size);
}

/* ---- case 5: a thread forks in a loop during sfork() calls ---- */

static void *race_addr;
static unsigned int race_flags;

static int race_child_check(void)
{
	const char *who = "fork child of the forking thread";
	unsigned char *p = race_addr;
	char perms[5];

	if (!p || sfork_maps_perms(p, perms))
		return 0;

	if (!sfork_parent_writes(race_flags)) {
		if (perms[1] == 'w') {
			tst_res(TFAIL, "%s: region %p mapped %s, parent's side is read-only",
				who, (void *)p, perms);
			return 2;
		}
		return read_only(p, who, "region caught during sfork()") ? 2 : 1;
	}

	if (perms[1] != 'w') {
		tst_res(TFAIL, "%s: region %p mapped %s, parent's side writes",
			who, (void *)p, perms);
		return 2;
	}
	/* the last byte is nobody's data: store what is there */
	return sfork_check_store(p + sfork_region_size - 1,
				 p[sfork_region_size - 1], who) ? 2 : 1;
}

static struct sfork_fork_loop race_loop = { .child = race_child_check };

static void case_thread_fork_race(unsigned int flags)
{
	const char *who = "sfork child during the fork loop";
	int child_ro = !sfork_child_writes(flags);
	unsigned int i, bad_children = 0, bad_data = 0;
	unsigned char *p;
	pthread_t thr;
	int status;
	pid_t pid;

	race_flags = flags;
	race_loop.stop = 0;
	race_loop.none = race_loop.seen = race_loop.bad = 0;
	SAFE_PTHREAD_CREATE(&thr, NULL, sfork_fork_loop, &race_loop);

	for (i = 0; i < RACE_LOOPS; i++) {
		race_addr = NULL;
		pid = sfork(sfork_region_size, flags, &race_addr);
		if (pid < 0) {
			race_loop.stop = 1;
			tst_brk(TBROK | TERRNO, "sfork failed");
		}
		p = race_addr;
		if (!pid) {
			int bad = 0;

			if (child_ro) {
				bad = read_only(p, who, "loop");
			} else {
				bad = sfork_check_store(p, 0, who);
				if (!bad)
					fill(p, SEED1 + i);
			}
			_exit(bad);
		}
		SAFE_WAITPID(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			bad_children++;
		else if (!child_ro && verify(p, SEED1 + i, "parent", "loop"))
			bad_data++;
		race_addr = NULL;
		SAFE_MUNMAP(p, sfork_region_size);
	}

	race_loop.stop = 1;
	SAFE_PTHREAD_JOIN(thr, NULL);

	if (bad_children || bad_data)
		tst_res(TFAIL, "%u of %d sfork children had the wrong side, %u left wrong data",
			bad_children, RACE_LOOPS, bad_data);
	else
		tst_res(TPASS, "all %d sfork children had the child's side (%s)",
			RACE_LOOPS, child_ro ? "read-only" : "writable");

	if (race_loop.bad)
		tst_res(TFAIL, "%u of %u fork children of the other thread had the wrong view",
			race_loop.bad, race_loop.seen + race_loop.none + race_loop.bad);
	else
		tst_res(TPASS, "%u fork children of the other thread caught a region, all with the parent's view (%u caught none)",
			race_loop.seen, race_loop.none);
}

static const char *const case_names[] = {
	"the sfork parent forks",
	"the sfork child forks",
	"the sfork parent vforks",
	"the sfork child vforks",
	"another thread forks while the region is armed",
	"another thread forks in a loop during sfork() calls",
};

static void run_case(unsigned int n, unsigned int flags)
{
	switch (n) {
	case 0:
	case 1:
	case 2:
	case 3:
		case_side_forks(flags, n & 1, n >= 2);
		break;
	case 4:
		case_thread_fork_armed(flags);
		break;
	case 5:
		case_thread_fork_race(flags);
		break;
	}
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, case_names[n], run_case);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = sfork_setup_all_dirs,
	.test = run,
	.tcnt = ARRAY_SIZE(case_names),
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 240,
};
