// SPDX-License-Identifier: GPL-2.0-or-later
/*\
 * sfork21 - a fork that fails does not spend the region's arming, and one
 * that succeeded is never re-armed.
 *
 * SFORK_IOC_CREATE arms a region for the calling thread's next fork.  The
 * uapi header promises that a fork that fails leaves the region armed, so
 * a caller that retries gets the child's side, never the creator's.  For
 * each read-only direction (-d p2c, -d c2p, both without -d), -a and -s,
 * and each of two ways for a fork to fail after the address space was
 * copied:
 *
 *  - pids.max of the test's cgroup at its pids.current: fork() fails with
 *    EAGAIN (cgroup_can_fork());
 *  - clone3(CLONE_PIDFD) with the pidfd pointer in a read-only page: fails
 *    with EFAULT (the put_user() of the pidfd);
 *
 * the test, on the raw ioctl (as libsfork does CREATE, without its
 * unmapping on failure):
 *
 *  1. creates a region and makes one fork fail;
 *  2. forks again: the child has the child's side (a store works for a
 *     writing child and faults with SEGV_ACCERR for a read-only one), sees
 *     what a writing parent stored, and what it stores the parent sees;
 *  3. makes a fork fail again, then forks: this child has the parent's
 *     side (a read-only parent never gets a writing child from the
 *     arming's second life).
 */

#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#ifndef CLONE_PIDFD
# define CLONE_PIDFD	0x00001000
#endif

#define PARENT_MARK	0x11
#define CHILD_MARK	0x22

enum way { FAIL_PIDS_MAX, FAIL_PIDFD_PTR, FAIL_WAYS };

static const char *const way_name[] = {
	[FAIL_PIDS_MAX] = "pids.max",
	[FAIL_PIDFD_PTR] = "CLONE_PIDFD into a read-only page",
};

static void *ro_page;

/* SFORK_IOC_CREATE alone: the region is mapped and armed, no fork yet */
static unsigned char *create(unsigned int flags, size_t *size)
{
	void *addr = NULL;
	struct sfork_create req = {
		.len = sfork_size,
		.flags = flags,
		.addr_ptr = (uintptr_t)&addr,
	};
	int fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR);

	SAFE_IOCTL(fd, SFORK_IOC_CREATE, &req);
	SAFE_CLOSE(fd);
	if (addr != (void *)(uintptr_t)req.addr)
		tst_brk(TBROK, "CREATE wrote %p, returned 0x%llx", addr,
			(unsigned long long)req.addr);
	*size = req.size;
	return addr;
}

static void reap_unexpected(pid_t pid, const char *what)
{
	if (!pid)
		_exit(0);
	SAFE_WAITPID(pid, NULL, 0);
	tst_brk(TBROK, "%s did not fail", what);
}

static void fail_fork(enum way way)
{
	struct clone_args args = {
		.flags = CLONE_PIDFD,
		.pidfd = (uintptr_t)ro_page,
		.exit_signal = SIGCHLD,
	};
	long long cur;

	switch (way) {
	case FAIL_PIDS_MAX:
		SAFE_CG_SCANF(tst_cg, "pids.current", "%lld", &cur);
		SAFE_CG_PRINTF(tst_cg, "pids.max", "%lld", cur);
		TEST(fork());
		SAFE_CG_PRINT(tst_cg, "pids.max", "max");
		if (TST_RET >= 0)
			reap_unexpected(TST_RET, "fork() at pids.max");
		if (TST_ERR != EAGAIN)
			tst_brk(TBROK | TTERRNO, "fork() at pids.max");
		break;
	case FAIL_PIDFD_PTR:
		TEST(syscall(SYS_clone3, &args, sizeof(args)));
		if (TST_RET >= 0)
			reap_unexpected(TST_RET, "clone3() with a read-only pidfd pointer");
		if (TST_ERR != EFAULT)
			tst_brk(TBROK | TTERRNO, "clone3() with a read-only pidfd pointer");
		break;
	default:
		tst_brk(TBROK, "unknown way %d", way);
	}
}

/* 0 when a store at p works exactly when the side may write */
static int check_side(unsigned char *p, int may_write, unsigned char val,
		      const char *who)
{
	if (may_write)
		return sfork_check_store(p, val, who);
	return sfork_check_store_faults(p, who);
}

static void reap(pid_t pid, const char *who)
{
	int status;

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0(who, status);
}

static void run_way(unsigned int flags, enum way way)
{
	int parent_writes = sfork_parent_writes(flags);
	int child_writes = sfork_child_writes(flags);
	unsigned char *p;
	size_t size;
	pid_t pid;

	tst_res(TINFO, "%s: a fork fails by %s, then the retry",
		sfork_flags_desc(flags), way_name[way]);

	p = create(flags, &size);
	if (parent_writes)
		p[1] = PARENT_MARK;
	fail_fork(way);

	pid = SAFE_FORK();
	if (!pid) {
		if (!check_side(p, child_writes, CHILD_MARK, "the retry's child"))
			tst_res(TPASS, "the retry's child has the child's side");
		TST_EXP_EXPR(!parent_writes || p[1] == PARENT_MARK,
			     "the retry's child sees the writing parent's store");
		exit(0);
	}
	reap(pid, "the retry's child");
	if (child_writes)
		TST_EXP_EXPR(p[0] == CHILD_MARK,
			     "the parent sees the writing child's store");
	if (!check_side(p + size - 1, parent_writes, PARENT_MARK, "the parent"))
		tst_res(TPASS, "the parent has the parent's side");

	fail_fork(way);
	pid = SAFE_FORK();
	if (!pid) {
		if (!check_side(p + sfork_page, parent_writes, PARENT_MARK,
				"a later fork's child"))
			tst_res(TPASS, "a later fork's child has the parent's side");
		exit(0);
	}
	reap(pid, "a later fork's child");
	SAFE_MUNMAP(p, size);
}

static void run_dir(unsigned int flags)
{
	enum way way;

	for (way = FAIL_PIDS_MAX; way < FAIL_WAYS; way++)
		run_way(flags, way);
}

static void run(void)
{
	sfork_for_each_dir(run_dir);
}

static void setup(void)
{
	sfork_setup_readonly_dirs();
	if (sfork_region_size < 2 * sfork_page)
		tst_brk(TCONF, "needs a region of two pages or more");
	ro_page = SAFE_MMAP(NULL, sfork_page, PROT_READ,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Read-only side p2c|c2p (default: both)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.needs_root = 1,
	.forks_child = 1,
	.needs_cgroup_ctrls = (const char *const []){ "pids", NULL },
};
