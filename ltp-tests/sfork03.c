// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Mprotect() and splitting never give the read-only side write.
 *
 * Adapts LTP's mprotect03 (mprotect() of a mapping and the resulting
 * access) and munmap01 (partial munmap) to sfork's read-only side: the
 * child with -d p2c, the parent with -d c2p (both when -d is not given;
 * -d bi is TCONF).  The region is at least 4 pages.  On the read-only side:
 *
 *  - mprotect(PROT_READ|PROT_WRITE), mprotect(PROT_WRITE) and
 *    mprotect(PROT_READ|PROT_WRITE|PROT_EXEC) fail with EACCES for the whole
 *    region, its first page, its last page, a middle page and the inner
 *    pages;
 *  - splitting by mprotect(PROT_NONE) of a middle page (when the module
 *    allows it) and mprotect(PROT_READ) back, then asking PROT_WRITE for
 *    each piece and for the whole range, still fails with EACCES;
 *  - after munmap() of the last page, then of the first page, PROT_WRITE
 *    on what is left still fails with EACCES, and /proc/self/maps shows
 *    no 'w' for any piece;
 *  - after every attempt a store to each page concerned still raises
 *    SIGSEGV (SEGV_ACCERR);
 *  - the data reads as the writer left it, on both sides, at the end.
 *
 * A module that relies on VM_MAYWRITE at mmap time only, or that loses the
 * side's protection when its VMA is split or partially unmapped, fails.
 */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_WRITER	0
#define CP_READER	1
#define SEED		3

static const int write_prots[] = {
	PROT_READ | PROT_WRITE,
	PROT_WRITE,
	PROT_READ | PROT_WRITE | PROT_EXEC,
};

static const char *prot_name(int prot)
{
	switch (prot) {
	case PROT_READ | PROT_WRITE: return "PROT_READ|PROT_WRITE";
	case PROT_WRITE: return "PROT_WRITE";
	case PROT_READ | PROT_WRITE | PROT_EXEC: return "PROT_READ|PROT_WRITE|PROT_EXEC";
	}
	return "?";
}

/* 0 when a store to every page of [start, start + pages) faults */
static int check_stores_fault(unsigned char *start, size_t pages,
			      const char *what)
{
	siginfo_t si;
	size_t i;

	for (i = 0; i < pages; i++) {
		if (!sfork_try_store((volatile char *)start + i * sfork_page,
				     0x5a, &si)) {
			tst_res(TFAIL, "%s: store to %p succeeded", what,
				(void *)(start + i * sfork_page));
			return 1;
		}
		if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR) {
			tst_res(TFAIL, "%s: store to %p raised %s si_code %d, expected SIGSEGV/SEGV_ACCERR",
				what, (void *)(start + i * sfork_page),
				tst_strsig(si.si_signo), si.si_code);
			return 1;
		}
	}
	return 0;
}

/* every write protection on [start, start + pages) fails with EACCES */
static void no_write_prot(unsigned char *start, size_t pages, const char *what)
{
	unsigned int i;
	int ok = 1;

	for (i = 0; i < ARRAY_SIZE(write_prots); i++) {
		TST_EXP_FAIL(mprotect(start, pages * sfork_page, write_prots[i]),
			     EACCES, "mprotect(%s, %zu pages, %s)", what, pages,
			     prot_name(write_prots[i]));
		ok &= TST_PASS;
	}

	if (!check_stores_fault(start, pages, what) && ok)
		tst_res(TPASS, "%s: stores still fault after the mprotect() attempts",
			what);
}

static void check_maps_perms(unsigned char *start, size_t pages,
			     const char *what)
{
	char perms[5];
	size_t i;

	for (i = 0; i < pages; i++) {
		if (sfork_maps_perms(start + i * sfork_page, perms)) {
			tst_res(TFAIL, "%s: page %p not in /proc/self/maps",
				what, (void *)(start + i * sfork_page));
			return;
		}
		if (perms[1] == 'w') {
			tst_res(TFAIL, "%s: /proc/self/maps shows %s for %p",
				what, perms, (void *)(start + i * sfork_page));
			return;
		}
	}
	tst_res(TPASS, "%s: /proc/self/maps shows no write permission", what);
}

static void expect_pattern(const char *who, const unsigned char *p,
			   size_t first, size_t last)
{
	if (!sfork_check_fill(p + first, first, last - first, SEED, who))
		tst_res(TPASS, "%s: bytes %zu..%zu are as the writer wrote them",
			who, first, last - 1);
}

static void reader(unsigned char *p)
{
	size_t pages = sfork_region_size / sfork_page, mid = pages / 2;
	unsigned char *last = p + (pages - 1) * sfork_page;
	char v;

	TST_CHECKPOINT_WAIT(CP_READER);

	/* the whole region and parts of it */
	no_write_prot(p, pages, "whole region");
	no_write_prot(p, 1, "first page");
	no_write_prot(last, 1, "last page");
	no_write_prot(p + mid * sfork_page, 1, "middle page");
	no_write_prot(p + sfork_page, pages - 2, "inner pages");

	/* split the VMA by protecting a middle page, then restore it */
	if (mprotect(p + mid * sfork_page, sfork_page, PROT_NONE)) {
		tst_res(TINFO | TERRNO, "mprotect(middle page, PROT_NONE) refused, no split");
	} else {
		siginfo_t si;

		if (sfork_try_load((volatile char *)p + mid * sfork_page, &v, &si))
			tst_res(TPASS, "PROT_NONE middle page: a load faults");
		else
			tst_res(TFAIL, "PROT_NONE middle page: a load succeeded");
		no_write_prot(p + mid * sfork_page, 1, "PROT_NONE middle page");
		no_write_prot(p, mid, "pages before the PROT_NONE page");

		TST_EXP_PASS(mprotect(p + mid * sfork_page, sfork_page, PROT_READ),
			     "mprotect(middle page, PROT_READ) after PROT_NONE");
		no_write_prot(p + mid * sfork_page, 1, "middle page after PROT_NONE/PROT_READ");
		no_write_prot(p, pages, "whole region after the split");
	}
	check_maps_perms(p, pages, "split region");
	expect_pattern("reader after the split", p, 0, sfork_region_size);

	/* partial munmap: the last page, then the first */
	SAFE_MUNMAP(last, sfork_page);
	no_write_prot(p, pages - 1, "region without its last page");
	no_write_prot(p + (pages - 2) * sfork_page, 1, "new last page");

	SAFE_MUNMAP(p, sfork_page);
	no_write_prot(p + sfork_page, pages - 2, "inner pages after partial munmaps");
	no_write_prot(p + sfork_page, 1, "new first page");
	check_maps_perms(p + sfork_page, pages - 2, "partly unmapped region");
	expect_pattern("reader after the partial munmaps", p, sfork_page,
		       sfork_region_size - sfork_page);

	TST_CHECKPOINT_WAKE(CP_WRITER);
	SAFE_MUNMAP(p + sfork_page, sfork_region_size - 2 * sfork_page);
}

static void writer(unsigned char *p)
{
	sfork_fill(p, 0, sfork_region_size, SEED);

	TST_CHECKPOINT_WAKE(CP_READER);
	/* the reader's whole sequence of checks runs meanwhile: not a handshake */
	TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);

	expect_pattern("writer at the end", p, 0, sfork_region_size);
}

/* The reader has unmapped the first and last page and unmaps the rest. */
static void run(void)
{
	sfork_run_sides_each_dir(reader, writer, 1);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_READONLY);
	sfork_region_at_least(4, "to split it");
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
	.timeout = 60,
};
