// SPDX-License-Identifier: GPL-2.0-or-later
/*\
 * sfork23 - a huge-page region falls back to 4 KiB pages, silently and
 * correctly, when its memory cgroup has no room for a 2 MiB page.
 *
 * With huge_pages at 2 (restored afterwards), a lazy bidirectional 4 MiB
 * region whose child joins a memory cgroup without swap (the test process
 * stays outside it):
 *
 *  - memory.max is set to the child's memory.current plus 3.75 MiB;
 *  - every page of the first 2 MiB is written: one 2 MiB page,
 *    ShmemPmdMapped 2048 kB;
 *  - 64 pages of the second 2 MiB are written: no 2 MiB page fits in the
 *    1.75 MiB left, so they are 4 KiB pages: the writes succeed, read back,
 *    pages_live grew by exactly 512 + 64, ShmemPmdMapped stays 2048 kB,
 *    memory.current stays within memory.max, and no OOM kill happened.
 *
 * The room left is far more than the 4 KiB pages and their page tables
 * need, so the cgroup never has to reclaim or kill; and were it to, its
 * OOM killer could only take the child, which the test reports, never
 * the test itself.
 */

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork_huge.h"

#define REGION		(2 * SFORK_HUGE_SIZE)
#define SMALL_PAGES	64
#define SEED		23
/* one 2 MiB page and 1.75 MiB: room for the 4 KiB pages, none for a second 2 MiB */
#define ROOM		((long long)(SFORK_HUGE_SIZE + SFORK_HUGE_SIZE * 7 / 8))

static long long cg_value(const char *file)
{
	long long v;

	SAFE_CG_SCANF(tst_cg, file, "%lld", &v);
	return v;
}

static long long oom_kills(void)
{
	long long v = 0;

	SAFE_CG_LINES_SCANF(tst_cg, "memory.events", "oom_kill %lld", &v);
	return v;
}

/* in the child, in the cgroup: the writes and what they did */
static void toucher(unsigned char *p, long long live0)
{
	size_t huge_pages = SFORK_HUGE_SIZE / sfork_page, i;
	long long limit, kills0;

	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
	kills0 = oom_kills();
	limit = cg_value("memory.current") + ROOM;
	SAFE_CG_PRINTF(tst_cg, "memory.max", "%lld", limit);

	for (i = 0; i < SFORK_HUGE_SIZE; i += sfork_page)
		p[i] = 1;
	TST_EXP_EQ_LI(sfork_pmd_mapped_kb(p), (long long)(SFORK_HUGE_SIZE >> 10));

	sfork_fill_pages(p, huge_pages, huge_pages + SMALL_PAGES, SEED);
	if (!sfork_check_pages(p, huge_pages, huge_pages + SMALL_PAGES, SEED,
			       "the 4 KiB pages past the limit's room"))
		tst_res(TPASS, "the 4 KiB pages past the limit's room read back");
	TST_EXP_EQ_LI(sfork_stat("pages_live") - live0,
		      (long long)(huge_pages + SMALL_PAGES));
	TST_EXP_EQ_LI(sfork_pmd_mapped_kb(p), (long long)(SFORK_HUGE_SIZE >> 10));
	TST_EXP_EXPR(cg_value("memory.current") <= limit,
		     "memory.current within memory.max");
	TST_EXP_EQ_LI(oom_kills() - kills0, 0);
	exit(0);
}

static void run(void)
{
	long long live0;
	void *addr = NULL;
	int status;
	pid_t pid;

	live0 = sfork_stat("pages_live");
	pid = SAFE_SFORK(REGION, SFORK_BIDIRECTIONAL | SFORK_LAZY, &addr);
	if ((uintptr_t)addr % SFORK_HUGE_SIZE)
		tst_res(TFAIL, "the region at %p is not 2 MiB-aligned", addr);
	if (!pid)
		toucher(addr, live0);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child writing in the cgroup", status);

	SAFE_CG_PRINT(tst_cg, "memory.max", "max");
	SAFE_MUNMAP(addr, REGION);
}

static void setup(void)
{
	sfork_test_setup();
	sfork_huge_setup(2);
	if (SAFE_CG_HAS(tst_cg, "memory.swap.max"))
		SAFE_CG_PRINT(tst_cg, "memory.swap.max", "0");
}

static struct tst_test test = {
	.setup = setup,
	.cleanup = sfork_huge_cleanup,
	.test_all = run,
	.needs_root = 1,
	.forks_child = 1,
	.needs_cgroup_ctrls = (const char *const []){ "memory", NULL },
};
