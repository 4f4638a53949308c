// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Mremap on the read-only side never gives write access.
 *
 * Adapts LTP's mremap01 (resize a mapping, the data stays), mremap04
 * (mremap refuses what the mapping does not allow) and remap_file_pages01
 * (the deprecated remapping of a shared file mapping) to sfork's read-only
 * side: the child with -d p2c, the parent with -d c2p (both when -d is not
 * given; -d bi has no read-only side and is TCONF).  The region is at least
 * 8 pages.  The reader, step by step:
 *
 *  1. moves the whole region (MREMAP_MAYMOVE | MREMAP_FIXED) before the
 *     writer stored anything (lazy: no page exists yet);
 *  2. shrinks it by one page in place;
 *  3. grows it by one page in place, then
 *  4. grows it by two pages with MREMAP_MAYMOVE (growing may be refused;
 *     when it is not, a store to the added part must fault too and the
 *     added part is unmapped again);
 *  5. moves one page out of the middle (splitting the region in three);
 *  6. tries MREMAP_DONTUNMAP on one page;
 *  7. calls remap_file_pages() on the first page (it maps the VMA's file
 *     again over the page): refused, and the page stays mapped as it was.
 *
 * After every step, on every piece the reader now maps: a store to each
 * page raises SIGSEGV with si_code SEGV_ACCERR and si_addr at the store,
 * mprotect(PROT_READ | PROT_WRITE) fails with EACCES, the old address of a
 * moved piece is no longer mapped, and every byte is what the writer wrote
 * at that region offset.  Finally the writer stores a new pattern over the
 * whole region and the reader sees it through every piece (a moved piece
 * still maps the shared pages, not a copy), and the writer's own view is
 * intact.
 *
 * A module whose VMA copy (mremap, split) or fault path restores VM_WRITE,
 * whose ->mprotect lets the moved VMA through, that gives the moved
 * mapping private pages, or whose file maps again (or unmaps the page
 * before it refuses) fails one of these checks.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#ifndef MREMAP_DONTUNMAP
# define MREMAP_DONTUNMAP 4
#endif

#define CP_READER	0
#define CP_WRITER	1

#define MIN_PAGES	8
#define MAX_PIECES	8
/* regions above this are checked on 64 bytes at both ends of each page */

#define SEED1		11
#define SEED2		23

struct piece {
	unsigned char *addr;
	size_t off;	/* offset in the region */
	size_t len;
};


static struct piece pieces[MAX_PIECES];
static unsigned int npieces;

/* [off, off + len) of the region at p, sampled above 4 MiB */
static void fill(unsigned char *p, size_t off, size_t len, unsigned int seed)
{
	sfork_fill_sample(p, off, len, seed, 1);
}

static int verify(const unsigned char *p, size_t off, size_t len,
		  unsigned int seed, const char *what)
{
	return sfork_check_fill_sample(p, off, len, seed, 1, what);
}

static int piece_read_only(const struct piece *pc, const char *what)
{
	return sfork_check_read_only(pc->addr, pc->len, what);
}

/* every piece read-only and holding seed's data */
static void check_pieces(const char *step, unsigned int seed)
{
	char what[128];
	unsigned int i;
	int bad = 0;

	for (i = 0; i < npieces; i++) {
		snprintf(what, sizeof(what), "%s, piece %u (offset %zu, %zu bytes)",
			 step, i, pieces[i].off, pieces[i].len);
		bad |= piece_read_only(&pieces[i], what);
		bad |= verify(pieces[i].addr, pieces[i].off, pieces[i].len,
			      seed, what);
	}
	if (!bad)
		tst_res(TPASS, "%s: %u piece(s) read-only (SEGV_ACCERR, mprotect EACCES), data intact",
			step, npieces);
}

