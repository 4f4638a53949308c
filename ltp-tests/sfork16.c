// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork16 - the libsfork message ring (sfork_channel.h) on a BIDIRECTIONAL
 * region: messages arrive whole, intact and in order in both directions,
 * both sides block and are woken, and a dead peer never hangs the other.
 *
 * Adapts LTP's mem/shmt/shmt04 (parent and child talk through shared
 * memory) and futex_wait/futex_wake tests (a FUTEX_WAKE of one process ends
 * the FUTEX_WAIT of another on a shared mapping) to sfork plus the ring.
 * The region is small (default 2 pages: each ring holds 3936 bytes) so the
 * rings fill and both sides really sleep.  Checked, for -a and -s (-d must
 * be bi, the only direction where both sides can store):
 *
 *  0. -n messages (default 1000000) each way at once: each process has a
 *     sending thread and a receiving one, all calls blocking (with a
 *     timeout, so a lost wake-up fails instead of hanging).  Sizes vary
 *     from 16 bytes to the ring's maximum (every 97th message is within 8
 *     bytes of sfork_ring_max(), which needs the whole ring: the sender
 *     must wait until it is empty, and payloads wrap at the ring's end).
 *     Each payload carries its sequence number, its length and a checksum
 *     of its bytes, and the receiver checks all three.  Pauses of 20 ms
 *     (receiver 3 times, sender 4 times) force each side to block at
 *     least once; a thread's voluntary context switches beyond its own
 *     pauses are the times it slept in the ring, and each must be > 0.
 *  1. non-blocking calls and errors: recv on an empty ring and send on a
 *     full one (after exactly 1 + (cap - 8) / 112 messages of 0 and then
 *     100 bytes) fail with EAGAIN; blocking ones with a 200 ms timeout
 *     fail with ETIMEDOUT after at least 200 ms; a message above the
 *     maximum is EMSGSIZE; a too small receive buffer is EMSGSIZE and
 *     leaves the message in the ring; a message of exactly the maximum
 *     fills a ring alone; a 0-byte message arrives as one; after the peer
 *     exits, recv first delivers what it sent, then fails with EPIPE.
 *  2. peer death: one side is blocked in recv (empty ring) or send (full
 *     ring) with a 30 s timeout, and the other side (the child, then the
 *     parent) is killed with SIGKILL; the blocked call must fail with
 *     EPIPE within 3 s of the kill (the library checks the peer every
 *     100 ms), not before it.
 *
 * The default is the million messages each way: about 40 s of
 * the stream in a 2-vCPU TCG guest (10 times faster natively); the
 * runtest variants with other -a/-s use -n 100000.
 */

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "tst_test.h"
#include "tst_safe_pthread.h"
#include "sfork_test.h"
#include <sfork_channel.h>

#define DEFAULT_N	1000000
#define CALL_TIMEOUT	60	/* s, any single call of case 0 */
#define PAUSE_US	20000
#define DEATH_BOUND_NS	3000000000LL

struct msg_hdr {
	uint64_t seq;
	uint32_t len;
	uint32_t csum;
};

static char *str_n;
static int n_msgs = DEFAULT_N;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const struct timespec call_timeout = { .tv_sec = CALL_TIMEOUT };

/* ---- payloads ---- */

static uint32_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL, w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return (uint32_t)(h ^ (h >> 32));
}

/* message i's length: 16..316 bytes, every 97th near the maximum */
static size_t msg_len(uint64_t i, size_t max)
{
	if (i % 97 == 96)
		return max - i % 8;
	return sizeof(struct msg_hdr) + (size_t)((i * 2654435761ULL >> 7) % 301);
}

