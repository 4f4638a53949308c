// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify the libsfork publish channel (sfork_channel.h) on one-way
 * regions: the writing side publishes snapshots, the read-only side reads
 * consistent copies in order and sleeps in sfork_pub_wait() between them,
 * without ever storing to the region.
 *
 * Adapts LTP's mem/shmt/shmt04 (one process writes shared memory, the
 * other reads it) and futex_wait/futex_wake tests (FUTEX_WAKE by one
 * process ends another's FUTEX_WAIT on a shared mapping, here from a
 * read-only mapping) to sfork plus the publish channel.  For -d p2c (the
 * parent writes) and c2p (the child writes; both when -d is not given; bi
 * also works, with the parent writing), -a and -s (default 2 pages: the
 * channel gets 2 slots of 4016 bytes, so the writer reuses a slot while
 * the reader may be copying it).
 *
 * [Algorithm]
 *
 * - the reader's mapping is read-only (maps "r--s", a store faults with
 *   SEGV_ACCERR) and every channel call it makes only reads: a store
 *   would kill it.  Before the first publish sfork_pub_read() fails with
 *   EAGAIN and sfork_pub_wait(0) with ETIMEDOUT; init with a snapshot
 *   that leaves no room for 2 slots is EINVAL, a publish above the
 *   maximum EMSGSIZE, a read into a too small buffer EMSGSIZE.  Then -n
 *   snapshots (default 100000) of 16 bytes up to the maximum, each with
 *   its sequence number, length and a checksum: the reader sees strictly
 *   increasing sequence numbers (it may skip, never go back), each
 *   snapshot consistent (checksum), and sees the last one.  The writer
 *   pauses 10 ms 9 times, so the reader must sleep in sfork_pub_wait()
 *   (its voluntary context switches are > 0).
 * - writer death: the reader has seen the 10th snapshot; sfork_pub_wait
 *   with a 200 ms timeout fails with ETIMEDOUT while the writer is alive;
 *   then the writer gets SIGKILL while the reader sleeps in
 *   sfork_pub_wait() with a 30 s timeout, which must fail with EPIPE
 *   within 3 s of the kill; the last snapshot stays readable and intact.
 */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "tst_test.h"
#include "channel_test.h"

#define DEFAULT_N	100000
#define CP_READER	0
#define PAUSES		10
#define PAUSE_US	10000
#define DEATH_SNAPS	10

static char *str_n;
static int n_snaps = DEFAULT_N;
static size_t max_snap;

static const struct timespec t30s = { .tv_sec = 30 };
static const struct timespec t200ms = { .tv_nsec = 200000000 };

/* snapshot n's length: 16 bytes .. max_snap */
static size_t snap_len(uint64_t n)
{
	return sizeof(struct payload_hdr) +
	       (size_t)((n * 2654435761ULL >> 5) % (max_snap - sizeof(struct payload_hdr) + 1));
}

static void snap_fill(unsigned char *buf, uint64_t n)
{
	payload_fill(buf, n, snap_len(n), 0);
}

/* NULL when snapshot n (got bytes) is consistent, else what is wrong */
static const char *snap_check(const unsigned char *buf, ssize_t got, uint64_t n)
{
	return payload_check(buf, got, n, snap_len(n));
}

static int writer_is_child(unsigned int flags)
{
	return !!(flags & SFORK_CHILD_TO_PARENT);
}

static void check_read_only(void *addr, unsigned int flags, const char *who)
{
	char perms[5];
	siginfo_t si;

	if (flags & SFORK_BIDIRECTIONAL)
		return;
	if (sfork_maps_perms(addr, perms) || strcmp(perms, "r--s"))
		tst_res(TFAIL, "%s: region mapped %s, not r--s", who, perms);
	if (!sfork_try_store((volatile char *)addr + 8, 1, &si))
		tst_res(TFAIL, "%s: a store to the channel header succeeded", who);
	else if (si.si_code != SEGV_ACCERR)
		tst_res(TFAIL, "%s: store faulted with si_code %d", who, si.si_code);
	else
		tst_res(TPASS, "%s: mapping is r--s, a store faults with SEGV_ACCERR",
			who);
}

/* ---- case 0: the stream ---- */

