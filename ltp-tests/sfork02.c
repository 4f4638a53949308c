// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * A store on the read-only side faults with SEGV_ACCERR.
 *
 * Adapts LTP's mprotect02 and mmap04 (a store into memory mapped without
 * PROT_WRITE raises SIGSEGV) to sfork's read-only side: the child with
 * -d p2c, the parent with -d c2p (both, one after the other, when -d is not
 * given; -d bi has no read-only side and is TCONF).  Checked:
 *
 *  - right after sfork returns, before the writer did anything, a store to
 *    every page of the reader's region raises SIGSEGV with si_code
 *    SEGV_ACCERR and si_addr inside the region, and changes nothing;
 *  - the writer's own stores to every page succeed;
 *  - after the writer touched every page (eager: the pages exist since the
 *    call, so the writer's page-table entries are there before the reader
 *    runs), the reader sees the data and a store to every page still
 *    faults the same way, and the data stays as the writer left it;
 *  - a store with the default SIGSEGV disposition kills the read-only
 *    process by SIGSEGV (p2c: the sfork child itself; c2p: a child forked
 *    by the read-only parent, which inherits the read-only view).
 *
 * Each store runs under a SIGSEGV handler that siglongjmp()s back, so every
 * page is tried.  A module that hands the reader writable page-table
 * entries (for example entries copied at fork from a populated writer)
 * fails the "store faults" checks and the final "data unchanged" check.
 */

#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_WRITER	0
#define CP_READER	1

#define BAD_BYTE	0x5a
#define SEED		7

/*
 * Stores BAD_BYTE at the start (and, for one page in 17, the middle) of
 * every page; every store must fault with SEGV_ACCERR inside the region.
 */
static void stores_must_fault(unsigned char *p, size_t len, const char *when)
{
	size_t npages = len / sfork_page, i, faulted = 0;
	volatile char *where;
	siginfo_t si;

	for (i = 0; i < npages; i++) {
		where = (volatile char *)p + i * sfork_page +
			(i % 17 ? 0 : sfork_page / 2);
		if (!sfork_try_store(where, BAD_BYTE, &si)) {
			tst_res(TFAIL, "%s: store to page %zu (%p) succeeded",
				when, i, (void *)where);
			return;
		}
		if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR) {
			tst_res(TFAIL, "%s: store to page %zu raised %s si_code %d, expected SIGSEGV/SEGV_ACCERR (%d)",
				when, i, tst_strsig(si.si_signo), si.si_code,
				SEGV_ACCERR);
			return;
		}
		if ((unsigned char *)si.si_addr < p ||
		    (unsigned char *)si.si_addr >= p + len) {
			tst_res(TFAIL, "%s: store to %p reported si_addr %p outside the region [%p, %p)",
				when, (void *)where, si.si_addr, (void *)p,
				(void *)(p + len));
			return;
		}
		faulted++;
	}

	tst_res(TPASS, "%s: all %zu stores raised SIGSEGV/SEGV_ACCERR inside the region",
		when, faulted);
}

/* every byte is zero or the writer's pattern */
static void expect_data(const char *who, const unsigned char *p, size_t len,
			int written)
{
	if (!sfork_check_fill(p, 0, len, written ? SEED : 0, who))
		tst_res(TPASS, "%s: all %zu bytes are %s", who, len,
			written ? "as the writer wrote them" : "still zero");
}

static void reader(unsigned char *p, size_t len, int is_child)
{
	int status;
	pid_t pid;

	stores_must_fault(p, len, "reader before the writer ran");
	expect_data("reader after the refused stores", p, len, 0);
	TST_CHECKPOINT_WAKE(CP_WRITER);

	TST_CHECKPOINT_WAIT(CP_READER);
	expect_data("reader after the writer's stores", p, len, 1);
	stores_must_fault(p, len, "reader after the writer touched every page");
	expect_data("reader after the refused stores", p, len, 1);
	TST_CHECKPOINT_WAKE(CP_WRITER);

	if (is_child) {
		/* the read-only process itself dies */
		TST_CHECKPOINT_WAIT(CP_READER);
		*(volatile unsigned char *)(p + len - 1) = BAD_BYTE;
		exit(0);
	}

	/* c2p: a child of the read-only parent has its view, and dies */
	pid = SAFE_FORK();
	if (!pid) {
		*(volatile unsigned char *)(p + len - 1) = BAD_BYTE;
		exit(0);
	}
	SAFE_WAITPID(pid, &status, 0);
	if (!sfork_check_killed("plain store in a child of the read-only parent:",
				status, SIGSEGV))
		tst_res(TPASS, "plain store in a child of the read-only parent: killed by SIGSEGV");
}

static void writer(unsigned char *p, size_t len, int is_child, pid_t reader_pid)
{
	size_t npages = len / sfork_page, i;
	int status;

	TST_CHECKPOINT_WAIT(CP_WRITER);

	/* a store on every page, each one checked, then every byte */
	for (i = 0; i < npages; i++) {
		if (sfork_try_store((volatile char *)p + i * sfork_page,
				    (char)sfork_pattern(i * sfork_page, SEED), NULL)) {
			tst_res(TFAIL, "writer: store to page %zu faulted", i);
			break;
		}
	}
	if (i == npages)
		tst_res(TPASS, "writer: stores to all %zu pages succeeded", npages);
	sfork_fill(p, 0, len, SEED);

	TST_CHECKPOINT_WAKE(CP_READER);
	TST_CHECKPOINT_WAIT(CP_WRITER);
	expect_data("writer after the reader's refused stores", p, len, 1);

	if (is_child)
		exit(0);

	/* p2c: let the child store without a handler */
	TST_CHECKPOINT_WAKE(CP_READER);
	SAFE_WAITPID(reader_pid, &status, 0);
	if (!sfork_check_killed("plain store in the read-only child:", status,
				SIGSEGV))
		tst_res(TPASS, "plain store in the read-only child: killed by SIGSEGV");
}

static void run_dir(unsigned int flags)
{
	int reader_is_child = sfork_reader_is_child(flags);
	void *addr = NULL;
	int status;
	pid_t pid;

	tst_res(TINFO, "direction %s: the %s is read-only", sfork_dir_name(flags),
		reader_is_child ? "child" : "parent");

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (reader_is_child)
			reader(addr, sfork_region_size, 1);
		else
			writer(addr, sfork_region_size, 1, 0);
		exit(0);
	}

	if (reader_is_child) {
		writer(addr, sfork_region_size, 0, pid);
	} else {
		reader(addr, sfork_region_size, 0);
		SAFE_WAITPID(pid, &status, 0);
		sfork_check_exit0("writer child", status);
	}

	SAFE_MUNMAP(addr, sfork_region_size);
}

static void run(void)
{
	sfork_for_each_dir(run_dir);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Read-only side p2c|c2p (default: both)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = sfork_setup_readonly_dirs,
	.test_all = run,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 60,
};