static void msg_fill(unsigned char *buf, uint64_t seq, size_t len, int side)
{
	struct msg_hdr *h = (struct msg_hdr *)buf;
	uint64_t w, base = (seq + 1) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)side << 60;
	size_t off, j;

	for (off = sizeof(*h), j = 0; off < len; off += 8, j++) {
		w = base ^ (j * 0xbf58476d1ce4e5b9ULL);
		memcpy(buf + off, &w, len - off < 8 ? len - off : 8);
	}
	h->seq = seq;
	h->len = (uint32_t)len;
	h->csum = checksum(buf + sizeof(*h), len - sizeof(*h));
}

/* NULL when good, else what is wrong */
static const char *msg_check(const unsigned char *buf, size_t got, uint64_t seq,
			     size_t len)
{
	const struct msg_hdr *h = (const struct msg_hdr *)buf;

	if (got != len)
		return "wrong length";
	if (h->seq != seq)
		return "out of order (sequence number)";
	if (h->len != len)
		return "length field differs";
	if (h->csum != checksum(buf + sizeof(*h), len - sizeof(*h)))
		return "checksum mismatch";
	return NULL;
}

static long vol_switches(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_nvcsw;
}

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

/* ---- case 0: the stream ---- */

struct stream_stats {
	void *region;
	int side;
	uint64_t done;
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
	long v0 = vol_switches();
	int i;

	for (i = 0; i < n_msgs; i++) {
		if (is_pause(i, n_msgs, 8, 1)) {
			usleep(PAUSE_US);
			st->pauses++;
		}
		len = msg_len(i, max);
		msg_fill(buf, i, len, st->side);
		if (sfork_ring_send(st->region, st->side, buf, len, 0,
				    &call_timeout) != (ssize_t)len) {
			st->err = errno;
			break;
		}
		st->done++;
	}
	st->sleeps = vol_switches() - v0 - st->pauses;
	st->ns = now_ns() - t0;
	free(buf);
	return NULL;
}

static void receiver(struct stream_stats *st)
{
	size_t max = sfork_ring_max(st->region);
	unsigned char *buf = SAFE_MALLOC(max);
	long long t0 = now_ns();
	long v0 = vol_switches();
	ssize_t got;
	int i;

	for (i = 0; i < n_msgs; i++) {
		if (is_pause(i, n_msgs, 4, 0)) {
			usleep(PAUSE_US);
			st->pauses++;
		}
		got = sfork_ring_recv(st->region, st->side, buf, max, 0,
				      &call_timeout);
		if (got < 0) {
			st->err = errno;
			break;
		}
		st->bad = msg_check(buf, got, i, msg_len(i, max));
		if (st->bad) {
			st->bad_at = i;
			break;
		}
		st->done++;
	}
	st->sleeps = vol_switches() - v0 - st->pauses;
	st->ns = now_ns() - t0;
	free(buf);
}

/* reports one process's two directions; returns 0 when all passed */
static int stream_report(const char *who, struct stream_stats *tx,
			 struct stream_stats *rx)
{
	int ok = 1;

	if (tx->err) {
		tst_res(TFAIL, "%s: send %llu failed: %s", who,
			(unsigned long long)tx->done, tst_strerrno(tx->err));
		ok = 0;
	}
	if (rx->err) {
		tst_res(TFAIL, "%s: recv %llu failed: %s", who,
			(unsigned long long)rx->done, tst_strerrno(rx->err));
		ok = 0;
	}
	if (rx->bad) {
		tst_res(TFAIL, "%s: message %llu: %s", who,
			(unsigned long long)rx->bad_at, rx->bad);
		ok = 0;
	}
	if (!ok)
		return 1;

