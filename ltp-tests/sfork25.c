// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * sfork25 - an allocated region page stays allocated while the region
 * lives: neither drop_caches, nor MADV_COLD and MADV_PAGEOUT, nor the
 * reclaim of its memory cgroup frees it; reclaim may only move it to swap,
 * and it comes back as it was.
 *
 * Both processes are in the test's memory cgroup (no limit, memory.swap.max
 * 0 unless said otherwise), swap is on (a zram device when none is), for
 * the direction -d (bi, p2c and c2p without -d; bi has the roles of c2p)
 * and the size -s (default 4M).  The region's pages come one of three
 * ways, a case each:
 *
 *  0. an eager region: every page at the call, none touched;
 *  1. a lazy region whose every page the writer wrote;
 *  2. a lazy region whose every page the reader only read.
 *
 * Each of these leaves every page resident (mincore() of the whole region),
 * pages_live up by the region's pages, ShmemHugePages where the allocation
 * put it (not after reclaim, which may split a huge page into small ones)
 * and, for a region of 4 MiB or more, Shmem and memory.current of the
 * cgroup up by its size (less 1 MiB: other users of shmem and per-CPU
 * charge batches move them too):
 *
 *  - echo 3 > /proc/sys/vm/drop_caches, the pages mapped where they were
 *    touched;
 *  - both sides drop their page-table entries (MADV_DONTNEED, which keeps
 *    the data), drop_caches again;
 *  - the reader reads the region (zeros, or what the writer wrote) and
 *    calls MADV_COLD and MADV_PAGEOUT on all of it;
 *  - the cgroup is asked to reclaim the region's size (memory.reclaim).
 *
 * Then memory.swap.max is lifted, the cgroup asked again and memory.swap.max
 * put back to 0: every page is in memory or in swap (pages_live and the
 * mapping's Swap in smaps add up to the region's size).  The reader reads
 * the region once more: as before, and every page resident again.  Once
 * both sides have unmapped it, pages_live is back where it was.
 *
 * A module that leaves region pages clean in the page cache, where a
 * page-cache drop or reclaim frees them, fails case 0 from the first
 * drop_caches and case 2 from MADV_PAGEOUT; case 1 is the control (a
 * written page is dirty anyway).
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork_swap.h"

#define CP_OP		0
#define CP_DONE		1

#define SEED		25
#define WAIT_MS		120000
#define BIG		(4LL << 20)
#define SLACK		(1LL << 20)

enum { CASE_EAGER, CASE_WRITTEN, CASE_READ };

static const char *const case_name[] = {
	[CASE_EAGER] = "eager region, no page touched",
	[CASE_WRITTEN] = "lazy region, every page written",
	[CASE_READ] = "lazy region, every page only read",
};

/* what a side does to its own mapping of the region */
enum op { OP_WRITE, OP_READ, OP_DONTNEED, OP_PAGEOUT, OP_EXIT };

/* the parent's request to the child */
struct shared {
	volatile int op;
	volatile unsigned int seed;
};

static struct shared *sh;
static unsigned char *region;
static size_t npages;

/* the values before the region, and ShmemHugePages once it is allocated */
static long long live0, shmem0, huge0, cur0, huge_alloc;

static void wake(unsigned int id)
{
	if (tst_checkpoint_wake(id, 1, WAIT_MS))
		tst_brk(TBROK | TERRNO, "tst_checkpoint_wake(%u)", id);
}

static void do_op(int op, unsigned int seed, const char *who)
{
	switch (op) {
	case OP_WRITE:
		sfork_fill_pages(region, 0, npages, seed);
		break;
	case OP_READ:
		if (!sfork_check_pages(region, 0, npages, seed, who))
			tst_res(TPASS, "%s reads every page as %s", who,
				seed ? "written" : "zeros");
		break;
	case OP_DONTNEED:
		TST_EXP_PASS_SILENT(madvise(region, sfork_region_size, MADV_DONTNEED),
				    "%s: MADV_DONTNEED", who);
		break;
	case OP_PAGEOUT:
		TST_EXP_PASS_SILENT(madvise(region, sfork_region_size, MADV_COLD),
				    "%s: MADV_COLD", who);
		TST_EXP_PASS_SILENT(madvise(region, sfork_region_size, MADV_PAGEOUT),
				    "%s: MADV_PAGEOUT", who);
		break;
	}
}

/* op on the child's mapping (child) or the parent's */
static void on_side(int child, int op, unsigned int seed)
{
	if (!child) {
		do_op(op, seed, "parent");
		return;
	}
	sh->op = op;
	sh->seed = seed;
	wake(CP_OP);
	if (op != OP_EXIT)
		TST_CHECKPOINT_WAIT2(CP_DONE, WAIT_MS);
}

static void child_loop(void)
{
	for (;;) {
		TST_CHECKPOINT_WAIT2(CP_OP, WAIT_MS);
		if (sh->op == OP_EXIT)
			break;
		do_op(sh->op, sh->seed, "child");
		wake(CP_DONE);
	}
	SAFE_MUNMAP(region, sfork_region_size);
	exit(0);
}

static size_t resident_pages(void)
{
	unsigned char *vec = SAFE_MALLOC(npages);
	size_t i, n = 0;

	if (mincore(region, sfork_region_size, vec))
		tst_brk(TBROK | TERRNO, "mincore()");
	for (i = 0; i < npages; i++)
		n += vec[i] & 1;
	free(vec);
	return n;
}

