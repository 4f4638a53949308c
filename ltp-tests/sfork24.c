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
 *  - memory.max is lowered below what the cgroup holds and put back: the
 *    kernel swapped out at least half of the region's pages, and huge folios
 *    were split for it (thp_split_page) or swapped out whole (thp_swpout);
 *  - the reading side faults the region back in from swap: every byte as
 *    written; a read-only side's store there faults with SEGV_ACCERR and
 *    mprotect(PROT_READ|PROT_WRITE) fails with EACCES;
 *  - the writer then writes the region again and the other side sees it
 *    (still one set of pages after swap-in);
 *  - with the child gone the region is squeezed out to swap once more; when
 *    the parent unmaps it, at least half of its size in swap is free again
 *    within 2 seconds.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/swap.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork_huge.h"

#define CP_FILLED	0
#define CP_READ		1
#define CP_SQUEEZED	2
#define CP_CHECKED	3
#define CP_REFILLED	4

#define SEED		24
#define SEED_AFTER	42
#define WAIT_MS		120000

#define ZRAM_SYS	"/sys/block/zram0"
#define ZRAM_DEV	"/dev/zram0"

static int zram_loaded, zram_swap;

/* a command's exit status (-1 when it did not exit) */
static int run_cmd(const char *const argv[])
{
	int status;
	pid_t pid;

	pid = SAFE_FORK();
	if (!pid) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	SAFE_WAITPID(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* a /proc/vmstat counter; 0 when this kernel has no such counter */
static unsigned long long vmstat(const char *key)
{
	unsigned long long v = 0;
	char fmt[64];

	snprintf(fmt, sizeof(fmt), "%s %%llu", key);
	if (FILE_LINES_SCANF("/proc/vmstat", fmt, &v))
		return 0;
	return v;
}

/* swap: what is on already, or a zram device of twice the region */
static void swap_setup(void)
{
	const char *const modprobe[] = { "modprobe", "zram", "num_devices=1", NULL };
	const char *const mkswap[] = { "mkswap", ZRAM_DEV, NULL };
	unsigned long long disksize;
	size_t size = MAX(2 * sfork_region_size, (size_t)64 << 20);

	if (SAFE_READ_MEMINFO("SwapTotal:") > 0) {
		tst_res(TINFO, "using the swap that is on");
		return;
	}
	if (access(ZRAM_SYS, F_OK)) {
		if (run_cmd(modprobe))
			tst_brk(TCONF, "no swap is on and modprobe zram failed");
		zram_loaded = 1;
	}
	SAFE_FILE_SCANF(ZRAM_SYS "/disksize", "%llu", &disksize);
	if (disksize)
		tst_brk(TCONF, "no swap is on and %s is in use", ZRAM_DEV);
	SAFE_FILE_PRINTF(ZRAM_SYS "/disksize", "%zu", size);
	if (run_cmd(mkswap))
		tst_brk(TBROK, "mkswap %s failed", ZRAM_DEV);
	if (swapon(ZRAM_DEV, 0))
		tst_brk(TBROK | TERRNO, "swapon(%s)", ZRAM_DEV);
	zram_swap = 1;
	tst_res(TINFO, "swap on %s, %zu MiB", ZRAM_DEV, size >> 20);
}

static void swap_cleanup(void)
{
	const char *const rmmod[] = { "modprobe", "-r", "zram", NULL };

	if (zram_swap) {
		if (swapoff(ZRAM_DEV))
			tst_res(TWARN | TERRNO, "swapoff(%s)", ZRAM_DEV);
		else
			SAFE_FILE_PRINTF(ZRAM_SYS "/reset", "1");
	}
	if (zram_loaded && run_cmd(rmmod))
		tst_res(TWARN, "modprobe -r zram failed");
}

/*
 * memory.max below what the cgroup holds, then back: the kernel reclaims
 * the difference, and region pages can only go to swap.  The first time,
 * the region's folios are huge and have to be split (or swapped whole).
 */
static void squeeze(int huge)
{
	unsigned long long cur, out0, split0, thp0, out, split, thp;
	size_t pages = sfork_region_size / sfork_page;

	out0 = vmstat("pswpout");
	split0 = vmstat("thp_split_page");
	thp0 = vmstat("thp_swpout");
	SAFE_CG_SCANF(tst_cg, "memory.current", "%llu", &cur);
	SAFE_CG_PRINTF(tst_cg, "memory.max", "%llu",
		       cur - sfork_region_size * 3 / 4);
	SAFE_CG_PRINT(tst_cg, "memory.max", "max");
	out = vmstat("pswpout") - out0;
	split = vmstat("thp_split_page") - split0;
	thp = vmstat("thp_swpout") - thp0;

	TST_EXP_EXPR(out >= pages / 2,
		     "reclaim swapped out %llu pages (the region has %zu)",
		     out, pages);
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
		squeeze(1);
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
		squeeze(1);
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

/* 0 once SwapFree rose by want_kb over free_kb (2 s at most) */
static int swap_released(long free_kb, long want_kb)
{
	long now = 0;
	int i;

	for (i = 0; i < 20; i++) {
		now = SAFE_READ_MEMINFO("SwapFree:");
		if (now - free_kb >= want_kb) {
			tst_res(TINFO, "%ld kB of swap freed", now - free_kb);
			return 0;
		}
		usleep(100000);
	}
	tst_res(TFAIL, "2 s after the region was gone %ld kB of swap were freed, not %ld",
		now - free_kb, want_kb);
	return 1;
}

static void run_dir(unsigned int flags)
{
	int parent_writes = sfork_parent_writes(flags);
	long free_kb;
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

	squeeze(0);
	free_kb = SAFE_READ_MEMINFO("SwapFree:");
	SAFE_MUNMAP(addr, sfork_region_size);
	if (!swap_released(free_kb, (long)(sfork_region_size >> 10) / 2))
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
	swap_setup();
	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
}

static void cleanup(void)
{
	swap_cleanup();
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
