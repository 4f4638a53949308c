// SPDX-License-Identifier: GPL-2.0-or-later
/*\
 * sfork24 - huge-page regions under reclaim: swapped out (split, or whole
 * where the kernel swaps large folios), swapped back in as written, and the
 * read-only side still read-only.
 *
 * With the module parameter huge_pages at 2 (restored afterwards), swap on
 * (a zram device set up by the test when none is active, removed
 * afterwards), the test in a memory cgroup, for the direction -d (bi, p2c
 * and c2p without -d), -a and a 2 MiB-aligned -s (default 4M):
 *
 *  - the writer fills the region, which is PMD-mapped; the other side reads
 *    it as written;
 *  - the cgroup is asked to reclaim the region's size (memory.reclaim):
 *    at least half of the region's pages are in swap (Swap of the mapping
 *    in smaps), and huge folios were split for it (thp_split_page) or
 *    swapped out whole (thp_swpout);
 *  - the reading side faults the region back in from swap: every byte as
 *    written; a read-only side's store there faults with SEGV_ACCERR and
 *    mprotect(PROT_READ|PROT_WRITE) fails with EACCES;
 *  - the writer then writes the region again and the other side sees it
 *    (still one set of pages after swap-in);
 *  - with the child gone the region is reclaimed to swap once more; when
 *    the parent unmaps it, the cgroup's swap (memory.swap.current) drops
 *    by at least half of its size within 2 seconds.
 *
 * Reclaim is asked for, never forced with a memory.max below what the
 * cgroup holds: the test's own processes are in the cgroup, and such a
 * limit invokes the cgroup's OOM killer whenever reclaim falls short (a
 * loaded host, the peer faulting pages back in), which would kill the
 * test.  Nothing here limits the cgroup, so nothing can be OOM-killed.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork_huge.h"
#include "sfork_swap.h"

#define CP_FILLED	0
#define CP_READ		1
#define CP_SQUEEZED	2
#define CP_CHECKED	3
#define CP_REFILLED	4

#define SEED		24
#define SEED_AFTER	42
#define WAIT_MS		120000
/*
 * The cgroup is asked to reclaim as much as the region holds; region
 * pages can only go to swap.  The first time, the region's folios are
 * huge and have to be split (or swapped whole).
 */
static void squeeze(const unsigned char *p, int huge)
{
	unsigned long long split0, thp0, split, thp;
	size_t pages = sfork_region_size / sfork_page;
	long long swapped;
	int ret;

	split0 = sfork_vmstat("thp_split_page");
	thp0 = sfork_vmstat("thp_swpout");
	ret = sfork_cg_reclaim(sfork_region_size);
	if (ret)
		tst_res(TINFO, "memory.reclaim %zu: %s", sfork_region_size,
			tst_strerrno(ret));
	split = sfork_vmstat("thp_split_page") - split0;
	thp = sfork_vmstat("thp_swpout") - thp0;
	swapped = sfork_smaps_kb(p, "Swap") / (long long)(sfork_page >> 10);

	TST_EXP_EXPR(swapped >= (long long)pages / 2,
		     "reclaim swapped out %lld of the region's %zu pages",
		     swapped, pages);
	if (huge)
		TST_EXP_EXPR(split || thp,
			     "huge folios split for swap (thp_split_page +%llu) or swapped out whole (thp_swpout +%llu)",
			     split, thp);
}

/*
 * A wake after a squeeze: the peer may still be faulting its own pages back
 * in from swap on its way to the wait, so give it WAIT_MS, not 10 s.
 */
static void wake_after_squeeze(unsigned int id)
{
	if (tst_checkpoint_wake(id, 1, WAIT_MS))
		tst_brk(TBROK | TERRNO, "tst_checkpoint_wake(%u)", id);
}

static void check_filled(const unsigned char *p, unsigned int seed,
			 const char *what)
{
	if (!sfork_check_fill(p, 0, sfork_region_size, seed, what))
		tst_res(TPASS, "%s: every byte as written", what);
}

