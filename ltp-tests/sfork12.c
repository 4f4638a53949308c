// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Many regions at once, each independent.
 *
 * Adapts LTP's mmap tests and mem/vma/vma01 (many mappings, each with its
 * own protection, as the maps file shows) to sfork.  One process (a helper
 * forked by the test) makes 64 sfork calls (-n), region i with direction
 * bi/p2c/c2p (i mod 3), allocation lazy/eager/auto (i / 3 mod 3) and
 * (1 + i mod 4) times -s bytes, and keeps all 64 children alive.  Checked:
 *
 *  - each child i has the child's side of its own region i (stores fault
 *    with SEGV_ACCERR and mprotect(RW) fails with EACCES when the child is
 *    read-only; otherwise it stores its pattern), and the parent's side of
 *    every earlier region j < i it inherited (a plain fork): it reads the
 *    parent's data there and, where the parent writes, stores a marker at
 *    byte 256 + i of region j, where the parent is read-only, faults;
 *  - the parent maps each region with its own side's permission (maps
 *    "rw-s" or "r--s", a store faults or not) and regions_live grew by
 *    exactly 64;
 *  - after all children exit the parent finds in each region exactly what
 *    was written into it: the child's pattern where the child writes and
 *    the markers of exactly the later children where the parent writes;
 *  - unmapping every second region lowers regions_live by exactly that
 *    many, the others keep their data and permission;
 *  - after the parent exits, regions_live and pages_live are back to their
 *    values before, within 2 s.
 *
 * A module that keeps per-process instead of per-region state (one armed
 * region, one direction, one set of pages), or counts VMAs instead of
 * regions, fails one of these checks.
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_CHILDREN	0
#define DEFAULT_N	64
#define MAX_N		200
#define MARKERS		256

struct region {
	unsigned char *addr;
	size_t len;
	unsigned int flags;
	pid_t pid;
};

static char *str_n;
static int n_regions = DEFAULT_N;
static struct region *regions;
static struct sfork_counters before;

static const unsigned int dir_of[] = {
	SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD, SFORK_CHILD_TO_PARENT
};
static const unsigned int alloc_of[] = { SFORK_LAZY, SFORK_EAGER, 0 };

static unsigned int parent_seed(int i)
{
	return 2 * i + 1;
}

static unsigned int child_seed(int i)
{
	return 2 * i + 2;
}

/* bytes [0, 64): the parent's pattern, [64, 128): the child's */
static void put_pattern(unsigned char *p, size_t off, unsigned int seed)
{
	sfork_fill(p + off, off, 64, seed);
}

static int check_pattern(const unsigned char *p, size_t off, unsigned int seed,
			 const char *who, const char *what, int i)
{
	char buf[96];

	snprintf(buf, sizeof(buf), "%s: region %d, %s", who, i, what);
	return sfork_check_fill(p + off, off, 64, seed, buf);
}

static int check_read_only(const struct region *r, const char *who, int i)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s: read-only region %d", who, i);
	return sfork_check_read_only(r->addr, r->len, buf);
}

static int check_store(const struct region *r, size_t off, unsigned char val,
		       const char *who, int i)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s: writable region %d", who, i);
	return sfork_check_store(r->addr + off, val, buf);
}

static void child(int i)
{
	struct region *r = &regions[i];
	char who[32];
	int j, bad = 0;

	snprintf(who, sizeof(who), "child %d", i);

	/* its own region: the child's side */
	if (sfork_child_writes(r->flags)) {
		if (!check_store(r, 64, sfork_pattern(64, child_seed(i)), who, i))
			put_pattern(r->addr, 64, child_seed(i));
		else
			bad = 1;
	} else {
		bad |= check_read_only(r, who, i);
	}

	/* earlier regions, inherited by a plain fork: the parent's side */
	for (j = 0; j < i; j++) {
		struct region *q = &regions[j];

		if (sfork_parent_writes(q->flags)) {
			bad |= check_pattern(q->addr, 0, parent_seed(j), who,
					     "inherited, the parent's data", j);
			bad |= check_store(q, MARKERS + i, (unsigned char)(i + 1), who, j);
		} else {
			bad |= check_read_only(q, who, j);
		}
	}

	TST_CHECKPOINT_WAIT2(CP_CHILDREN, 300000);

	if (sfork_parent_writes(r->flags))
		bad |= check_pattern(r->addr, 0, parent_seed(i), who,
				     "own, the parent's data", i);
	exit(bad);
}

