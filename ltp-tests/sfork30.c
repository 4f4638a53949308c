// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that munmap() of part or all of an sfork region on one side ends
 * that side's mapping of those pages only, and the region with the last
 * mapping.
 *
 * Adapts LTP's munmap01 (unmapped memory faults) to sfork.  For each
 * direction (-d, or bi, p2c and c2p when -d is not given), allocation -a
 * and size -s (at least 4 pages):
 *
 * [Algorithm]
 *
 * - the child unmaps page 1, the parent page 0: both succeed, the unmapped
 *   page then faults with SEGV_MAPERR, the rest keeps its data and
 *   permission
 * - the writer stores a new pattern over what it still maps; the other side
 *   sees it on the pages both map, and the old data on the page only it maps
 * - the child unmaps all: the region still lives (regions_live) while the
 *   parent maps the rest, with its data
 * - once the parent unmaps too (both processes still alive) regions_live
 *   and pages_live are back to their values before within 2 s
 *
 * A module that refuses munmap, frees the pages while a side still maps
 * them, or leaks the region or its pages after the last unmap fails here.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_PARENT	0
#define CP_CHILD	1

#define SEED1		61
#define SEED2		62

static void child(unsigned char *p, int parent_ro, int child_ro)
{
	size_t npages = sfork_region_size / sfork_page;
	int bad = 0;

	if (!parent_ro)
		TST_CHECKPOINT_WAIT(CP_CHILD);
	else
		sfork_fill_pages(p, 0, npages, SEED1);

	TST_EXP_PASS(munmap(p + sfork_page, sfork_page),
		     "child: munmap of page 1 of %zu", npages);
	bad |= sfork_check_unmapped(p + sfork_page, "child, page 1 unmapped");
	bad |= sfork_check_side(p, sfork_page, child_ro, "child, page 0");
	bad |= sfork_check_side(p + 2 * sfork_page, (npages - 2) * sfork_page,
				child_ro, "child, pages 2..");
	bad |= sfork_check_pages(p, 0, 1, SEED1, "child, page 0");
	bad |= sfork_check_pages(p, 2, npages, SEED1, "child, pages 2..");
	if (!bad)
		tst_res(TPASS, "child: the rest keeps its data and permission (%s)",
			child_ro ? "read-only" : "writable");

	TST_CHECKPOINT_WAKE(CP_PARENT);
	TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
	/* now the parent maps pages 1.., the child 0 and 2.. */
	if (parent_ro) {
		sfork_fill_pages(p, 0, 1, SEED2);
		sfork_fill_pages(p, 2, npages, SEED2);
		TST_CHECKPOINT_WAKE(CP_PARENT);
		TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
	} else if (!sfork_check_pages(p, 0, 1, SEED1, "child, page only the child maps") &&
		   !sfork_check_pages(p, 2, npages, SEED2, "child, pages both map")) {
		tst_res(TPASS, "child: sees the parent's new stores on the pages both map, the old data on page 0");
	}

	TST_EXP_PASS(munmap(p, sfork_region_size), "child: munmap of the whole region");
	if (!sfork_check_unmapped(p, "child, whole region unmapped") &&
	    !sfork_check_unmapped(p + sfork_region_size - sfork_page,
				  "child, whole region unmapped"))
		tst_res(TPASS, "child: the region is gone from the child");
	TST_CHECKPOINT_WAKE(CP_PARENT);
	TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
	exit(0);
}

static void case_munmap(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	size_t npages = sfork_region_size / sfork_page;
	struct sfork_counters before;
	unsigned char *p;
	void *addr = NULL;
	int status, bad = 0;
	pid_t pid;

	tst_res(TINFO, "munmap in part and whole on both sides, direction %s",
		sfork_dir_name(flags));
	sfork_counters_save(&before);
	pid = SAFE_SFORK(sfork_region_size, flags, &addr);
	p = addr;
	if (!pid)
		child(p, parent_ro, !sfork_child_writes(flags));

	if (!parent_ro) {
		sfork_fill_pages(p, 0, npages, SEED1);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);

	TST_EXP_PASS(munmap(p, sfork_page), "parent: munmap of page 0 of %zu", npages);
	bad |= sfork_check_unmapped(p, "parent, page 0 unmapped");
	bad |= sfork_check_side(p + sfork_page, (npages - 1) * sfork_page,
				parent_ro, "parent, pages 1..");
	bad |= sfork_check_pages(p, 1, npages, SEED1, "parent, pages 1..");
	if (!bad)
		tst_res(TPASS, "parent: pages 1.. keep the data (page 1 unmapped by the child too) and permission (%s)",
			parent_ro ? "read-only" : "writable");

	if (!parent_ro) {
		sfork_fill_pages(p, 1, npages, SEED2);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	} else {
		TST_CHECKPOINT_WAKE(CP_CHILD);
		TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);
		if (!sfork_check_pages(p, 1, 2, SEED1, "parent, page only the parent maps") &&
		    !sfork_check_pages(p, 2, npages, SEED2, "parent, pages both map"))
			tst_res(TPASS, "parent: sees the child's new stores on the pages both map, the old data on page 1");
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);

	/* the child unmapped all; the parent still maps pages 1.. */
	sfork_check_alive(&before, "child unmapped the whole region, parent maps the rest");
	if (!sfork_check_pages(p, 1, 2, parent_ro ? SEED1 : SEED2,
			       "parent, page 1 after the child's munmap") &&
	    !sfork_check_pages(p, 2, npages, SEED2, "parent, after the child's munmap"))
		tst_res(TPASS, "parent: data intact after the child's munmap");

	TST_EXP_PASS(munmap(p + sfork_page, sfork_region_size - sfork_page),
		     "parent: munmap of the rest");
	sfork_check_settled(&before, "both unmapped, both processes alive");

	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
}

static void run(void)
{
	sfork_for_each_dir(case_munmap);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);
	sfork_region_at_least(4, "for the partial unmaps");
	sfork_stat("regions_live");
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default and minimum 4 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 180,
};