/* addr must no longer be mapped: a load raises SIGSEGV/SEGV_MAPERR */
static void check_gone(void *addr, const char *step)
{
	siginfo_t si;
	char c;

	if (!sfork_try_load(addr, &c, &si)) {
		tst_res(TFAIL, "%s: old address %p still readable", step, addr);
		return;
	}
	if (si.si_signo != SIGSEGV || si.si_code != SEGV_MAPERR)
		tst_res(TFAIL, "%s: load from old address %p raised %s si_code %d, expected SEGV_MAPERR",
			step, addr, tst_strsig(si.si_signo), si.si_code);
}

/* a free range of len bytes (reserved PROT_NONE, to be replaced) */
static void *free_range(size_t len)
{
	return SAFE_MMAP(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
}

static void step_move_whole(void)
{
	struct piece *pc = &pieces[0];
	void *dst = free_range(pc->len), *ret;

	ret = mremap(pc->addr, pc->len, pc->len, MREMAP_MAYMOVE | MREMAP_FIXED,
		     dst);
	if (ret == MAP_FAILED) {
		tst_res(TPASS | TERRNO, "move whole region: refused");
		SAFE_MUNMAP(dst, pc->len);
		return;
	}
	if (ret != dst) {
		tst_res(TFAIL, "move whole region: mremap returned %p, not %p",
			ret, dst);
		return;
	}
	tst_res(TINFO, "move whole region: %p -> %p", (void *)pc->addr, ret);
	check_gone(pc->addr, "move whole region");
	pc->addr = ret;
	check_pieces("move whole region (no page written yet)", 0);
}

static void step_shrink(unsigned int seed)
{
	struct piece *pc = &pieces[0];
	void *ret;

	ret = mremap(pc->addr, pc->len, pc->len - sfork_page, 0);
	if (ret == MAP_FAILED) {
		tst_res(TINFO | TERRNO, "shrink by one page: refused");
		return;
	}
	if (ret != pc->addr) {
		tst_res(TFAIL, "shrink in place: mremap returned %p, not %p",
			ret, (void *)pc->addr);
		return;
	}
	pc->len -= sfork_page;
	check_gone(pc->addr + pc->len, "shrink by one page");
	check_pieces("shrink by one page", seed);
}

static void step_grow(unsigned int seed, int may_move, size_t extra)
{
	struct piece *pc = &pieces[0];
	const char *step = may_move ? "grow with MREMAP_MAYMOVE" :
				      "grow in place";
	struct piece grown;
	unsigned char *old = pc->addr, *ret;
	char what[64];

	ret = mremap(pc->addr, pc->len, pc->len + extra,
		     may_move ? MREMAP_MAYMOVE : 0);
	if (ret == MAP_FAILED) {
		tst_res(TPASS | TERRNO, "%s: refused", step);
		return;
	}

	tst_res(TINFO, "%s: %p -> %p, %zu -> %zu bytes", step, (void *)old,
		(void *)ret, pc->len, pc->len + extra);
	if (ret != old)
		check_gone(old, step);
	pc->addr = ret;

	/* the added part must not be writable either (and is not read) */
	grown.addr = ret + pc->len;
	grown.off = pc->off + pc->len;
	grown.len = extra;
	snprintf(what, sizeof(what), "%s, added part", step);
	if (!piece_read_only(&grown, what))
		tst_res(TPASS, "%s: added part is read-only", step);

	grown.addr = ret;
	grown.off = pc->off;
	grown.len = pc->len + extra;
	snprintf(what, sizeof(what), "%s, whole grown mapping", step);
	if (!piece_read_only(&grown, what))
		tst_res(TPASS, "%s: mprotect RW of the grown mapping is EACCES", step);

	SAFE_MUNMAP(ret + pc->len, extra);
	check_pieces(step, seed);
}

static void step_move_middle(unsigned int seed)
{
	struct piece *pc = &pieces[0];
	unsigned char *mid = pc->addr + sfork_page;
	void *dst = free_range(sfork_page), *ret;

	ret = mremap(mid, sfork_page, sfork_page,
		     MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (ret == MAP_FAILED) {
		tst_res(TPASS | TERRNO, "move one middle page: refused");
		SAFE_MUNMAP(dst, sfork_page);
		return;
	}
	if (ret != dst) {
		tst_res(TFAIL, "move one middle page: mremap returned %p, not %p",
			ret, dst);
		return;
	}
	check_gone(mid, "move one middle page");

	pieces[2].addr = mid + sfork_page;
	pieces[2].off = pc->off + 2 * sfork_page;
	pieces[2].len = pc->len - 2 * sfork_page;
	pieces[1].addr = ret;
	pieces[1].off = pc->off + sfork_page;
	pieces[1].len = sfork_page;
	pc->len = sfork_page;
	npieces = 3;
	check_pieces("move one middle page", seed);
}

static void step_dontunmap(unsigned int seed)
{
	struct piece *pc = &pieces[npieces - 1];
	void *ret;

	ret = mremap(pc->addr, sfork_page, sfork_page,
		     MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
	if (ret == MAP_FAILED) {
		tst_res(TPASS | TERRNO, "MREMAP_DONTUNMAP: refused");
		return;
	}

	tst_res(TINFO, "MREMAP_DONTUNMAP: %p -> %p", (void *)pc->addr, ret);
	pieces[npieces].addr = ret;
	pieces[npieces].off = pc->off;
	pieces[npieces].len = sfork_page;
	npieces++;
	check_pieces("MREMAP_DONTUNMAP", seed);
}

/* remap_file_pages() of one page: mmap of the region file, MAP_FIXED */
static void step_remap_file_pages(unsigned int seed)
{
	struct piece *pc = &pieces[0];

	if (remap_file_pages(pc->addr, sfork_page, 0, pc->off / sfork_page, 0))
		tst_res(TPASS | TERRNO, "remap_file_pages: refused");
	else
		tst_res(TFAIL, "remap_file_pages of the read-only side succeeded");
	check_pieces("remap_file_pages", seed);
}

static void reader(unsigned char *p)
{
	unsigned int i;

	pieces[0].addr = p;
	pieces[0].off = 0;
	pieces[0].len = sfork_region_size;
	npieces = 1;

	check_pieces("reader before any mremap", 0);
	step_move_whole();

	/* the writer fills the region now, after the move */
	TST_CHECKPOINT_WAKE(CP_WRITER);
	TST_CHECKPOINT_WAIT2(CP_READER, 60000);
	check_pieces("writer's data through the moved region", SEED1);

	step_shrink(SEED1);
	step_grow(SEED1, 0, sfork_page);
	step_grow(SEED1, 1, 2 * sfork_page);
	step_move_middle(SEED1);
	step_dontunmap(SEED1);
	step_remap_file_pages(SEED1);

	/* the writer stores again: every piece still maps the shared pages */
	TST_CHECKPOINT_WAKE(CP_WRITER);
	TST_CHECKPOINT_WAIT2(CP_READER, 60000);
	check_pieces("writer's second data through every piece", SEED2);

	for (i = 0; i < npieces; i++)
		SAFE_MUNMAP(pieces[i].addr, pieces[i].len);
	TST_CHECKPOINT_WAKE(CP_WRITER);
}

static void writer(unsigned char *p)
{
	TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);
	fill(p, 0, sfork_region_size, SEED1);
	TST_CHECKPOINT_WAKE(CP_READER);

	TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);
	fill(p, 0, sfork_region_size, SEED2);
	TST_CHECKPOINT_WAKE(CP_READER);

	TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);
	if (!verify(p, 0, sfork_region_size, SEED2, "writer after the reader's mremaps"))
		tst_res(TPASS, "writer: own data intact after the reader's mremaps");
}

/* A read-only parent has moved the region and unmaps its pieces itself. */
static void run(void)
{
	sfork_run_sides_each_dir(reader, writer, 1);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_READONLY);
	sfork_region_at_least(MIN_PAGES, "for the splits");
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
	.timeout = 120,
};