	tst_res(TPASS, "%s: sent %llu and received %llu messages intact and in order (%.2f s / %.2f s)",
		who, (unsigned long long)tx->done, (unsigned long long)rx->done,
		tx->ns / 1e9, rx->ns / 1e9);
	if (tx->sleeps > 0 && rx->sleeps > 0)
		tst_res(TPASS, "%s: sender slept %ld times (ring full), receiver %ld times (ring empty), all woken",
			who, tx->sleeps, rx->sleeps);
	else
		tst_res(TFAIL, "%s: sender slept %ld times, receiver %ld times: a side never blocked",
			who, tx->sleeps, rx->sleeps);
	return 0;
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

static void case_stream(unsigned int flags)
{
	struct timespec ten = { .tv_sec = 10 };
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (sfork_ring_attach(addr, SFORK_SIDE_CHILD, &ten))
			tst_brk(TBROK | TERRNO, "sfork_ring_attach()");
		stream_side(addr, SFORK_SIDE_CHILD, "child");
		exit(0);
	}
	TST_EXP_PASS_SILENT(sfork_ring_init(addr, sfork_region_size,
					    SFORK_SIDE_PARENT, pid));
	if (!TST_PASS) {
		SAFE_KILL(pid, SIGKILL);
	} else {
		tst_res(TINFO, "%d messages each way, ring capacity %zu, largest message %zu",
			n_msgs, sfork_ring_max(addr) + 8, sfork_ring_max(addr));
		stream_side(addr, SFORK_SIDE_PARENT, "parent");
	}
	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "child %s", tst_strstatus(status));
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- case 1: non-blocking calls and errors ---- */

#define CP_FILLED	0
#define CP_CHILD_SENT	1
#define SMALL		100

static const struct timespec t200ms = { .tv_nsec = 200000000 };

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

static void nonblock_child(void *addr)
{
	struct timespec ten = { .tv_sec = 10 };
	unsigned char buf[SMALL], *big;
	size_t max;
	int i, k;

	if (sfork_ring_attach(addr, SFORK_SIDE_CHILD, &ten))
		tst_brk(TBROK | TERRNO, "sfork_ring_attach()");
	max = sfork_ring_max(addr);
	TST_CHECKPOINT_WAIT(CP_FILLED);

	TST_EXP_VAL(sfork_ring_recv(addr, SFORK_SIDE_CHILD, NULL, 0,
				    SFORK_NONBLOCK, NULL), 0,
		    "child: the 0-byte message arrives as 0 bytes");
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL - 1,
				      SFORK_NONBLOCK, NULL), EMSGSIZE,
		      "child: recv of a %d-byte message into %d bytes", SMALL, SMALL - 1);
	for (k = 0;; k++) {
		ssize_t got = sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL,
					      SFORK_NONBLOCK, NULL);
		if (got < 0) {
			if (errno != EAGAIN)
				tst_res(TFAIL | TERRNO, "child: recv %d", k);
			break;
		}
		for (i = 0; i < SMALL; i++) {
			if (got != SMALL || buf[i] != (unsigned char)(k + i)) {
				tst_res(TFAIL, "child: message %d wrong (%zd bytes)", k, got);
				exit(0);
			}
		}
	}
	tst_res(TINFO, "child: received %d messages of %d bytes, then EAGAIN (the first one after EMSGSIZE)",
		k, SMALL);
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_CHILD, buf, SMALL,
				      SFORK_NONBLOCK, NULL), EAGAIN,
		      "child: non-blocking recv from the empty ring");
	expect_timeout(addr, SFORK_SIDE_CHILD, 0);

	big = SAFE_MALLOC(max);
	for (i = 0; i < (int)max; i++)
		big[i] = (unsigned char)(i * 7);
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

