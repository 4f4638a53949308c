// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify the non-blocking calls, the timeouts and the errors of the libsfork
 * message ring (sfork_channel.h) on a bidirectional region (-a and -s choose
 * it, -d must be bi).
 *
 * [Algorithm]
 *
 * - recv on an empty ring and send on a full one (after exactly
 *   1 + (cap - 8) / 112 messages of 0 and then 100 bytes) fail with EAGAIN
 * - blocking calls with a 200 ms timeout fail with ETIMEDOUT after at least
 *   200 ms
 * - a message above the maximum is EMSGSIZE, an unknown flag EINVAL; a too
 *   small receive buffer is EMSGSIZE and leaves the message in the ring
 * - a message of exactly the maximum fills a ring alone and arrives intact;
 *   a 0-byte message arrives as one
 * - after the peer exits, recv first delivers what it sent, then fails with
 *   EPIPE
 */

#include <stdlib.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "channel_test.h"

#define CP_FILLED	0
#define CP_CHILD_SENT	1
#define SMALL		100

static const struct timespec t200ms = { .tv_nsec = 200000000 };
static const struct timespec t60s = { .tv_sec = 60 };

static void expect_timeout(void *addr, int side, int send)
{
	unsigned char buf[SMALL] = { 0 };
	long long t0 = now_ns(), dt;

	if (send)
		TST_EXP_FAIL2(sfork_ring_send(addr, side, buf, SMALL, 0, &t200ms),
			      ETIMEDOUT, "blocking send to a full ring, 200 ms timeout");
	else
		TST_EXP_FAIL2(sfork_ring_recv(addr, side, buf, SMALL, 0, &t200ms),
			      ETIMEDOUT, "blocking recv from an empty ring, 200 ms timeout");
	dt = now_ns() - t0;
	if (dt < 200000000LL)
		tst_res(TFAIL, "timed out after %lld ms < 200 ms", dt / 1000000);
}

/* message k of SMALL bytes: k + i at byte i */
static void small_fill(unsigned char *buf, int k)
{
	int i;

	for (i = 0; i < SMALL; i++)
		buf[i] = (unsigned char)(k + i);
}

static void child_empties_and_sends_max(void *addr)
{
	unsigned char buf[SMALL], want[SMALL], *big;
	ssize_t got;
	size_t max;
	int k;

	ring_child_attach(addr);
	max = sfork_ring_max(addr);
	TST_CHECKPOINT_WAIT(CP_FILLED);

	TST_EXP_VAL(sfork_ring_recv(addr, SFORK_SIDE_CHILD, NULL, 0,
				    SFORK_NONBLOCK, NULL), 0,
		    "child: the 0-byte message arrives as 0 bytes");
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL - 1,
				      SFORK_NONBLOCK, NULL), EMSGSIZE,
		      "child: recv of a %d-byte message into %d bytes", SMALL, SMALL - 1);
	for (k = 0;; k++) {
		got = sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL,
				      SFORK_NONBLOCK, NULL);
		if (got < 0) {
			if (errno != EAGAIN)
				tst_res(TFAIL | TERRNO, "child: recv %d", k);
			break;
		}
		small_fill(want, k);
		if (got != SMALL || memcmp(buf, want, SMALL)) {
			tst_res(TFAIL, "child: message %d wrong (%zd bytes)", k, got);
			exit(0);
		}
	}
	tst_res(TINFO, "child: received %d messages of %d bytes, then EAGAIN (the first one after EMSGSIZE)",
		k, SMALL);
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL,
				      SFORK_NONBLOCK, NULL), EAGAIN,
		      "child: non-blocking recv from the empty ring");
	expect_timeout(addr, SFORK_SIDE_CHILD, 0);

	big = SAFE_MALLOC(max);
	sfork_fill(big, 0, max, 7);
	TST_EXP_VAL(sfork_ring_send(addr, SFORK_SIDE_CHILD, big, max,
				    SFORK_NONBLOCK, NULL), (ssize_t)max,
		    "child: non-blocking send of a %zu-byte (maximum) message", max);
	TST_EXP_FAIL2(sfork_ring_send(addr, SFORK_SIDE_CHILD, NULL, 0,
				      SFORK_NONBLOCK, NULL), EAGAIN,
		      "child: a 0-byte message after the maximum one");
	free(big);
	TST_CHECKPOINT_WAKE(CP_CHILD_SENT);
	exit(0);
}

/* fills the ring with SMALL-byte messages; how many it took */
static int parent_fills(void *addr)
{
	unsigned char buf[SMALL];
	int k;

	for (k = 0;; k++) {
		small_fill(buf, k);
		if (sfork_ring_send(addr, SFORK_SIDE_PARENT, buf, SMALL,
				    SFORK_NONBLOCK, NULL) < 0) {
			if (errno != EAGAIN)
				tst_res(TFAIL | TERRNO, "parent: send %d", k);
			return k;
		}
	}
}

static void run(void)
{
	unsigned char buf[SMALL], *big;
	size_t max, expected;
	void *addr = NULL;
	long long t0;
	int k, status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_size, ring_flags(), &addr);
	if (!pid)
		child_empties_and_sends_max(addr);

	ring_parent_init(addr, pid);
	max = sfork_ring_max(addr);

	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_PARENT, buf, SMALL,
				      SFORK_NONBLOCK, NULL), EAGAIN,
		      "parent: non-blocking recv from an empty ring");
	big = SAFE_MALLOC(max + 1);
	memset(big, 0, max + 1);
	TST_EXP_FAIL2(sfork_ring_send(addr, SFORK_SIDE_PARENT, big, max + 1,
				      SFORK_NONBLOCK, NULL), EMSGSIZE,
		      "parent: send of %zu bytes (maximum + 1)", max + 1);
	TST_EXP_FAIL2(sfork_ring_send(addr, SFORK_SIDE_PARENT, buf, 1, 0x100, NULL),
		      EINVAL, "parent: send with an unknown flag");

	TST_EXP_VAL_SILENT(sfork_ring_send(addr, SFORK_SIDE_PARENT, NULL, 0,
					   SFORK_NONBLOCK, NULL), 0);
	k = parent_fills(addr);
	tst_res(TINFO, "parent: EAGAIN on the full ring after 1 + %d messages (capacity %zu)",
		k, max + 8);
	/* 8-byte header + payload padded to 8: 8 for the empty one, 112 each */
	expected = max / (8 + ((SMALL + 7) & ~7));
	TST_EXP_EQ_SZ((size_t)k, expected);
	expect_timeout(addr, SFORK_SIDE_PARENT, 1);

	TST_CHECKPOINT_WAKE(CP_FILLED);
	TST_CHECKPOINT_WAIT(CP_CHILD_SENT);

	memset(big, 0, max + 1);
	TST_EXP_VAL(sfork_ring_recv(addr, SFORK_SIDE_PARENT, big, max + 1, 0, &t200ms),
		    (ssize_t)max, "parent: recv of the %zu-byte message", max);
	if (TST_PASS && !sfork_check_fill(big, 0, max, 7, "parent: the maximum message"))
		tst_res(TPASS, "parent: the %zu-byte message arrived intact", max);
	free(big);

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	t0 = now_ns();
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_PARENT, buf, SMALL, 0,
				      &t60s), EPIPE,
		      "parent: blocking recv after the child exited");
	tst_res(TINFO, "EPIPE after %lld ms", (now_ns() - t0) / 1000000);
	SAFE_MUNMAP(addr, sfork_region_size);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction: only bi (the default) has a ring"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = ring_test_setup,
	.test_all = run,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 120,
};
