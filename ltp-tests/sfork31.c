// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that the exit of one side of an sfork region, in either order,
 * leaves the other side its mapping, data and permission, and the region
 * ends with the last side.
 *
 * For each direction (-d, or bi, p2c and c2p when -d is not given),
 * allocation -a and size -s:
 *
 * [Algorithm]
 *
 * - the child exits first: the parent still reads the data, keeps its
 *   permission (read-only stays read-only, a writer still stores and reads
 *   back), the region still lives (regions_live)
 * - the parent exits first (a helper process makes the sfork call and
 *   exits; the test is the child subreaper): the child still reads the
 *   data and keeps its permission
 * - once both sides are gone, regions_live and pages_live of
 *   /sys/kernel/debug/sfork/stats return to their values before within 2 s
 *
 * A module that frees the pages while a side still maps them, or leaks the
 * region or its pages after the last exit, fails here.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_PARENT	0
#define CP_CHILD	1

#define SEED1		61
#define SEED2		62

static struct sfork_counters before;

/* what the side left alone sees and can do */
static void survivor_checks(unsigned char *p, int ro, const char *who)
{
	size_t npages = sfork_region_size / sfork_page;
	char what[64];

	snprintf(what, sizeof(what), "%s (survivor)", who);
	if (!sfork_check_pages(p, 0, npages, SEED1, what) &&
	    !sfork_check_side(p, sfork_region_size, ro, what))
		tst_res(TPASS, "%s: data intact, still %s", what,
			ro ? "read-only" : "writable");
	if (ro)
		return;
	sfork_fill_pages(p, 0, npages, SEED2);
	if (!sfork_check_pages(p, 0, npages, SEED2, what))
		tst_res(TPASS, "%s: still stores and reads back", what);
}

static void case_child_exits_first(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	size_t npages = sfork_region_size / sfork_page;
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_region_size, flags, &addr);
	if (!pid) {
		if (parent_ro)
			sfork_fill_pages(addr, 0, npages, SEED1);
		else
			TST_CHECKPOINT_WAIT(CP_CHILD);
		if (!sfork_check_pages(addr, 0, npages, SEED1, "child, before exiting"))
			tst_res(TPASS, "child: sees the data before exiting");
		exit(0);	/* the mapping goes with the exit */
	}

	if (!parent_ro) {
		sfork_fill_pages(addr, 0, npages, SEED1);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	sfork_check_alive(&before, "child exited first");
	survivor_checks(addr, parent_ro, "parent");

	SAFE_MUNMAP(addr, sfork_region_size);
	sfork_check_settled(&before, "child exited, parent unmapped");
}

/* the sfork child of a helper that exits first */
static void orphan(void *addr, int parent_ro, int child_ro)
{
	size_t npages = sfork_region_size / sfork_page;
	pid_t ppid = getppid();
	int i;

	if (parent_ro) {
		sfork_fill_pages(addr, 0, npages, SEED1);
		TST_CHECKPOINT_WAKE(CP_PARENT);
	}
	TST_CHECKPOINT_WAIT(CP_CHILD);
	for (i = 0; i < 500 && getppid() == ppid; i++)
		usleep(10000);
	if (getppid() == ppid)
		tst_brk(TBROK, "the sfork parent did not exit");

	sfork_check_alive(&before, "sfork parent exited first");
	survivor_checks(addr, child_ro, "child");
	exit(0);
}

static void case_parent_exits_first(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	size_t npages = sfork_region_size / sfork_page;
	void *addr = NULL;
	pid_t helper, pid;
	int fds[2], status;

	SAFE_PIPE(fds);
	helper = SAFE_FORK();
	if (!helper) {
		SAFE_CLOSE(fds[0]);
		pid = SAFE_SFORK(sfork_region_size, flags, &addr);
		if (!pid) {
			SAFE_CLOSE(fds[1]);
			orphan(addr, parent_ro, !sfork_child_writes(flags));
		}

		if (parent_ro)
			TST_CHECKPOINT_WAIT(CP_PARENT);
		else
			sfork_fill_pages(addr, 0, npages, SEED1);
		if (!sfork_check_pages(addr, 0, npages, SEED1, "sfork parent, before exiting"))
			tst_res(TPASS, "sfork parent: sees the data before exiting");
		SAFE_WRITE(SAFE_WRITE_ALL, fds[1], &pid, sizeof(pid));
		TST_CHECKPOINT_WAKE(CP_CHILD);
		exit(0);
	}

	SAFE_CLOSE(fds[1]);
	SAFE_READ(1, fds[0], &pid, sizeof(pid));
	SAFE_CLOSE(fds[0]);
	SAFE_WAITPID(helper, &status, 0);
	sfork_check_exit0("sfork parent", status);
	/* reparented to us (child subreaper) when the helper exited */
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("sfork child", status);

	sfork_check_settled(&before, "parent exited, then the child");
}

static void case_exit(unsigned int n, unsigned int flags)
{
	sfork_counters_save(&before);
	if (n)
		case_parent_exits_first(flags);
	else
		case_child_exits_first(flags);
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, n ? "the parent exits first" :
				"the child exits first", case_exit);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);
	/* the orphaned sfork child becomes our child */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		tst_brk(TBROK | TERRNO, "prctl(PR_SET_CHILD_SUBREAPER)");
	sfork_stat("regions_live");
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test = run,
	.tcnt = 2,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 180,
};