static void case_nonblock(unsigned int flags)
{
	unsigned char buf[SMALL], *big;
	size_t max, expected;
	void *addr = NULL;
	long long t0;
	int i, k, status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid)
		nonblock_child(addr);

	if (sfork_ring_init(addr, sfork_region_size, SFORK_SIDE_PARENT, pid))
		tst_brk(TBROK | TERRNO, "sfork_ring_init()");
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
	for (k = 0;; k++) {
		for (i = 0; i < SMALL; i++)
			buf[i] = (unsigned char)(k + i);
		if (sfork_ring_send(addr, SFORK_SIDE_PARENT, buf, SMALL,
				    SFORK_NONBLOCK, NULL) < 0) {
			if (errno != EAGAIN)
				tst_res(TFAIL | TERRNO, "parent: send %d", k);
			break;
		}
	}
	/* 8-byte header + payload padded to 8: 8 for the empty one, 112 each */
	expected = max / (8 + ((SMALL + 7) & ~7));
	if ((size_t)k == expected)
		tst_res(TPASS, "parent: non-blocking send gave EAGAIN on the full ring after 1 + %d messages (capacity %zu)",
			k, max + 8);
	else
		tst_res(TFAIL, "parent: the full ring took 1 + %d messages, expected 1 + %zu",
			k, expected);
	expect_timeout(addr, SFORK_SIDE_PARENT, 1);

	TST_CHECKPOINT_WAKE(CP_FILLED);
	TST_CHECKPOINT_WAIT(CP_CHILD_SENT);

	memset(big, 0, max + 1);
	TEST(sfork_ring_recv(addr, SFORK_SIDE_PARENT, big, max + 1, 0, &t200ms));
	for (i = 0; TST_RET == (long)max && i < (int)max; i++) {
		if (big[i] != (unsigned char)(i * 7))
			break;
	}
	if (TST_RET == (long)max && i == (int)max)
		tst_res(TPASS, "parent: the %zu-byte message arrived intact", max);
	else
		tst_res(TFAIL | TTERRNO, "parent: recv of the %zu-byte message returned %ld (byte %d)",
			max, TST_RET, i);
	free(big);

	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "child %s", tst_strstatus(status));

	t0 = now_ns();
	TST_EXP_FAIL2(sfork_ring_recv(addr, SFORK_SIDE_PARENT, buf, SMALL, 0,
				      &call_timeout), EPIPE,
		      "parent: blocking recv after the child exited");
	tst_res(TINFO, "EPIPE after %lld ms", (now_ns() - t0) / 1000000);
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- case 2: peer death ---- */

struct death {
	volatile int victim_ready, survivor_ready, done;
	volatile pid_t child;
	volatile long long t_ret;
	volatile long ret;
	volatile int err;
};

static struct death *dres;

static void death_role(void *addr, int side, int victim, int send)
{
	const struct timespec t30 = { .tv_sec = 30 };
	unsigned char buf[SMALL] = { 0 };
	long ret;

	if (victim) {
		__atomic_store_n(&dres->victim_ready, 1, __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	}
	if (send) {
		while (sfork_ring_send(addr, side, buf, SMALL, SFORK_NONBLOCK, NULL) >= 0)
			;
	}
	__atomic_store_n(&dres->survivor_ready, 1, __ATOMIC_SEQ_CST);
	if (send)
		ret = sfork_ring_send(addr, side, buf, SMALL, 0, &t30);
	else
		ret = sfork_ring_recv(addr, side, buf, SMALL, 0, &t30);
	dres->err = errno;
	dres->ret = ret;
	dres->t_ret = now_ns();
	__atomic_store_n(&dres->done, 1, __ATOMIC_SEQ_CST);
}

static int poll_flag(volatile int *flag, int ms)
{
	while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST) && ms-- > 0)
		usleep(1000);
	return *flag;
}

