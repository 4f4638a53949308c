/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copyright (c) 2026 sfork developers
 *
 * channel_test.h - what the channel tests (ring_*.c, publish.c) share:
 * payloads that carry their sequence number, length and a checksum, the
 * clock, voluntary context switches, and the check that killing one side
 * makes the other side's blocked call fail with EPIPE in time.
 */
#ifndef CHANNEL_TEST_H__
#define CHANNEL_TEST_H__

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include <sfork_channel.h>

#include "tst_test.h"
#include "sfork_test.h"

/* the blocked call must fail within this time of the peer's SIGKILL */
#define DEATH_BOUND_NS	3000000000LL

struct payload_hdr {
	uint64_t seq;
	uint32_t len;
	uint32_t csum;
};

static inline long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint32_t payload_csum(const unsigned char *p, size_t n)
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

/* len bytes: the header, then bytes depending on seq and side */
static inline void payload_fill(unsigned char *buf, uint64_t seq, size_t len,
				int side)
{
	struct payload_hdr *h = (struct payload_hdr *)buf;
	uint64_t w, base = (seq + 1) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)side << 60;
	size_t off, j;

	for (off = sizeof(*h), j = 0; off < len; off += 8, j++) {
		w = base ^ (j * 0xbf58476d1ce4e5b9ULL);
		memcpy(buf + off, &w, len - off < 8 ? len - off : 8);
	}
	h->seq = seq;
	h->len = (uint32_t)len;
	h->csum = payload_csum(buf + sizeof(*h), len - sizeof(*h));
}

/* NULL when got bytes are payload seq of len bytes, else what is wrong */
static inline const char *payload_check(const unsigned char *buf, ssize_t got,
					uint64_t seq, size_t len)
{
	const struct payload_hdr *h = (const struct payload_hdr *)buf;

	if (got < (ssize_t)sizeof(*h) || (size_t)got != len)
		return "wrong length";
	if (h->seq != seq)
		return "sequence number inside differs";
	if (h->len != len)
		return "length field differs";
	if (h->csum != payload_csum(buf + sizeof(*h), len - sizeof(*h)))
		return "checksum mismatch";
	return NULL;
}

/* voluntary context switches of the thread (RUSAGE_THREAD) or process */
static inline long vol_switches(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return ru.ru_nvcsw;
}

/* 1 once *flag is set, 0 after ms milliseconds without */
static inline int poll_flag(volatile int *flag, int ms)
{
	while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST) && ms-- > 0)
		usleep(1000);
	return *flag;
}

/*
 * What a peer-death case shares between its processes (a MAP_SHARED page):
 * the victim and the survivor say they are ready, the survivor's blocked
 * call stores its result and time and sets done.
 */
struct peer_death {
	volatile int victim_ready, survivor_ready, done, reported;
	volatile pid_t child;
	volatile long long t_ret;
	volatile long ret;
	volatile int err;
};

static inline void peer_death_done(struct peer_death *d, long ret)
{
	d->err = errno;
	d->ret = ret;
	d->t_ret = now_ns();
	__atomic_store_n(&d->done, 1, __ATOMIC_SEQ_CST);
}

/* Both sides ready, and 300 ms for the survivor to fall asleep. */
static inline void peer_death_ready(struct peer_death *d)
{
	if (!poll_flag(&d->victim_ready, 30000) ||
	    !poll_flag(&d->survivor_ready, 30000))
		tst_brk(TBROK, "the sides did not get ready");
	usleep(300000);
}

/*
 * After peer_death_ready(): SIGKILL to victim; the survivor's blocked op
 * must fail with EPIPE within DEATH_BOUND_NS, not before the kill.  other
 * is killed when op stays blocked 40 s.
 */
static inline void peer_death_check(struct peer_death *d, pid_t victim,
				    pid_t other, const char *survivor,
				    const char *victim_name, const char *op)
{
	long long t_kill, dt;

	if (__atomic_load_n(&d->done, __ATOMIC_SEQ_CST))
		tst_res(TFAIL, "%s: %s returned before the kill: %ld (%s)",
			survivor, op, d->ret, tst_strerrno(d->err));

	t_kill = now_ns();
	SAFE_KILL(victim, SIGKILL);
	if (!poll_flag(&d->done, 40000)) {
		tst_res(TFAIL, "%s: %s still blocked 40 s after the %s was killed",
			survivor, op, victim_name);
		SAFE_KILL(other, SIGKILL);
		return;
	}
	dt = d->t_ret - t_kill;
	if (d->ret == -1 && d->err == EPIPE && dt >= 0 && dt < DEATH_BOUND_NS)
		tst_res(TPASS, "%s: blocked %s failed with EPIPE %lld ms after the %s got SIGKILL",
			survivor, op, dt / 1000000, victim_name);
	else
		tst_res(TFAIL, "%s: blocked %s returned %ld (%s) %lld ms after the %s got SIGKILL",
			survivor, op, d->ret, tst_strerrno(d->err), dt / 1000000,
			victim_name);
}

/* ---- the message ring ---- */

/* The ring needs -d bi (both sides store) and 1 KiB per direction. */
static inline void ring_test_setup(void)
{
	sfork_test_setup();
	if (!(sfork_flags & SFORK_BIDIRECTIONAL))
		tst_brk(TCONF, "the ring needs -d bi (both sides store)");
	if (sfork_region_size < SFORK_RING_HEADER + 2 * 1024)
		tst_brk(TBROK, "-s must leave 1 KiB per ring");
}

/* bi with the allocation of -a */
static inline unsigned int ring_flags(void)
{
	return SFORK_BIDIRECTIONAL | (sfork_flags & SFORK_ALLOC_MASK);
}

static inline void ring_parent_init(void *addr, pid_t child)
{
	if (sfork_ring_init(addr, sfork_region_size, SFORK_SIDE_PARENT, child))
		tst_brk(TBROK | TERRNO, "sfork_ring_init()");
}

static inline void ring_child_attach(void *addr)
{
	const struct timespec ten = { .tv_sec = 10 };

	if (sfork_ring_attach(addr, SFORK_SIDE_CHILD, &ten))
		tst_brk(TBROK | TERRNO, "sfork_ring_attach()");
}

#endif /* CHANNEL_TEST_H__ */