static void stream_writer(void *addr, const char *who)
{
	unsigned char *buf = SAFE_MALLOC(max_snap + 1);
	long long t0;
	int n;

	TST_EXP_FAIL(sfork_pub_init(addr, sfork_region_size,
				    sfork_region_size / 2), EINVAL,
		     "%s: sfork_pub_init() with max_snapshot = half the region", who);
	TST_EXP_PASS(sfork_pub_init(addr, sfork_region_size, max_snap),
		     "%s: sfork_pub_init(max_snapshot %zu)", who, max_snap);
	if (!TST_PASS)
		return;
	memset(buf, 0, max_snap + 1);
	TST_EXP_FAIL(sfork_pub_publish(addr, buf, max_snap + 1), EMSGSIZE,
		     "%s: publish of max_snapshot + 1 bytes", who);

	TST_CHECKPOINT_WAIT(CP_READER);
	t0 = now_ns();
	for (n = 1; n <= n_snaps; n++) {
		if (n % (n_snaps / PAUSES + 1) == 0)
			usleep(PAUSE_US);
		snap_fill(buf, n);
		if (sfork_pub_publish(addr, buf, snap_len(n))) {
			tst_res(TFAIL | TERRNO, "%s: publish %d", who, n);
			break;
		}
	}
	tst_res(TINFO, "%s: published %d snapshots in %.2f s", who, n - 1,
		(now_ns() - t0) / 1e9);
	free(buf);
}

static void stream_reader(void *addr, unsigned int flags, const char *who)
{
	unsigned char *buf = SAFE_MALLOC(max_snap);
	uint64_t seq = 0, last = 0, reads = 0;
	long v0, sleeps;
	const char *bad;
	long long t0;
	ssize_t got;

	check_read_only(addr, flags, who);
	TST_EXP_FAIL2(sfork_pub_read(addr, buf, max_snap, &seq), EAGAIN,
		      "%s: sfork_pub_read() before the first publish", who);
	TST_EXP_FAIL(sfork_pub_wait(addr, 0, &t200ms), ETIMEDOUT,
		     "%s: sfork_pub_wait(0, 200 ms) before the first publish", who);
	TST_CHECKPOINT_WAKE(CP_READER);

	t0 = now_ns();
	v0 = vol_switches(RUSAGE_SELF);
	while (last < (uint64_t)n_snaps) {
		if (sfork_pub_wait(addr, last, &t30s)) {
			tst_res(TFAIL | TERRNO, "%s: sfork_pub_wait(%llu)", who,
				(unsigned long long)last);
			break;
		}
		got = sfork_pub_read(addr, buf, max_snap, &seq);
		if (got < 0) {
			tst_res(TFAIL | TERRNO, "%s: sfork_pub_read() after %llu",
				who, (unsigned long long)last);
			break;
		}
		if (seq <= last) {
			tst_res(TFAIL, "%s: read snapshot %llu after %llu", who,
				(unsigned long long)seq, (unsigned long long)last);
			break;
		}
		bad = snap_check(buf, got, seq);
		if (bad) {
			tst_res(TFAIL, "%s: snapshot %llu (%zd bytes): %s", who,
				(unsigned long long)seq, got, bad);
			break;
		}
		last = seq;
		reads++;
	}
	sleeps = vol_switches(RUSAGE_SELF) - v0;

	if (last == (uint64_t)n_snaps)
		tst_res(TPASS, "%s: read %llu of %d snapshots, each consistent, in strictly increasing order up to the last (%.2f s)",
			who, (unsigned long long)reads, n_snaps, (now_ns() - t0) / 1e9);
	if (sleeps > 0)
		tst_res(TPASS, "%s: slept %ld times in sfork_pub_wait() and was woken",
			who, sleeps);
	else
		tst_res(TFAIL, "%s: never slept in sfork_pub_wait()", who);

	TST_EXP_FAIL2(sfork_pub_read(addr, buf, sizeof(struct payload_hdr) - 1, &seq),
		      EMSGSIZE, "%s: sfork_pub_read() into %zu bytes", who,
		      sizeof(struct payload_hdr) - 1);
	if (seq != (uint64_t)n_snaps)
		tst_res(TFAIL, "%s: EMSGSIZE gave sequence %llu", who,
			(unsigned long long)seq);
	check_read_only(addr, flags, who);
	free(buf);
}

static void case_stream(unsigned int flags)
{
	int child_writes = writer_is_child(flags);
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (child_writes)
			stream_writer(addr, "writing child");
		else
			stream_reader(addr, flags, "reading child");
		exit(0);
	}
	if (child_writes)
		stream_reader(addr, flags, "reading parent");
	else
		stream_writer(addr, "writing parent");

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- case 1: writer death ---- */

static struct peer_death *dres;