static void writer(unsigned char *p, int squeezes)
{
	sfork_fill(p, 0, sfork_region_size, SEED);
	TST_EXP_EXPR(sfork_pmd_mapped_kb(p) >= (long long)(SFORK_HUGE_SIZE >> 10),
		     "the filled region is PMD-mapped (%lld kB)",
		     sfork_pmd_mapped_kb(p));
	TST_CHECKPOINT_WAKE(CP_FILLED);
	if (squeezes) {
		TST_CHECKPOINT_WAIT2(CP_READ, WAIT_MS);
		squeeze(p, 1);
		wake_after_squeeze(CP_SQUEEZED);
	}
	TST_CHECKPOINT_WAIT2(CP_CHECKED, WAIT_MS);
	sfork_fill(p, 0, sfork_region_size, SEED_AFTER);
	TST_CHECKPOINT_WAKE(CP_REFILLED);
}

static void reader(unsigned char *p, int read_only, int squeezes)
{
	unsigned char *mid = p + sfork_region_size / 2;

	TST_CHECKPOINT_WAIT2(CP_FILLED, WAIT_MS);
	check_filled(p, SEED, "before reclaim");
	if (squeezes) {
		squeeze(p, 1);
	} else {
		TST_CHECKPOINT_WAKE(CP_READ);
		TST_CHECKPOINT_WAIT2(CP_SQUEEZED, WAIT_MS);
	}
	check_filled(p, SEED, "swapped back in by the reading side");
	if (read_only) {
		if (!sfork_check_store_faults(mid, "read-only side after swap-in"))
			tst_res(TPASS, "read-only side after swap-in: a store faults with SEGV_ACCERR");
		TST_EXP_FAIL(mprotect(mid, sfork_page, PROT_READ | PROT_WRITE),
			     EACCES, "mprotect(RW) after swap-in");
	}
	wake_after_squeeze(CP_CHECKED);
	TST_CHECKPOINT_WAIT2(CP_REFILLED, WAIT_MS);
	check_filled(p, SEED_AFTER, "written again after swap-in, seen by the other side");
}

static long long swap_current(void)
{
	long long v;

	SAFE_CG_SCANF(tst_cg, "memory.swap.current", "%lld", &v);
	return v;
}

/* 0 once the cgroup's swap fell by want bytes from before (2 s at most) */
static int swap_released(long long before, long long want)
{
	long long now = 0;
	int i;

	for (i = 0; i < 20; i++) {
		now = swap_current();
		if (before - now >= want) {
			tst_res(TINFO, "%lld kB of swap freed", (before - now) >> 10);
			return 0;
		}
		usleep(100000);
	}
	tst_res(TFAIL, "2 s after the region was gone %lld kB of the cgroup's swap were freed, not %lld",
		(before - now) >> 10, want >> 10);
	return 1;
}

static void run_dir(unsigned int flags)
{
	int parent_writes = sfork_parent_writes(flags);
	long long swap_before;
	void *addr = NULL;
	int status;
	pid_t pid;

	tst_res(TINFO, "%s", sfork_flags_desc(flags));
	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (parent_writes)
			reader(addr, !sfork_child_writes(flags), 0);
		else
			writer(addr, 0);
		exit(0);
	}
	if (parent_writes)
		writer(addr, 1);
	else
		reader(addr, 1, 1);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	squeeze(addr, 0);
	swap_before = swap_current();
	SAFE_MUNMAP(addr, sfork_region_size);
	if (!swap_released(swap_before, (long long)sfork_region_size / 2))
		tst_res(TPASS, "the swapped-out region's swap space is freed with it");
}

static void run(void)
{
	sfork_for_each_dir(run_dir);
}

static void setup(void)
{
	if (!sfork_str_size)
		sfork_str_size = "4M";
	sfork_setup_all_dirs();
	if (sfork_region_size % SFORK_HUGE_SIZE)
		tst_brk(TCONF, "-s %s is not a multiple of 2 MiB", sfork_str_size);
	sfork_huge_setup(2);
	sfork_swap_setup(MAX(2 * sfork_region_size, (size_t)64 << 20));
	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
	if (!SAFE_CG_HAS(tst_cg, "memory.swap.current"))
		tst_brk(TCONF, "no memory.swap.current (swap accounting off)");
}

static void cleanup(void)
{
	sfork_swap_cleanup();
	sfork_huge_cleanup();
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size, a multiple of 2 MiB (default 4M)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = cleanup,
	.test_all = run,
	.needs_root = 1,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.needs_cgroup_ctrls = (const char *const []){ "memory", NULL },
};