static long long cg_current(void)
{
	long long v;

	SAFE_CG_SCANF(tst_cg, "memory.current", "%lld", &v);
	return v;
}

/*
 * 0 when every page is still allocated and resident (huge: ShmemHugePages
 * where the allocation put it).  Shmem and memory.current move with other
 * users of shmem and with per-CPU charge batches by some hundred kB: they
 * are checked on regions of BIG or more, to within SLACK.
 */
static int check_held(const char *when, int huge)
{
	size_t resident = resident_pages();
	long long live = sfork_stat("pages_live") - live0;
	long long shmem = SAFE_READ_MEMINFO("Shmem:") - shmem0;
	long long hp = SAFE_READ_MEMINFO("ShmemHugePages:") - huge0;
	long long cur = cg_current() - cur0;
	long long size = (long long)sfork_region_size;
	int big = size >= BIG;
	int ok = resident == npages && live == (long long)npages &&
		 (!huge || hp == huge_alloc) &&
		 (!big || (shmem << 10 >= size - SLACK && cur >= size - SLACK));

	tst_res(ok ? TPASS : TFAIL,
		"%s: %zu of %zu pages resident, pages_live +%lld, Shmem +%lld kB, ShmemHugePages +%lld kB (+%lld allocated), memory.current +%lld",
		when, resident, npages, live, shmem, hp, huge_alloc, cur);
	return !ok;
}

static void drop_caches(void)
{
	SAFE_FILE_PRINTF("/proc/sys/vm/drop_caches", "3");
}

static void reclaim(const char *what)
{
	int ret = sfork_cg_reclaim(sfork_region_size);

	tst_res(TINFO, "memory.reclaim %zu %s: %s", sfork_region_size, what,
		ret ? tst_strerrno(ret) : "reclaimed");
}

/* reclaim that may use swap: every page in memory or in swap */
static void reclaim_to_swap(void)
{
	long long live, swapped;

	SAFE_CG_PRINT(tst_cg, "memory.swap.max", "max");
	reclaim("with swap");
	SAFE_CG_PRINT(tst_cg, "memory.swap.max", "0");

	live = sfork_stat("pages_live") - live0;
	swapped = sfork_smaps_kb(region, "Swap") / (long long)(sfork_page >> 10);
	TST_EXP_EXPR(live + swapped == (long long)npages,
		     "after reclaim with swap every page is in memory (%lld) or in swap (%lld) of %zu",
		     live, swapped, npages);
}

static void run_case(unsigned int n, unsigned int flags)
{
	int reader_child = sfork_reader_is_child(flags);
	unsigned int seed = n == CASE_WRITTEN ? SEED : 0;
	void *addr = NULL;
	int status;
	pid_t pid;

	flags = (flags & SFORK_DIRECTION_MASK) |
		(n == CASE_EAGER ? SFORK_EAGER : SFORK_LAZY);
	live0 = sfork_stat("pages_live");
	shmem0 = SAFE_READ_MEMINFO("Shmem:");
	huge0 = SAFE_READ_MEMINFO("ShmemHugePages:");
	cur0 = cg_current();

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	region = addr;
	if (!pid)
		child_loop();
	tst_res(TINFO, "the %s reads, the %s writes", reader_child ? "child" : "parent",
		reader_child ? "parent" : "child");

	if (n == CASE_WRITTEN)
		on_side(!reader_child, OP_WRITE, SEED);
	else if (n == CASE_READ)
		on_side(reader_child, OP_READ, 0);
	huge_alloc = SAFE_READ_MEMINFO("ShmemHugePages:") - huge0;
	check_held("allocated", 1);

	drop_caches();
	check_held("after drop_caches", 1);

	on_side(0, OP_DONTNEED, 0);
	on_side(1, OP_DONTNEED, 0);
	drop_caches();
	check_held("mapped by neither side, after drop_caches", 1);

	on_side(reader_child, OP_READ, seed);
	on_side(reader_child, OP_PAGEOUT, 0);
	check_held("after MADV_COLD and MADV_PAGEOUT by the reader", 0);

	reclaim("without swap");
	check_held("after memory.reclaim without swap", 0);

	reclaim_to_swap();
	on_side(reader_child, OP_READ, seed);
	check_held("read back after reclaim with swap", 0);

	on_side(1, OP_EXIT, 0);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
	TST_EXP_EQ_LI(sfork_stat_wait("pages_live", live0, 2000), live0);
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, case_name[n], run_case);
}

static void setup(void)
{
	if (!sfork_str_size)
		sfork_str_size = "4M";
	sfork_setup_all_dirs();
	npages = sfork_region_size / sfork_page;
	sh = sfork_shared_alloc(sizeof(*sh));
	sfork_swap_setup(MAX(2 * sfork_region_size, (size_t)64 << 20));
	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
	if (!SAFE_CG_HAS(tst_cg, "memory.swap.max"))
		tst_brk(TCONF, "no memory.swap.max (swap accounting off)");
	SAFE_CG_PRINT(tst_cg, "memory.swap.max", "0");
}

static void cleanup(void)
{
	sfork_swap_cleanup();
	sfork_test_cleanup();
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size (default 4M)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{}
	},
	.setup = setup,
	.cleanup = cleanup,
	.test = run,
	.tcnt = 3,
	.needs_root = 1,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.needs_cgroup_ctrls = (const char *const []){ "memory", NULL },
};
