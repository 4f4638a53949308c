// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that the libsfork message ring (sfork_channel.h) on a bidirectional
 * region carries a stream of messages whole, intact and in order both ways
 * at once, and that both sides block in it and are woken.
 *
 * Adapts LTP's mem/shmt/shmt04 (parent and child talk through shared memory)
 * and the futex_wait/futex_wake tests (a FUTEX_WAKE of one process ends the
 * FUTEX_WAIT of another on a shared mapping).  The region is small (default
 * 2 pages: each ring holds 3936 bytes) so the rings fill and both sides
 * really sleep; -a and -s choose the region, -d must be bi.
 *
 * [Algorithm]
 *
 * - each process has a sending thread and a receiving one; messages go
 *   each way for the test's runtime (30 s, times $LTP_RUNTIME_MUL), at
 *   least 50,000 of them (fewer only when -n asks for fewer) and at most
 *   -n (default 1000000); every call blocks with a timeout (a lost wake-up
 *   fails instead of hanging).  A sender that stops sends an end marker
 *   (8 bytes, shorter than any payload) with its count, and its receiver
 *   must have taken exactly that many
 * - sizes vary from 16 bytes to the ring's maximum: every 97th message is
 *   within 8 bytes of sfork_ring_max(), so the sender must wait until the
 *   ring is empty, and payloads wrap at the ring's end
 * - each payload carries its sequence number, length and a checksum of its
 *   bytes; the receiver checks all three
 * - pauses of 20 ms within the first 50,000 messages (receiver 3 times,
 *   sender 4 times) force each side to block; a thread's voluntary context
 *   switches beyond its own pauses are the times it slept in the ring, and
 *   each must be > 0
 *
 * So the host's load changes how many messages pass, never the verdict:
 * a quiet 2-vCPU TCG guest moves about 25,000 messages a second each way
 * (10 times that natively), one on a host loaded 6 times over its cores
 * about 4,500, and then the 50,000 that must pass take 11 s of the
 * watchdog's 6 minutes; the variants with other -a/-s use -n 100000.
 */

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "tst_safe_pthread.h"
#include "channel_test.h"

#define CALL_TIMEOUT	60	/* s, any single call */
#define PAUSE_US	20000
#define MIN_MSGS	50000	/* each way, whatever the runtime */
#define END_MAGIC	0x454e4453U	/* "SDNE": the end marker */

static char *str_n;
static int n_msgs = 1000000;	/* at most, each way */
static int min_msgs;		/* at least: MIN_MSGS, or -n when fewer */

/* What a sender sends after its last message: shorter than any payload. */
struct stream_end {
	uint32_t magic;
	uint32_t count;
};

static const struct timespec call_timeout = { .tv_sec = CALL_TIMEOUT };

/* message i's length: 16..316 bytes, every 97th near the maximum */
static size_t msg_len(uint64_t i, size_t max)
{
	if (i % 97 == 96)
		return max - i % 8;
	return sizeof(struct payload_hdr) + (size_t)((i * 2654435761ULL >> 7) % 301);
}

/* 1 when message i of n is one of the parts - 1 pause points */
static int is_pause(int i, int n, int parts, int odd_only)
{
	int k;

	for (k = 1; k < parts; k++) {
		if (odd_only && !(k & 1))
			continue;
		if (i == (int)((long long)n * k / parts))
			return 1;
	}
	return 0;
}

struct stream_stats {
	void *region;
	int side;
	uint64_t done;
	int timed_out;		/* the sender stopped at the runtime's end */
	int ended;		/* the receiver got the end marker */
	long sleeps;		/* voluntary switches minus own pauses */
	long pauses;
	long long ns;
	int err;		/* errno of a failed call */
	const char *bad;	/* a content error */
	uint64_t bad_at;
};

static void *sender(void *arg)
{
	struct stream_stats *st = arg;
	size_t max = sfork_ring_max(st->region), len;
	unsigned char *buf = SAFE_MALLOC(max);
	long long t0 = now_ns();
	long v0 = vol_switches(RUSAGE_THREAD);
	int i;

	for (i = 0; i < n_msgs; i++) {
		if (i >= min_msgs && !(i % 1024) && !tst_remaining_runtime()) {
			st->timed_out = 1;
			break;
		}
		if (is_pause(i, min_msgs, 8, 1)) {
			usleep(PAUSE_US);
			st->pauses++;
		}
		len = msg_len(i, max);
		payload_fill(buf, i, len, st->side);
		if (sfork_ring_send(st->region, st->side, buf, len, 0,
				    &call_timeout) != (ssize_t)len) {
			st->err = errno;
			break;
		}
		st->done++;
	}
	if (!st->err) {
		struct stream_end end = { END_MAGIC, (uint32_t)st->done };

		if (sfork_ring_send(st->region, st->side, &end, sizeof(end), 0,
				    &call_timeout) != (ssize_t)sizeof(end))
			st->err = errno;
	}
	st->sleeps = vol_switches(RUSAGE_THREAD) - v0 - st->pauses;
	st->ns = now_ns() - t0;
	free(buf);
	return NULL;
}

