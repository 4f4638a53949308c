// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork07 - madvise on the read-only side never changes data or permission.
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
#define FULL_CHECK_MAX	(4UL << 20)
#define SAMPLE		64
#define MAX_PROBES	64

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

static unsigned int dirs[2];
static unsigned int dirs_cnt;
static size_t region_len;

static void fill(unsigned char *p, unsigned int seed)
{
	size_t pg, i;

	for (pg = 0; pg < region_len; pg += sfork_page) {
		for (i = 0; i < sfork_page; i++) {
			if (region_len > FULL_CHECK_MAX && i == SAMPLE)
				i = sfork_page - SAMPLE;
			p[pg + i] = sfork_pattern(pg + i, seed);
		}
	}
}

static int verify(const unsigned char *p, unsigned int seed, const char *who,
		  const char *what)
{
	unsigned char want;
	size_t pg, i;

	for (pg = 0; pg < region_len; pg += sfork_page) {
		for (i = 0; i < sfork_page; i++) {
			if (region_len > FULL_CHECK_MAX && i == SAMPLE)
				i = sfork_page - SAMPLE;
			want = sfork_pattern(pg + i, seed);
			if (p[pg + i] != want) {
				tst_res(TFAIL, "%s after %s: byte %zu is 0x%02x, expected the writer's 0x%02x",
					who, what, pg + i, p[pg + i], want);
				return 1;
			}
		}
	}
	return 0;
}

static int read_only(unsigned char *p, const char *what)
{
	size_t npages = region_len / sfork_page, step, i;
	volatile char *where;
	siginfo_t si;

	step = npages > MAX_PROBES ? npages / MAX_PROBES : 1;
	for (i = 0; i < npages; i += step) {
		where = (volatile char *)p + i * sfork_page + (i % 3) * 8;
		if (!sfork_try_store(where, 0x5a, &si)) {
			tst_res(TFAIL, "reader after %s: store to page %zu succeeded",
				what, i);
			return 1;
		}
		if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR ||
		    si.si_addr != (void *)where) {
			tst_res(TFAIL, "reader after %s: store to %p raised %s si_code %d si_addr %p, expected SIGSEGV/SEGV_ACCERR at the store",
				what, (void *)where, tst_strsig(si.si_signo),
				si.si_code, si.si_addr);
			return 1;
		}
	}

	TEST(mprotect(p, region_len, PROT_READ | PROT_WRITE));
	if (TST_RET != -1 || TST_ERR != EACCES) {
		tst_res(TFAIL | TTERRNO, "reader after %s: mprotect(RW) returned %ld, expected EACCES",
			what, TST_RET);
		return 1;
	}
	TEST(mprotect(p + sfork_page, sfork_page, PROT_READ | PROT_WRITE));
	if (TST_RET != -1 || TST_ERR != EACCES) {
		tst_res(TFAIL | TTERRNO, "reader after %s: mprotect(RW) of one page returned %ld, expected EACCES",
			what, TST_RET);
		return 1;
	}
	return 0;
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
			TEST(madvise(p, region_len, advice));
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
	unsigned int i;

	for (i = 0; i < dirs_cnt; i++)
		sfork_run_sides(dirs[i], region_len, reader, writer);
}

static void setup(void)
{
	sfork_test_setup();

	region_len = sfork_region_size;
	if (region_len < MIN_PAGES * sfork_page) {
		region_len = MIN_PAGES * sfork_page;
		tst_res(TINFO, "region raised to %d pages for the split",
			MIN_PAGES);
	}

	dirs_cnt = sfork_readonly_dirs(dirs);
}

static struct tst_test test = {
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.timeout = 240,
};
