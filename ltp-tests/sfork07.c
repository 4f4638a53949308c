// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Madvise on the read-only side never changes data or permission.
 *
 * Adapts LTP's madvise12 (advice, then check in a child what the memory
 * allows) and madvise10 (MADV_WIPEONFORK/KEEPONFORK) to sfork's read-only
 * side: the child with -d p2c, the parent with -d c2p (both when -d is not
 * given; -d bi has no read-only side and is TCONF).  The region is at least
 * 4 pages.
 *
 * For every advice Linux defines (MADV_NORMAL, RANDOM, SEQUENTIAL,
 * WILLNEED, DONTNEED, FREE, REMOVE, DONTFORK, DOFORK, MERGEABLE,
 * UNMERGEABLE, HUGEPAGE, NOHUGEPAGE, DONTDUMP, DODUMP, WIPEONFORK,
 * KEEPONFORK, COLD, PAGEOUT, POPULATE_READ, POPULATE_WRITE,
 * DONTNEED_LOCKED, COLLAPSE; the memory-failure injections are left out),
 * first on one page in the middle (an advice that changes VMA flags splits
 * the VMA in three) and then on the whole region, in lock step with the
 * writer:
 *
 *  - the writer stores a new pattern over the whole region;
 *  - the reader calls madvise() (success and failure are both allowed, the
 *    result is printed);
 *  - the reader still reads exactly the writer's new pattern, a store to
 *    each page still raises SIGSEGV/SEGV_ACCERR at the store, and
 *    mprotect(PROT_READ | PROT_WRITE) still fails with EACCES;
 *  - the writer still reads its own pattern (so MADV_REMOVE, DONTNEED,
 *    FREE, PAGEOUT ... from the reader did not punch or zero anything),
 *    and the next round's pattern reaching the reader shows that the
 *    reader still maps the shared pages and not a private copy.
 *
 * A module that lets MADV_REMOVE free the shared pages from the read-only
 * side, refills zapped pages with zeroes, hands out private pages after
 * MADV_DONTNEED, or lets an advice (POPULATE_WRITE, a split) restore
 * VM_WRITE fails one of these checks.
 */

#include <stdlib.h>
#include <sys/mman.h>

#include "tst_test.h"
#include "sfork_test.h"

/* values from the kernel's uapi asm-generic/mman-common.h */
#ifndef MADV_FREE
# define MADV_FREE		8
#endif
#ifndef MADV_WIPEONFORK
# define MADV_WIPEONFORK	18
#endif
#ifndef MADV_KEEPONFORK
# define MADV_KEEPONFORK	19
#endif
#ifndef MADV_COLD
# define MADV_COLD		20
#endif
#ifndef MADV_PAGEOUT
# define MADV_PAGEOUT		21
#endif
#ifndef MADV_POPULATE_READ
# define MADV_POPULATE_READ	22
#endif
#ifndef MADV_POPULATE_WRITE
# define MADV_POPULATE_WRITE	23
#endif
#ifndef MADV_DONTNEED_LOCKED
# define MADV_DONTNEED_LOCKED	24
#endif
#ifndef MADV_COLLAPSE
# define MADV_COLLAPSE		25
#endif

#define CP_READER	0
#define CP_WRITER	1

#define MIN_PAGES	4

#define ADV(a)	{ a, #a }

static const struct advice {
	int advice;
	const char *name;
} advices[] = {
	ADV(MADV_NORMAL),
	ADV(MADV_RANDOM),
	ADV(MADV_SEQUENTIAL),
	ADV(MADV_WILLNEED),
	ADV(MADV_DONTNEED),
	ADV(MADV_FREE),
	ADV(MADV_REMOVE),
	ADV(MADV_DONTFORK),
	ADV(MADV_DOFORK),
	ADV(MADV_MERGEABLE),
	ADV(MADV_UNMERGEABLE),
	ADV(MADV_HUGEPAGE),
	ADV(MADV_NOHUGEPAGE),
	ADV(MADV_DONTDUMP),
	ADV(MADV_DODUMP),
	ADV(MADV_WIPEONFORK),
	ADV(MADV_KEEPONFORK),
	ADV(MADV_COLD),
	ADV(MADV_PAGEOUT),
	ADV(MADV_POPULATE_READ),
	ADV(MADV_POPULATE_WRITE),
	ADV(MADV_DONTNEED_LOCKED),
	ADV(MADV_COLLAPSE),
	/* once more after the others, on pages already advised */
	ADV(MADV_DONTNEED),
	ADV(MADV_REMOVE),
};

#define NROUNDS	(2 * ARRAY_SIZE(advices))

static void fill(unsigned char *p, unsigned int seed)
{
	sfork_fill_pages(p, 0, sfork_region_size / sfork_page, seed);
}

static int verify(const unsigned char *p, unsigned int seed, const char *who,
		  const char *what)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%s after %s", who, what);
	return sfork_check_pages(p, 0, sfork_region_size / sfork_page, seed, buf);
}

/* the whole region and its second page are read-only */
static int read_only(unsigned char *p, const char *what)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "reader after %s", what);
	if (sfork_check_read_only(p, sfork_region_size, buf))
		return 1;
	TST_EXP_FAIL_SILENT(mprotect(p + sfork_page, sfork_page, PROT_READ | PROT_WRITE),
			    EACCES, "%s: mprotect(RW) of one page", buf);
	return !TST_PASS;
}

static void round_desc(unsigned int r, char *buf, size_t size)
{
	const struct advice *a = &advices[r / 2];

	snprintf(buf, size, "%s on %s", a->name,
		 r % 2 ? "the whole region" : "the second page");
}

static void reader(unsigned char *p)
{
	char what[64], res[64];
	unsigned int r;
	int advice;

	for (r = 0; r < NROUNDS; r++) {
		round_desc(r, what, sizeof(what));
		advice = advices[r / 2].advice;

		TST_CHECKPOINT_WAIT2(CP_READER, 60000);

		/* the page first: a flag already set on the whole would not split */
		if (r % 2)
			TEST(madvise(p, sfork_region_size, advice));
		else
			TEST(madvise(p + sfork_page, sfork_page, advice));
		if (TST_RET)
			snprintf(res, sizeof(res), "refused: %s",
				 tst_strerrno(TST_ERR));
		else
			snprintf(res, sizeof(res), "accepted");

		if (!verify(p, r + 1, "reader", what) && !read_only(p, what))
			tst_res(TPASS, "%s (%s): reader sees the writer's data, still read-only",
				what, res);

		TST_CHECKPOINT_WAKE(CP_WRITER);
	}
}

static void writer(unsigned char *p)
{
	char what[64];
	unsigned int r;
	int bad = 0;

	for (r = 0; r < NROUNDS; r++) {
		round_desc(r, what, sizeof(what));
		fill(p, r + 1);
		TST_CHECKPOINT_WAKE(CP_READER);
		TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);
		bad |= verify(p, r + 1, "writer", what);
	}

	if (!bad)
		tst_res(TPASS, "writer: its data survived all %u advices of the reader",
			(unsigned int)NROUNDS);
}

static void run(void)
{
	sfork_run_sides_each_dir(reader, writer, 0);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_READONLY);
	sfork_region_at_least(MIN_PAGES, "for the split");
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
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 240,
};
