// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * No region, page or memory leaks over many sfork/exit cycles;
 * pages_live counts exactly the allocated pages.
 *
 * Adapts LTP's fork14 (many forks with memory mapped, nothing may leak) to
 * sfork's accounting (the counters of /sys/kernel/debug/sfork/stats).
 *
 *  0. after a warm-up, 1000 cycles (-n) over all nine direction x
 *     allocation combinations, sizes of 2 to 5 pages: sfork, both sides
 *     touch every page (stores where they may write, loads elsewhere), the
 *     child exits, the parent unmaps.  Afterwards (letting the counters
 *     settle for up to 2 s) regions_live and pages_live are back to their
 *     start values and MemAvailable is within 4 MiB of its start value
 *     (caches dropped before each reading; counting the free pages on
 *     the per-CPU lists of /proc/zoneinfo,
 *     which alone move by 10+ MiB between two readings);
 *  1. a lazy region of 256 MiB (-b): pages_live does not move at the call;
 *     the writer stores to 100 pages spread over the region and the other
 *     side loads the same 100 pages: pages_live rose by exactly 100;
 *  2. an eager region of 256 MiB: pages_live rose by exactly 65,536 (size
 *     / page size) when sfork returned, before anyone touched the region,
 *     and touching does not change it.
 *
 * After cases 1 and 2, once the region is unmapped and the child exited,
 * both counters are back to their values before.  Cases 1 and 2 run for
 * -d (bi, p2c and c2p when -d is not given).
 *
 * A module that leaks a region or its pages on exit, allocates pages for
 * a lazy region before they are touched (or for loads of pages already
 * there), or populates an eager region only partly at the call fails here.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_CHILD	1
#define DEFAULT_CYCLES	1000
#define WARMUP		90
#define DEFAULT_BIG	(256LL << 20)
#define TOUCHED		100
#define AVAIL_SLACK_KB	4096

static const unsigned int dir_of[] = {
	SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD, SFORK_CHILD_TO_PARENT
};
static const unsigned int alloc_of[] = { SFORK_LAZY, SFORK_EAGER, 0 };

static char *str_n, *str_big;
static int cycles = DEFAULT_CYCLES;
static long long big = DEFAULT_BIG;
static void touch(unsigned char *p, size_t len, int writes)
{
	volatile unsigned char *q;
	unsigned char sum = 0;
	size_t off;

	for (off = 0; off < len; off += sfork_page) {
		q = p + off;
		if (writes)
			*q = (unsigned char)(off >> 12) | 1;
		else
			sum += *q;
	}
	(void)sum;
}

/* one cycle; 0 when everything worked */
static int cycle(int i)
{
	unsigned int combo = i % 9;
	unsigned int flags = dir_of[combo % 3] | alloc_of[combo / 3];
	size_t len = sfork_region_size + (i % 4) * sfork_page;
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = sfork(len, flags, &addr);
	if (pid < 0) {
		tst_res(TFAIL | TERRNO, "cycle %d: sfork(%zu, %s)", i, len,
			sfork_flags_desc(flags));
		return 1;
	}
	if (!pid) {
		touch(addr, len, sfork_child_writes(flags));
		_exit(0);
	}
	touch(addr, len, sfork_parent_writes(flags));
	SAFE_WAITPID(pid, &status, 0);
	SAFE_MUNMAP(addr, len);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		tst_res(TFAIL, "cycle %d (%s): child %s", i,
			sfork_flags_desc(flags), tst_strstatus(status));
		return 1;
	}
	return 0;
}

/* free pages cached on the per-CPU lists (not in MemFree), in kB */
static long pcp_kb(void)
{
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	long sum = 0, v;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " count: %ld", &v) == 1)
			sum += v;
	}
	fclose(f);
	return sum * (long)(sfork_page / 1024);
}

/*
 * MemAvailable plus the free pages on the per-CPU lists: those lists hold
 * up to several MiB that come and go with every fork and exit.
 */
static long mem_available(void)
{
	/* Reclaimable caches come and go; only what is not returned counts. */
	sync();
	SAFE_FILE_PRINTF("/proc/sys/vm/drop_caches", "3");
	return SAFE_READ_MEMINFO("MemAvailable:") + pcp_kb();
}

