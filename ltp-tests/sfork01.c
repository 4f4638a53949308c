// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * A new region is zero-filled and shared, not copied.
 *
 * Adapts LTP's mem/shmt/shmt04 (a shared segment attached before fork is
 * seen by both processes) to sfork.  Checked, for the direction, allocation
 * and size given by -d/-a/-s:
 *
 *  - *addr is page aligned and the same virtual address in both processes;
 *  - every byte of the new region reads as zero, in both processes, after
 *    64 MiB of anonymous memory were dirtied and freed just before, and
 *    again for a second region created after the first region was fully
 *    written and released (no earlier memory contents can be read);
 *  - over four rounds the writing side(s) fill every byte with a new
 *    pattern and the other side sees every byte of it (bi: the parent and
 *    the child take turns, p2c: the parent writes, c2p: the child writes);
 *    each side has already read or written every page before later rounds,
 *    so a copy made at the first access (copy-on-write between the sides)
 *    shows up as a stale byte;
 *  - both processes map the same physical pages (PFNs from
 *    /proc/self/pagemap, sampled over the region; needs CAP_SYS_ADMIN).
 *
 * A module that leaks old page contents, maps the region at different
 * addresses, copies pages at fork or at first touch, or leaves a side
 * looking at a private copy fails one of these checks.
 */

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define DIRTY_SIZE	(64UL << 20)
#define ROUNDS		4
#define NPFN		64

/* checkpoints: to the parent, to the child */
#define CP_PARENT	0
#define CP_CHILD	1

/* Shared with the child through a MAP_SHARED page made in setup(). */
struct ctl {
	void *child_addr;
	uint64_t child_pfn[NPFN];
};

static struct ctl *ctl;