static void receiver(struct stream_stats *st)
{
	size_t max = sfork_ring_max(st->region);
	unsigned char *buf = SAFE_MALLOC(max);
	long long t0 = now_ns();
	long v0 = vol_switches(RUSAGE_THREAD);
	ssize_t got;
	int i;

	for (i = 0; i <= n_msgs; i++) {
		if (is_pause(i, min_msgs, 4, 0)) {
			usleep(PAUSE_US);
			st->pauses++;
		}
		got = sfork_ring_recv(st->region, st->side, buf, max, 0,
				      &call_timeout);
		if (got < 0) {
			st->err = errno;
			break;
		}
		if (got == (ssize_t)sizeof(struct stream_end)) {
			const struct stream_end *end = (const void *)buf;

			if (end->magic != END_MAGIC)
				st->bad = "an 8-byte message that is no end marker";
			else if (end->count != (uint32_t)i)
				st->bad = "the end marker counts other messages";
			if (st->bad)
				st->bad_at = i;
			st->ended = !st->bad;
			break;
		}
		st->bad = i < n_msgs ? payload_check(buf, got, i, msg_len(i, max)) :
			  "more messages than -n, and no end marker";
		if (st->bad) {
			st->bad_at = i;
			break;
		}
		st->done++;
	}
	st->sleeps = vol_switches(RUSAGE_THREAD) - v0 - st->pauses;
	st->ns = now_ns() - t0;
	free(buf);
}

/* one process's two directions */
static void stream_report(const char *who, struct stream_stats *tx,
			  struct stream_stats *rx)
{
	int failed = 0;

	if (tx->err) {
		tst_res(TFAIL, "%s: send %llu failed: %s", who,
			(unsigned long long)tx->done, tst_strerrno(tx->err));
		failed = 1;
	}
	if (rx->err) {
		tst_res(TFAIL, "%s: recv %llu failed: %s", who,
			(unsigned long long)rx->done, tst_strerrno(rx->err));
		failed = 1;
	}
	if (rx->bad) {
		tst_res(TFAIL, "%s: message %llu: %s", who,
			(unsigned long long)rx->bad_at, rx->bad);
		failed = 1;
	}
	if (!rx->ended) {
		tst_res(TFAIL, "%s: no end marker after %llu messages", who,
			(unsigned long long)rx->done);
		failed = 1;
	}
	if (rx->done < (uint64_t)min_msgs) {
		tst_res(TFAIL, "%s: received %llu messages, fewer than the %d that must pass",
			who, (unsigned long long)rx->done, min_msgs);
		failed = 1;
	}
	if (failed)
		return;

	tst_res(TPASS, "%s: sent %llu and received %llu messages intact and in order (%.2f s / %.2f s%s)",
		who, (unsigned long long)tx->done, (unsigned long long)rx->done,
		tx->ns / 1e9, rx->ns / 1e9,
		tx->timed_out ? ", sending ended with the runtime" : "");
	if (tx->sleeps > 0 && rx->sleeps > 0)
		tst_res(TPASS, "%s: sender slept %ld times (ring full), receiver %ld times (ring empty), all woken",
			who, tx->sleeps, rx->sleeps);
	else
		tst_res(TFAIL, "%s: sender slept %ld times, receiver %ld times: a side never blocked",
			who, tx->sleeps, rx->sleeps);
}

static void stream_side(void *addr, int side, const char *who)
{
	struct stream_stats tx = { .region = addr, .side = side };
	struct stream_stats rx = { .region = addr, .side = side };
	pthread_t th;

	SAFE_PTHREAD_CREATE(&th, NULL, sender, &tx);
	receiver(&rx);
	SAFE_PTHREAD_JOIN(th, NULL);
	stream_report(who, &tx, &rx);
}

static void run(void)
{
	unsigned int flags = ring_flags();
	void *addr = NULL;
	int status;
	pid_t pid;

	tst_res(TINFO, "stream of messages both ways (%s)", sfork_flags_desc(flags));
	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		ring_child_attach(addr);
		stream_side(addr, SFORK_SIDE_CHILD, "child");
		exit(0);
	}
	TST_EXP_PASS_SILENT(sfork_ring_init(addr, sfork_region_size,
					    SFORK_SIDE_PARENT, pid));
	if (!TST_PASS) {
		SAFE_KILL(pid, SIGKILL);
	} else {
		tst_res(TINFO, "%d to %d messages each way for %u s, ring capacity %zu, largest message %zu",
			min_msgs, n_msgs, tst_remaining_runtime(),
			sfork_ring_max(addr) + 8, sfork_ring_max(addr));
		stream_side(addr, SFORK_SIDE_PARENT, "parent");
	}
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
}

static void setup(void)
{
	ring_test_setup();
	if (tst_parse_int(str_n, &n_msgs, 1, INT_MAX))
		tst_brk(TBROK, "Invalid -n '%s'", str_n);
	min_msgs = MIN(MIN_MSGS, n_msgs);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction: only bi (the default) has a ring"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{"n:", &str_n, "At most this many messages each way (default 1000000)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.timeout = 300,
	.runtime = 30,
};