static void death_case(unsigned int flags, int kill_child, int send)
{
	struct timespec ten = { .tv_sec = 10 };
	const char *victim = kill_child ? "child" : "parent";
	const char *survivor = kill_child ? "parent" : "child";
	const char *op = send ? "send (full ring)" : "recv (empty ring)";
	long long t_kill, dt;
	pid_t helper, child;
	void *addr = NULL;
	int status;

	memset(dres, 0, sizeof(*dres));
	helper = SAFE_FORK();
	if (!helper) {
		child = SAFE_SFORK(sfork_size, flags, &addr);
		if (!child) {
			if (sfork_ring_attach(addr, SFORK_SIDE_CHILD, &ten))
				tst_brk(TBROK | TERRNO, "sfork_ring_attach()");
			death_role(addr, SFORK_SIDE_CHILD, kill_child, send);
			exit(0);
		}
		dres->child = child;
		if (sfork_ring_init(addr, sfork_region_size, SFORK_SIDE_PARENT, child))
			tst_brk(TBROK | TERRNO, "sfork_ring_init()");
		death_role(addr, SFORK_SIDE_PARENT, !kill_child, send);
		SAFE_WAITPID(child, &status, 0);
		exit(0);
	}

	if (!poll_flag(&dres->victim_ready, 30000) ||
	    !poll_flag(&dres->survivor_ready, 30000))
		tst_brk(TBROK, "the sides did not get ready");
	usleep(300000);		/* let the survivor fall asleep */
	if (__atomic_load_n(&dres->done, __ATOMIC_SEQ_CST))
		tst_res(TFAIL, "%s: %s returned before the kill: %ld (%s)", survivor,
			op, dres->ret, tst_strerrno(dres->err));

	t_kill = now_ns();
	SAFE_KILL(kill_child ? dres->child : helper, SIGKILL);
	if (!poll_flag(&dres->done, 40000)) {
		tst_res(TFAIL, "%s: %s still blocked 40 s after the %s was killed",
			survivor, op, victim);
		SAFE_KILL(kill_child ? helper : dres->child, SIGKILL);
	} else {
		dt = dres->t_ret - t_kill;
		if (dres->ret == -1 && dres->err == EPIPE && dt >= 0 &&
		    dt < DEATH_BOUND_NS)
			tst_res(TPASS, "%s: blocked %s failed with EPIPE %lld ms after the %s got SIGKILL",
				survivor, op, dt / 1000000, victim);
		else
			tst_res(TFAIL, "%s: blocked %s returned %ld (%s) %lld ms after the %s got SIGKILL",
				survivor, op, dres->ret, tst_strerrno(dres->err),
				dt / 1000000, victim);
	}
	SAFE_WAITPID(helper, &status, 0);
	if (kill_child ? !WIFEXITED(status) || WEXITSTATUS(status) :
			 !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		tst_res(TFAIL, "parent %s", tst_strstatus(status));
}

static void case_death(unsigned int flags)
{
	death_case(flags, 1, 0);
	death_case(flags, 1, 1);
	death_case(flags, 0, 0);
	death_case(flags, 0, 1);
}

static void run(unsigned int n)
{
	unsigned int flags = SFORK_BIDIRECTIONAL | (sfork_flags & SFORK_ALLOC_MASK);

	switch (n) {
	case 0:
		tst_res(TINFO, "stream of messages both ways (%s)", sfork_flags_desc(flags));
		case_stream(flags);
		break;
	case 1:
		tst_res(TINFO, "non-blocking calls, timeouts and errors");
		case_nonblock(flags);
		break;
	case 2:
		tst_res(TINFO, "SIGKILL of one side while the other is blocked");
		case_death(flags);
		break;
	}
}

static void setup(void)
{
	sfork_test_setup();

	if (tst_parse_int(str_n, &n_msgs, 1, INT_MAX))
		tst_brk(TBROK, "Invalid -n '%s'", str_n);
	if (!(sfork_flags & SFORK_BIDIRECTIONAL))
		tst_brk(TCONF, "the ring needs -d bi (both sides store)");
	if (sfork_region_size < SFORK_RING_HEADER + 2 * 1024)
		tst_brk(TBROK, "-s must leave 1 KiB per ring");
	dres = SAFE_MMAP(NULL, sizeof(*dres), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static struct tst_test test = {
	.setup = setup,
	.test = run,
	.tcnt = 3,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{"n:", &str_n, "Messages each way (default 1000000)"},
		{}
	},
	.timeout = 300,
};