static void dirty_and_free(size_t len)
{
	char *p = SAFE_MMAP(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	memset(p, 0xa5, len);
	SAFE_MUNMAP(p, len);
}

static void check_zero(const char *who, const unsigned char *p, size_t len,
		       int region_nr)
{
	char what[64];

	snprintf(what, sizeof(what), "region %d, %s", region_nr, who);
	if (!sfork_check_fill(p, 0, len, 0, what))
		tst_res(TPASS, "%s: all %zu bytes read zero", what, len);
}

static unsigned int round_seed(int region_nr, int round)
{
	return (unsigned int)(region_nr * 16 + round + 1);
}

static void check_round(const char *who, const char *writer,
			const unsigned char *p, size_t len, unsigned int seed,
			int region_nr, int round)
{
	char what[96];

	snprintf(what, sizeof(what), "region %d round %d: %s (%s wrote)",
		 region_nr, round, who, writer);
	if (!sfork_check_fill(p, 0, len, seed, what))
		tst_res(TPASS, "region %d round %d: %s sees all %zu bytes %s wrote",
			region_nr, round, who, len, writer);
}

/* who writes in this round: 1 the parent, 0 the child */
static int parent_writes_round(int round)
{
	if (sfork_flags & SFORK_PARENT_TO_CHILD)
		return 1;
	if (sfork_flags & SFORK_CHILD_TO_PARENT)
		return 0;
	return !(round % 2);
}

/* PFNs of NPFN pages spread over the region; 0 where unknown */
static void sample_pfns(const unsigned char *p, uint64_t *pfn)
{
	size_t npages = sfork_region_size / sfork_page, i, idx;
	uint64_t ent;
	int fd = SAFE_OPEN("/proc/self/pagemap", O_RDONLY);

	for (i = 0; i < NPFN; i++) {
		idx = i * npages / NPFN;
		ent = 0;
		if (pread(fd, &ent, sizeof(ent),
			  (off_t)(((uintptr_t)p / sfork_page + idx) * 8)) != sizeof(ent))
			ent = 0;
		/* bit 63: present; bits 0-54: PFN (zero without CAP_SYS_ADMIN) */
		pfn[i] = (ent >> 63) ? ent & ((1ULL << 55) - 1) : 0;
	}
	SAFE_CLOSE(fd);
}

static void compare_pfns(const unsigned char *p, int region_nr)
{
	uint64_t pfn[NPFN];
	size_t npages = sfork_region_size / sfork_page;
	int i, known = 0;

	sample_pfns(p, pfn);

	for (i = 0; i < NPFN; i++) {
		if (!pfn[i] || !ctl->child_pfn[i])
			continue;
		known++;
		if (pfn[i] != ctl->child_pfn[i]) {
			tst_res(TFAIL, "region %d: page %zu is PFN 0x%llx in the parent, 0x%llx in the child",
				region_nr, (size_t)i * npages / NPFN,
				(unsigned long long)pfn[i],
				(unsigned long long)ctl->child_pfn[i]);
			return;
		}
	}

	if (!known) {
		tst_res(TINFO, "region %d: no PFNs readable from /proc/self/pagemap, physical pages not compared",
			region_nr);
		return;
	}
	tst_res(TPASS, "region %d: parent and child map the same physical pages (%d sampled)",
		region_nr, known);
}

static void child(unsigned char *p, int region_nr)
{
	int round;

	ctl->child_addr = p;
	check_zero("child", p, sfork_region_size, region_nr);
	TST_CHECKPOINT_WAKE(CP_PARENT);

	for (round = 0; round < ROUNDS; round++) {
		TST_CHECKPOINT_WAIT(CP_CHILD);
		if (parent_writes_round(round))
			check_round("child", "the parent", p, sfork_region_size,
				    round_seed(region_nr, round), region_nr, round);
		else
			sfork_fill(p, 0, sfork_region_size, round_seed(region_nr, round));
		if (round == ROUNDS - 1)
			sample_pfns(p, ctl->child_pfn);
		TST_CHECKPOINT_WAKE(CP_PARENT);
	}

	exit(0);
}

static void one_region(int region_nr)
{
	unsigned char *p;
	void *addr = NULL;
	int round, status;
	pid_t pid;

	memset(ctl, 0, sizeof(*ctl));

	pid = SAFE_SFORK(sfork_size, sfork_flags, &addr);
	p = addr;
	if (!pid)
		child(p, region_nr);

	TST_CHECKPOINT_WAIT(CP_PARENT);

	if ((uintptr_t)addr % sfork_page)
		tst_res(TFAIL, "region %d: *addr %p is not page aligned",
			region_nr, addr);
	if (ctl->child_addr == addr)
		tst_res(TPASS, "region %d: same address %p in parent and child",
			region_nr, addr);
	else
		tst_res(TFAIL, "region %d: parent got %p, child got %p",
			region_nr, addr, ctl->child_addr);

	check_zero("parent", p, sfork_region_size, region_nr);

	for (round = 0; round < ROUNDS; round++) {
		if (parent_writes_round(round))
			sfork_fill(p, 0, sfork_region_size, round_seed(region_nr, round));
		TST_CHECKPOINT_WAKE(CP_CHILD);
		TST_CHECKPOINT_WAIT(CP_PARENT);
		if (!parent_writes_round(round))
			check_round("parent", "the child", p, sfork_region_size,
				    round_seed(region_nr, round), region_nr, round);
	}

	compare_pfns(p, region_nr);

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0(region_nr == 1 ? "region 1: child" : "region 2: child",
			  status);

	SAFE_MUNMAP(addr, sfork_region_size);
}

static void run(void)
{
	/* old contents everywhere in free memory */
	dirty_and_free(DIRTY_SIZE > 4 * sfork_region_size ?
		       DIRTY_SIZE : 4 * sfork_region_size);
	one_region(1);

	/* a second region, after the first was filled and released */
	one_region(2);
}

static void setup(void)
{
	sfork_test_setup();
	ctl = sfork_shared_alloc(sizeof(*ctl));
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = sfork_test_cleanup,
	.test_all = run,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 60,
};