static void death_writer(void *addr)
{
	unsigned char *buf = SAFE_MALLOC(max_snap);
	int n;

	if (sfork_pub_init(addr, sfork_region_size, max_snap))
		tst_brk(TBROK | TERRNO, "sfork_pub_init()");
	for (n = 1; n <= DEATH_SNAPS; n++) {
		snap_fill(buf, n);
		if (sfork_pub_publish(addr, buf, snap_len(n)))
			tst_brk(TBROK | TERRNO, "sfork_pub_publish()");
	}
	__atomic_store_n(&dres->victim_ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static void death_reader(void *addr, const char *who)
{
	unsigned char *buf = SAFE_MALLOC(max_snap);
	uint64_t seq = 0;
	const char *bad;
	ssize_t got;

	do {
		if (sfork_pub_wait(addr, seq, &t30s))
			tst_brk(TBROK | TERRNO, "%s: sfork_pub_wait(%llu)", who,
				(unsigned long long)seq);
		got = sfork_pub_read(addr, buf, max_snap, &seq);
		if (got < 0)
			tst_brk(TBROK | TERRNO, "%s: sfork_pub_read()", who);
	} while (seq < DEATH_SNAPS);

	TST_EXP_FAIL(sfork_pub_wait(addr, DEATH_SNAPS, &t200ms), ETIMEDOUT,
		     "%s: sfork_pub_wait(%d, 200 ms) with the writer alive and idle",
		     who, DEATH_SNAPS);

	__atomic_store_n(&dres->survivor_ready, 1, __ATOMIC_SEQ_CST);
	peer_death_done(dres, sfork_pub_wait(addr, DEATH_SNAPS, &t30s));

	got = sfork_pub_read(addr, buf, max_snap, &seq);
	bad = got < 0 ? "read failed" : snap_check(buf, got, seq);
	if (!bad && seq == DEATH_SNAPS)
		tst_res(TPASS, "%s: the last snapshot (%d) stays readable and intact after the writer died",
			who, DEATH_SNAPS);
	else
		tst_res(TFAIL, "%s: after the writer died: snapshot %llu, %s", who,
			(unsigned long long)seq, bad ? bad : "wrong sequence");
	__atomic_store_n(&dres->reported, 1, __ATOMIC_SEQ_CST);
	free(buf);
}

static void case_death(unsigned int flags)
{
	int child_writes = writer_is_child(flags);
	const char *reader = child_writes ? "reading parent" : "reading child";
	const char *writer = child_writes ? "writing child" : "writing parent";
	pid_t helper, child;
	void *addr = NULL;
	int status;

	memset(dres, 0, sizeof(*dres));
	helper = SAFE_FORK();
	if (!helper) {
		child = SAFE_SFORK(sfork_size, flags, &addr);
		if (!child) {
			if (child_writes)
				death_writer(addr);
			death_reader(addr, reader);
			exit(0);
		}
		dres->child = child;
		if (!child_writes)
			death_writer(addr);
		death_reader(addr, reader);
		SAFE_WAITPID(child, &status, 0);
		exit(0);
	}

	peer_death_ready(dres);
	peer_death_check(dres, child_writes ? dres->child : helper,
			 child_writes ? helper : dres->child, reader, writer,
			 "sfork_pub_wait()");
	/* the reader reports after the kill: wait for it */
	SAFE_WAITPID(helper, &status, 0);
	if (!child_writes) {
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			tst_res(TFAIL, "writing parent %s", tst_strstatus(status));
		/* the reading child was reparented: wait for its report */
		if (!poll_flag(&dres->reported, 10000))
			tst_res(TFAIL, "%s did not report", reader);
	} else {
		sfork_check_exit0("reading parent", status);
	}
}

static void run_case(unsigned int n, unsigned int flags)
{
	if (n)
		case_death(flags);
	else
		case_stream(flags);
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, n ? "writer death" : "stream of snapshots",
				run_case);
}

static void setup(void)
{
	size_t slot;

	sfork_test_setup();

	if (tst_parse_int(str_n, &n_snaps, 1, INT_MAX))
		tst_brk(TBROK, "Invalid -n '%s'", str_n);
	if (sfork_region_size < SFORK_PUB_HEADER + 2 * 128)
		tst_brk(TBROK, "-s too small");
	/* the largest snapshot that leaves room for 2 slots */
	slot = ((sfork_region_size - SFORK_PUB_HEADER) / 2) & ~(size_t)63;
	max_snap = slot - 16;

	/* without -d the one-way directions; -d bi also works */
	if (sfork_str_dir)
		sfork_dirs[sfork_dirs_cnt++] = sfork_flags & SFORK_DIRECTION_MASK;
	else
		sfork_dirs_cnt = sfork_readonly_dirs(sfork_dirs);
	dres = SAFE_MMAP(NULL, sizeof(*dres), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{"n:", &str_n, "Snapshots (default 100000)"},
		{}
	},
	.setup = setup,
	.test = run,
	.tcnt = 2,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 300,
};