/* 0 when the parent's mapping of region i has the parent's side */
static int check_parent_view(int i)
{
	struct region *r = &regions[i];
	int writes = sfork_parent_writes(r->flags);
	char perms[5];

	if (sfork_maps_perms(r->addr, perms)) {
		tst_res(TFAIL, "parent: region %d (%p) not in maps", i, (void *)r->addr);
		return 1;
	}
	if ((perms[1] == 'w') != writes || perms[3] != 's') {
		tst_res(TFAIL, "parent: region %d (%s) mapped %s", i,
			sfork_dir_name(r->flags), perms);
		return 1;
	}
	if (!writes)
		return check_read_only(r, "parent", i);
	return check_store(r, 0, r->addr[0], "parent", i);
}

/* 0 when region i holds both sides' data and the children's markers */
static int check_contents(int i)
{
	struct region *r = &regions[i];
	int k, pw = sfork_parent_writes(r->flags);
	unsigned char want;

	if (pw && check_pattern(r->addr, 0, parent_seed(i), "parent",
				"the parent's data", i))
		return 1;
	if (sfork_child_writes(r->flags) &&
	    check_pattern(r->addr, 64, child_seed(i), "parent", "the child's data", i))
		return 1;
	for (k = 0; k < n_regions; k++) {
		want = pw && k > i ? (unsigned char)(k + 1) : 0;
		if (r->addr[MARKERS + k] != want) {
			tst_res(TFAIL, "region %d (%s): marker of child %d is %u, expected %u",
				i, sfork_dir_name(r->flags), k, r->addr[MARKERS + k], want);
			return 1;
		}
	}
	return 0;
}

static void helper(void)
{
	int i, status, bad = 0, unmapped = 0;
	long long live;
	void *addr;

	for (i = 0; i < n_regions; i++) {
		struct region *r = &regions[i];

		r->flags = dir_of[i % 3] | alloc_of[(i / 3) % 3];
		r->len = sfork_region_size * (1 + i % 4);
		r->pid = SAFE_SFORK(r->len, r->flags, &addr);
		r->addr = addr;
		if (!r->pid)
			child(i);
		if (sfork_parent_writes(r->flags))
			put_pattern(r->addr, 0, parent_seed(i));
	}

	live = sfork_stat("regions_live");
	if (live == before.regions + n_regions)
		tst_res(TPASS, "regions_live %lld: +%d for %d sfork calls", live,
			n_regions, n_regions);
	else
		tst_res(TFAIL, "regions_live %lld, expected %lld", live,
			before.regions + n_regions);

	for (i = 0; i < n_regions; i++)
		bad |= check_parent_view(i);
	if (!bad)
		tst_res(TPASS, "parent: each of %d regions mapped with its own side's permission",
			n_regions);

	TST_CHECKPOINT_WAKE2(CP_CHILDREN, n_regions);

	bad = 0;
	for (i = 0; i < n_regions; i++) {
		SAFE_WAITPID(regions[i].pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			tst_res(TFAIL, "child %d (%s) %s", i,
				sfork_flags_desc(regions[i].flags),
				tst_strstatus(status));
			bad = 1;
		}
	}
	if (!bad)
		tst_res(TPASS, "all %d children: own region with the child's side, %d earlier regions with the parent's",
			n_regions, n_regions - 1);

	bad = 0;
	for (i = 0; i < n_regions; i++)
		bad |= check_contents(i);
	if (!bad)
		tst_res(TPASS, "every region holds exactly its own writers' data");

	for (i = 0; i < n_regions; i += 2) {
		SAFE_MUNMAP(regions[i].addr, regions[i].len);
		unmapped++;
	}
	live = sfork_stat_wait("regions_live", before.regions + n_regions - unmapped,
			       2000);
	if (live == before.regions + n_regions - unmapped)
		tst_res(TPASS, "unmapping %d regions: regions_live %lld", unmapped,
			live);
	else
		tst_res(TFAIL, "unmapping %d regions: regions_live %lld, expected %lld",
			unmapped, live, before.regions + n_regions - unmapped);

	bad = 0;
	for (i = 1; i < n_regions; i += 2)
		bad |= check_contents(i) || check_parent_view(i);
	if (!bad)
		tst_res(TPASS, "the %d regions left keep their data and permission",
			n_regions - unmapped);

	exit(0);
}

static void run(void)
{
	int status;
	pid_t pid;

	sfork_counters_save(&before);

	pid = SAFE_FORK();
	if (!pid)
		helper();
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("helper", status);

	sfork_check_settled(&before, "after exit");
}

static void setup(void)
{
	sfork_test_setup();

	if (tst_parse_int(str_n, &n_regions, 1, MAX_N))
		tst_brk(TBROK, "Invalid -n '%s' (1..%d)", str_n, MAX_N);
	if (sfork_region_size < MARKERS + MAX_N)
		tst_brk(TBROK, "-s must be at least %d bytes", MARKERS + MAX_N);

	regions = SAFE_MALLOC(sizeof(*regions) * n_regions);
	memset(regions, 0, sizeof(*regions) * n_regions);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"n:", &str_n, "Number of regions (default 64)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 300,
};