static void case_cycles(void)
{
	struct sfork_counters start;
	long base_avail, avail = 0;
	int i, failed = 0;

	for (i = 0; i < WARMUP; i++)
		cycle(i);

	sfork_counters_save(&start);
	base_avail = mem_available();
	tst_res(TINFO, "start: regions_live %lld, pages_live %lld, MemAvailable + per-CPU free lists %ld kB",
		start.regions, start.pages, base_avail);

	for (i = 0; i < cycles && failed < 10; i++)
		failed += cycle(i);

	if (failed)
		tst_res(TFAIL, "%d of %d cycles failed", failed, i);
	else
		tst_res(TPASS, "%d sfork/touch/exit cycles over all 9 flag combinations",
			cycles);

	sfork_check_settled(&start, "after the cycles");

	/* a leak lowers it; more available than at the start is no leak */
	for (i = 0; i < 20; i++) {
		avail = mem_available();
		if (base_avail - avail <= AVAIL_SLACK_KB)
			break;
		usleep(100000);
	}
	if (base_avail - avail <= AVAIL_SLACK_KB)
		tst_res(TPASS, "MemAvailable (+ per-CPU free lists) %ld kB, start %ld kB (at most %d kB less)",
			avail, base_avail, AVAIL_SLACK_KB);
	else
		tst_res(TFAIL, "MemAvailable (+ per-CPU free lists) %ld kB, start %ld kB: %ld kB lost",
			avail, base_avail, base_avail - avail);
	tst_res(TINFO, "MemFree %ld kB, Slab %ld kB, per-CPU free lists %ld kB",
		SAFE_READ_MEMINFO("MemFree:"), SAFE_READ_MEMINFO("Slab:"),
		pcp_kb());
}

static size_t touched_page(int j)
{
	size_t npages = (size_t)big / sfork_page;

	return (size_t)j * (npages / TOUCHED) + (size_t)(j % 7);
}

static void store_pages(unsigned char *p)
{
	int j;

	for (j = 0; j < TOUCHED; j++)
		p[touched_page(j) * sfork_page + 8] = (unsigned char)(j + 1);
}

static int load_pages(const unsigned char *p, const char *who)
{
	int j;

	for (j = 0; j < TOUCHED; j++) {
		if (p[touched_page(j) * sfork_page + 8] != (unsigned char)(j + 1)) {
			tst_res(TFAIL, "%s: page %zu does not hold the writer's byte",
				who, touched_page(j));
			return 1;
		}
	}
	return 0;
}

/* n 1: lazy, 2: eager, whatever -a says */
static void case_big(unsigned int n, unsigned int dir_flags)
{
	int eager = n == 2;
	unsigned int flags = (dir_flags & SFORK_DIRECTION_MASK) |
			     (eager ? SFORK_EAGER : SFORK_LAZY);
	int parent_writes = sfork_parent_writes(flags);
	long long pages, npages = big / (long long)sfork_page;
	struct sfork_counters before;
	long long want_call = eager ? npages : 0;
	long long want_touched = eager ? npages : TOUCHED;
	void *addr = NULL;
	int status;
	pid_t pid;

	sfork_counters_save(&before);

	pid = SAFE_SFORK(big, flags, &addr);
	if (!pid) {
		TST_CHECKPOINT_WAIT2(CP_CHILD, 120000);
		if (parent_writes) {
			if (!load_pages(addr, "child"))
				tst_res(TPASS, "child loads the %d pages the parent stored to",
					TOUCHED);
		} else {
			store_pages(addr);
		}
		exit(0);
	}

	pages = sfork_stat("pages_live");
	if (pages - before.pages == want_call)
		tst_res(TPASS, "%s %lld bytes: pages_live +%lld at the call",
			sfork_flags_desc(flags), big, pages - before.pages);
	else
		tst_res(TFAIL, "%s %lld bytes: pages_live +%lld at the call, expected +%lld",
			sfork_flags_desc(flags), big, pages - before.pages, want_call);

	if (parent_writes)
		store_pages(addr);
	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	if (!parent_writes && !load_pages(addr, "parent"))
		tst_res(TPASS, "parent loads the %d pages the child stored to", TOUCHED);

	pages = sfork_stat("pages_live");
	if (pages - before.pages == want_touched)
		tst_res(TPASS, "%s: pages_live +%lld after %d pages were stored to and loaded",
			sfork_flags_desc(flags), pages - before.pages, TOUCHED);
	else
		tst_res(TFAIL, "%s: pages_live +%lld after %d pages were stored to and loaded, expected +%lld",
			sfork_flags_desc(flags), pages - before.pages, TOUCHED,
			want_touched);

	SAFE_MUNMAP(addr, big);
	sfork_check_settled(&before, "after the big region");
}

static void run(unsigned int n)
{
	if (n == 0) {
		case_cycles();
		return;
	}
	sfork_for_each_dir_case(n, n == 2 ? "big eager region" : "big lazy region",
				case_big);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);

	if (tst_parse_int(str_n, &cycles, 1, INT_MAX))
		tst_brk(TBROK, "Invalid -n '%s'", str_n);
	if (tst_parse_filesize(str_big, &big, TOUCHED * 8 * (long long)sfork_page,
			       LLONG_MAX))
		tst_brk(TBROK, "Invalid -b '%s'", str_big);
	big &= ~((long long)sfork_page - 1);

	if (sfork_param("max_region_bytes") < (unsigned long long)big)
		tst_brk(TCONF, "max_region_bytes below %lld (-b)", big);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"n:", &str_n, "sfork/exit cycles (default 1000)"},
		{"b:", &str_big, "Size of the big lazy and eager regions (default 256M)"},
		{}
	},
	.setup = setup,
	.test = run,
	.tcnt = 3,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 900,
};
