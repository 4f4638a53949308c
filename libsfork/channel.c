// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libsfork channels: a publish channel (seqlock with several slots) for
 * one-way regions and a pair of SPSC message rings for bidirectional ones.
 * See include/sfork_channel.h for the interface and the rules; the notes
 * here are about the implementation.
 *
 * Everything the two processes share is in the region; nothing is kept in
 * process memory, so any thread or a forked copy of a side can use a
 * channel.  Shared words are C11 atomics.  Futex words are 32-bit, aligned,
 * and waited on and woken without FUTEX_PRIVATE_FLAG.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sfork_channel.h"

#define NSEC_PER_SEC	1000000000LL
#define POLL_NS		((long long)SFORK_CHAN_POLL_MS * 1000000LL)

/* ---- futexes, deadlines, peers ---- */

static long futex_wait(_Atomic uint32_t *word, uint32_t val,
		       const struct timespec *rel)
{
	return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, rel,
		       NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* A call's time limit: end_ns < 0 means none. */
struct deadline {
	const struct timespec *timeout;
	long long end_ns;
	int started;
};

static int deadline_valid(const struct timespec *timeout)
{
	return !timeout || (timeout->tv_sec >= 0 && timeout->tv_nsec >= 0 &&
			    timeout->tv_nsec < NSEC_PER_SEC);
}

/* Starts the clock at the first wait, not at the call: the fast path reads no clock. */
static void deadline_start(struct deadline *dl)
{
	long long t;

	if (dl->started)
		return;
	dl->started = 1;
	dl->end_ns = -1;
	if (!dl->timeout)
		return;
	if (dl->timeout->tv_sec >= LLONG_MAX / NSEC_PER_SEC / 2)
		return;		/* as good as forever */
	t = dl->timeout->tv_sec * NSEC_PER_SEC + dl->timeout->tv_nsec;
	dl->end_ns = now_ns() + t;
}

enum wait_result { WOKEN, SLICE_EXPIRED, DEADLINE_PASSED };

/*
 * Sleeps on @word while it holds @val, for at most one poll slice and never
 * past the deadline.  WOKEN also covers "the word had changed" (EAGAIN) and
 * signals: the caller re-checks its condition in every case.
 */
static enum wait_result wait_slice(_Atomic uint32_t *word, uint32_t val,
				   struct deadline *dl)
{
	long long slice = POLL_NS;
	struct timespec rel;
	int saved = errno;
	long ret;

	deadline_start(dl);
	if (dl->end_ns >= 0) {
		long long left = dl->end_ns - now_ns();

		if (left <= 0)
			return DEADLINE_PASSED;
		if (left < slice)
			slice = left;
	}
	rel.tv_sec = slice / NSEC_PER_SEC;
	rel.tv_nsec = slice % NSEC_PER_SEC;
	ret = futex_wait(word, val, &rel);
	if (ret && errno == ETIMEDOUT) {
		errno = saved;
		return SLICE_EXPIRED;
	}
	errno = saved;
	return WOKEN;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * Polls @word for up to @ns while it holds @val; 1 when it changed.  The
 * clock is read every 64 polls only: a poll is a load and a pause, the
 * clock a vDSO call.  A waiter calls this once per call, before its first
 * sleep; see "Waiting" in the header for the window.
 */
static int spin_while(_Atomic uint32_t *word, uint32_t val, uint32_t ns)
{
	long long end;
	unsigned int i;

	if (!ns)
		return 0;
	end = now_ns() + ns;
	for (i = 1;; i++) {
		if (atomic_load_explicit(word, memory_order_acquire) != val)
			return 1;
		cpu_relax();
		if (!(i & 63) && now_ns() >= end)
			return 0;
	}
}

/* The window, never longer than the call's own timeout ({0, 0}: no spin). */
static uint32_t spin_budget(const struct timespec *timeout, uint32_t ns)
{
	long long t;

	if (!timeout || timeout->tv_sec >= 1)
		return ns;
	t = timeout->tv_nsec;
	return t < ns ? (uint32_t)t : ns;
}

static uint32_t clamp_spin(unsigned long ns)
{
	return ns > SFORK_CHAN_SPIN_MAX_NS ? SFORK_CHAN_SPIN_MAX_NS : (uint32_t)ns;
}

/* /proc/PID/stat: 1 gone (or zombie), 0 alive, -1 cannot tell */
static int proc_says_gone(pid_t pid)
{
	char path[32], buf[512], *p;
	int fd, field;
	long threads = 0;
	ssize_t n;
	char state;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !access("/proc/self/stat", R_OK))
			return 1;
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? 1 : -1;		/* reaped while reading */
	buf[n] = '\0';

	/* "pid (comm) S ppid ...": the comm may hold spaces and parens */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -1;
	p += 2;
	state = *p;
	/* field 20 is num_threads; 3 is the state, where p points now */
	for (field = 3; field < 20 && *p; p++) {
		if (*p == ' ')
			field++;
	}
	if (field == 20)
		threads = strtol(p, NULL, 10);
	/*
	 * A thread group whose leader exited while other threads run shows
	 * 'Z' too, but with more than one thread: that one is alive.
	 */
	return (state == 'Z' || state == 'X') && threads <= 1;
}

/*
 * Is the process @pid gone?  Documented in the header: our parent by
 * getppid(), our child by a non-reaping waitid(), anyone else by /proc
 * (zombies count as gone) or kill(pid, 0).  Unknown (0) counts as alive.
 */
static int peer_gone(pid_t pid)
{
	siginfo_t si;
	int ret;

	if (pid <= 0 || pid == getpid() || pid == getppid())
		return 0;

	memset(&si, 0, sizeof(si));
	if (!waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT))
		return si.si_pid == pid;
	if (errno != ECHILD)
		return 0;

	ret = proc_says_gone(pid);
	if (ret >= 0)
		return ret;
	return kill(pid, 0) && errno == ESRCH;
}

/* ======================================================================
 * Publish channel
 *
 * Header, then nslots slots.  Snapshot n (1, 2, ...) goes to slot
 * n % nslots.  Each slot has a sequence word sc: 2n+1 while snapshot n is
 * being written into it, 2n+2 once it is complete.  hdr.seq is the newest
 * complete snapshot.  Because the writer only writes into slots other than
 * the newest one's (nslots >= 2), the newest snapshot is always readable,
 * also after the writer died in the middle of a publish.
 *
 * Writer: sc = 2n+1; release fence; len, data; sc = 2n+2 (release);
 *         seq = n (release); futex = (u32)n (release); FUTEX_WAKE all.
 *         The wake comes after the stores, so a reader still in its spin
 *         window sees the snapshot without waiting for the system call.
 * Reader: n = seq (acquire); s1 = sc (acquire), must be 2n+2; copy;
 *         acquire fence; s2 = sc; the copy is good iff s2 == s1.  If the
 *         copy saw any byte of a later write into the slot, the fences
 *         make s2 show that write's odd value (the classic seqlock).
 * ====================================================================== */

#define PUB_MAGIC	0x53465042u	/* "SFPB" */
#define PUB_VERSION	1u
#define PUB_MAX_SLOTS	8u

struct pub_hdr {
	_Atomic uint32_t magic;		/* PUB_MAGIC once the fields below are set */
	_Atomic uint32_t futex;		/* low 32 bits of seq: the readers' futex */
	_Atomic int32_t writer;		/* the writer's PID */
	uint32_t nslots;
	_Atomic uint64_t seq;		/* newest complete snapshot, 0 = none */
	uint64_t max;			/* max_snapshot */
	uint64_t slot_size;
	uint32_t version;
	_Atomic uint32_t spin_ns;	/* readers' spin window, see the header */
	uint32_t pad[4];
};

struct pub_slot {
	_Atomic uint64_t sc;
	_Atomic uint64_t len;
	unsigned char data[];
};

_Static_assert(sizeof(struct pub_hdr) == SFORK_PUB_HEADER, "pub header size");
_Static_assert(sizeof(struct pub_slot) == 16, "pub slot header size");

static struct pub_slot *pub_slot(const struct pub_hdr *h, uint64_t n)
{
	return (struct pub_slot *)((char *)h + sizeof(*h) +
				   (n % h->nslots) * h->slot_size);
}

int sfork_pub_init(void *region, size_t size, size_t max_snapshot)
{
	struct pub_hdr *h = region;
	uint64_t slot_size, nslots;

	if (!h || ((uintptr_t)h & 63) || !max_snapshot ||
	    max_snapshot > SIZE_MAX / 4 || size < sizeof(*h)) {
		errno = EINVAL;
		return -1;
	}
	slot_size = (sizeof(struct pub_slot) + max_snapshot + 63) & ~(uint64_t)63;
	nslots = (size - sizeof(*h)) / slot_size;
	if (nslots < 2) {
		errno = EINVAL;
		return -1;
	}
	if (nslots > PUB_MAX_SLOTS)
		nslots = PUB_MAX_SLOTS;

	atomic_store_explicit(&h->magic, 0, memory_order_relaxed);
	atomic_store_explicit(&h->writer, (int32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&h->seq, 0, memory_order_relaxed);
	h->nslots = (uint32_t)nslots;
	h->max = max_snapshot;
	h->slot_size = slot_size;
	h->version = PUB_VERSION;
	atomic_store_explicit(&h->spin_ns, SFORK_CHAN_SPIN_NS, memory_order_relaxed);
	for (uint64_t i = 0; i < nslots; i++) {
		struct pub_slot *s = pub_slot(h, i);

		atomic_store_explicit(&s->sc, 0, memory_order_relaxed);
		atomic_store_explicit(&s->len, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&h->magic, PUB_MAGIC, memory_order_release);
	return 0;
}

/* 1 initialised, 0 not yet (all zero), -1 something else */
static int pub_state(const struct pub_hdr *h)
{
	uint32_t magic = atomic_load_explicit(&((struct pub_hdr *)h)->magic,
					      memory_order_acquire);

	if (!magic)
		return 0;
	if (magic != PUB_MAGIC || h->version != PUB_VERSION ||
	    h->nslots < 2 || h->nslots > PUB_MAX_SLOTS ||
	    h->slot_size < sizeof(struct pub_slot) + h->max)
		return -1;
	return 1;
}

size_t sfork_pub_max(const void *region)
{
	const struct pub_hdr *h = region;

	return h && pub_state(h) == 1 ? h->max : 0;
}

int sfork_pub_publish(void *region, const void *data, size_t len)
{
	struct pub_hdr *h = region;
	struct pub_slot *s;
	uint64_t n;

	if (!h || pub_state(h) != 1 || (!data && len)) {
		errno = EINVAL;
		return -1;
	}
	if (len > h->max) {
		errno = EMSGSIZE;
		return -1;
	}

	n = atomic_load_explicit(&h->seq, memory_order_relaxed) + 1;
	s = pub_slot(h, n);
	atomic_store_explicit(&s->sc, 2 * n + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->len, len, memory_order_relaxed);
	if (len)
		memcpy(s->data, data, len);
	atomic_store_explicit(&s->sc, 2 * n + 2, memory_order_release);
	atomic_store_explicit(&h->seq, n, memory_order_release);
	atomic_store_explicit(&h->futex, (uint32_t)n, memory_order_release);
	/* Readers cannot leave a waiter flag in a read-only region. */
	futex_wake(&h->futex, INT_MAX);
	return 0;
}

ssize_t sfork_pub_read(const void *region, void *buf, size_t buflen,
		       uint64_t *seq)
{
	struct pub_hdr *h = (struct pub_hdr *)region;
	unsigned long tries;
	int state, dead = 0;

	if (!h || (!buf && buflen)) {
		errno = EINVAL;
		return -1;
	}
	state = pub_state(h);
	if (state <= 0) {
		errno = state ? EBADMSG : EAGAIN;
		return -1;
	}

	for (tries = 1;; tries++) {
		uint64_t n, s1, s2, len;
		struct pub_slot *s;

		n = atomic_load_explicit(&h->seq, memory_order_acquire);
		if (!n) {
			errno = EAGAIN;
			return -1;
		}
		s = pub_slot(h, n);
		s1 = atomic_load_explicit(&s->sc, memory_order_acquire);
		if (s1 == 2 * n + 2) {
			len = atomic_load_explicit(&s->len, memory_order_relaxed);
			if (len <= h->max && len <= buflen && len)
				memcpy(buf, s->data, len);
			atomic_thread_fence(memory_order_acquire);
			s2 = atomic_load_explicit(&s->sc, memory_order_relaxed);
			if (s2 == s1 && len <= h->max) {
				if (seq)
					*seq = n;
				if (len > buflen) {
					errno = EMSGSIZE;
					return -1;
				}
				return (ssize_t)len;
			}
		}
		/* The writer lapped us: the next try takes a newer snapshot. */
		if (tries % 16 == 0)
			sched_yield();
		/*
		 * With the writer dead nothing moves, so the next try must
		 * succeed; failing again means a corrupted header.
		 */
		if (tries % 1024 == 0 &&
		    peer_gone(atomic_load_explicit(&h->writer, memory_order_relaxed))) {
			if (dead++) {
				errno = EBADMSG;
				return -1;
			}
		}
	}
}

int sfork_pub_wait(const void *region, uint64_t last_seq,
		   const struct timespec *timeout)
{
	struct pub_hdr *h = (struct pub_hdr *)region;
	struct deadline dl = { .timeout = timeout };
	int check_peer = 0, dead = 0, timed_out = 0, spun = 0;

	if (!h || !deadline_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}

	for (;;) {
		/* the futex word first: a publish after this load changes it */
		uint32_t w = atomic_load_explicit(&h->futex, memory_order_acquire);

		if (atomic_load_explicit(&h->seq, memory_order_acquire) > last_seq)
			return 0;
		if (dead) {
			errno = EPIPE;
			return -1;
		}
		if (timed_out) {
			errno = ETIMEDOUT;
			return -1;
		}
		/*
		 * Before init the window is 0 (the region is zero-filled): a
		 * reader that starts first sleeps at once.
		 */
		if (!spun) {
			spun = 1;
			if (spin_while(&h->futex, w,
				       spin_budget(timeout,
						   atomic_load_explicit(&h->spin_ns,
									memory_order_relaxed))))
				continue;
		}
		if (check_peer) {
			check_peer = 0;
			/* 0 before sfork_pub_init(): cannot be checked */
			dead = peer_gone(atomic_load_explicit(&h->writer,
							      memory_order_acquire));
			if (dead)
				continue;	/* it may have published first */
		}
		switch (wait_slice(&h->futex, w, &dl)) {
		case WOKEN:
			break;
		case SLICE_EXPIRED:
			check_peer = 1;
			break;
		case DEADLINE_PASSED:
			timed_out = 1;
			break;
		}
	}
}

/* ======================================================================
 * Message ring
 *
 * Two directions; direction d carries messages from side d to side !d.
 * Positions head (producer) and tail (consumer) run over [0, 2 * cap), so
 * that head == tail means empty and head - tail == cap (mod 2 cap) full,
 * with any cap that is a multiple of 8.  Both are 32-bit and are the futex
 * words: the consumer sleeps on head while the ring is empty, the producer
 * on tail while it lacks room.  A position moves by at least 8 and a
 * sleeper's word cannot come back to its old value before the sleeper
 * acts (that would need the other side to go a whole 2 cap round), so a
 * FUTEX_WAIT on the value seen never misses a change.
 *
 * A message is an 8-byte header (its length as a uint64_t, always below
 * 2^30) and the payload, padded to 8.  Positions and cap are multiples of 8, so a header is never
 * split; the payload wraps byte-wise at the end of the ring.
 *
 * Waiter flags avoid system calls on the fast path (Dekker with seq_cst
 * fences): the sleeper stores its flag, fences, and re-checks the position
 * before FUTEX_WAIT; the other side stores the position, fences, and wakes
 * only if the flag is set.  A producer also stores how many bytes it needs
 * (prod_want, published by the release store of its flag), and the
 * consumer wakes it only once that much is free.
 * ====================================================================== */

#define RING_MAGIC	0x53465247u	/* "SFRG" */
#define RING_VERSION	1u
#define RING_MAX_CAP	(1u << 30)

struct ring_dir {
	/* written by the producer */
	alignas(64) _Atomic uint32_t head;
	_Atomic uint32_t prod_waiting;
	_Atomic uint32_t prod_want;
	/* written by the consumer */
	alignas(64) _Atomic uint32_t tail;
	_Atomic uint32_t cons_waiting;
};

struct ring_hdr {
	alignas(64) _Atomic uint32_t ready;	/* RING_MAGIC once set up: a futex */
	uint32_t version;
	uint32_t cap;				/* bytes per direction */
	_Atomic uint32_t spin_ns;		/* waiters' spin window */
	_Atomic int32_t pid[2];			/* of each side, 0 unknown */
	struct ring_dir dir[2];
};

_Static_assert(sizeof(struct ring_dir) == 128, "ring direction size");
_Static_assert(sizeof(struct ring_hdr) == SFORK_RING_HEADER, "ring header size");

static unsigned char *ring_data(struct ring_hdr *h, int d)
{
	return (unsigned char *)h + sizeof(*h) + (size_t)d * h->cap;
}

/* bytes between tail and head */
static uint32_t ring_used(uint32_t head, uint32_t tail, uint32_t cap)
{
	return head >= tail ? head - tail : head + 2 * cap - tail;
}

static uint32_t ring_advance(uint32_t pos, uint32_t n, uint32_t cap)
{
	pos += n;
	return pos >= 2 * cap ? pos - 2 * cap : pos;
}

static uint32_t ring_off(uint32_t pos, uint32_t cap)
{
	return pos >= cap ? pos - cap : pos;
}

static uint32_t ring_need(size_t len)
{
	return 8 + (((uint32_t)len + 7) & ~7u);
}

int sfork_ring_init(void *region, size_t size, int side, pid_t peer)
{
	struct ring_hdr *h = region;
	size_t cap;

	if (!h || ((uintptr_t)h & 63) || (side != 0 && side != 1) ||
	    size < sizeof(*h) + 2 * 64) {
		errno = EINVAL;
		return -1;
	}
	cap = ((size - sizeof(*h)) / 2) & ~(size_t)7;
	if (cap > RING_MAX_CAP)
		cap = RING_MAX_CAP;

	atomic_store_explicit(&h->ready, 0, memory_order_relaxed);
	memset((char *)h + sizeof(h->ready), 0, sizeof(*h) - sizeof(h->ready));
	h->version = RING_VERSION;
	h->cap = (uint32_t)cap;
	atomic_store_explicit(&h->spin_ns, SFORK_CHAN_SPIN_NS, memory_order_relaxed);
	atomic_store_explicit(&h->pid[side], (int32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&h->pid[!side], (int32_t)peer, memory_order_relaxed);
	atomic_store_explicit(&h->ready, RING_MAGIC, memory_order_release);
	futex_wake(&h->ready, INT_MAX);
	return 0;
}

/* the header of an initialised ring, or NULL with errno */
static struct ring_hdr *ring_get(void *region, int side)
{
	struct ring_hdr *h = region;

	if (!h || (side != 0 && side != 1) ||
	    atomic_load_explicit(&h->ready, memory_order_acquire) != RING_MAGIC) {
		errno = EINVAL;
		return NULL;
	}
	return h;
}

size_t sfork_ring_max(const void *region)
{
	struct ring_hdr *h = (struct ring_hdr *)region;

	if (!h || atomic_load_explicit(&h->ready, memory_order_acquire) != RING_MAGIC)
		return 0;
	return h->cap - 8;
}

int sfork_ring_attach(void *region, int side, const struct timespec *timeout)
{
	struct ring_hdr *h = region;
	struct deadline dl = { .timeout = timeout };
	uint32_t r;

	if (!h || (side != 0 && side != 1) || !deadline_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	while ((r = atomic_load_explicit(&h->ready, memory_order_acquire)) != RING_MAGIC) {
		if (r) {
			errno = EBADMSG;
			return -1;
		}
		if (wait_slice(&h->ready, 0, &dl) == DEADLINE_PASSED &&
		    atomic_load_explicit(&h->ready, memory_order_acquire) != RING_MAGIC) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	if (h->version != RING_VERSION || h->cap < 64 || h->cap > RING_MAX_CAP ||
	    h->cap % 8) {
		errno = EBADMSG;
		return -1;
	}
	atomic_store_explicit(&h->pid[side], (int32_t)getpid(), memory_order_release);
	return 0;
}

/* copies between a message and the ring, wrapping at cap */
static void ring_put(unsigned char *data, uint32_t cap, uint32_t off,
		     const void *src, size_t len)
{
	size_t first = len < cap - off ? len : cap - off;

	memcpy(data + off, src, first);
	if (len > first)
		memcpy(data, (const unsigned char *)src + first, len - first);
}

static void ring_get_bytes(const unsigned char *data, uint32_t cap, uint32_t off,
			   void *dst, size_t len)
{
	size_t first = len < cap - off ? len : cap - off;

	memcpy(dst, data + off, first);
	if (len > first)
		memcpy((unsigned char *)dst + first, data, len - first);
}

/* A blocking send or receive between its waits. */
struct ring_wait {
	struct deadline dl;
	int check_peer, dead, timed_out, spun;
};

/* Once per call, before the first sleep: 1 when *word left val meanwhile. */
static int ring_spin(struct ring_wait *w, struct ring_hdr *h,
		     _Atomic uint32_t *word, uint32_t val)
{
	if (w->spun)
		return 0;
	w->spun = 1;
	return spin_while(word, val,
			  spin_budget(w->dl.timeout,
				      atomic_load_explicit(&h->spin_ns,
							   memory_order_relaxed)));
}

/*
 * Before a wait: -1 (errno set) when the call must give up, 1 when the peer
 * was just found gone (look at the ring once more: what it sent before it
 * went is still delivered), 0 to wait.
 */
static int ring_before_wait(struct ring_wait *w, struct ring_hdr *h, int side,
			    int flags)
{
	if (flags & SFORK_NONBLOCK) {
		errno = EAGAIN;
		return -1;
	}
	if (w->dead) {
		errno = EPIPE;
		return -1;
	}
	if (w->timed_out) {
		errno = ETIMEDOUT;
		return -1;
	}
	if (w->check_peer) {
		w->check_peer = 0;
		w->dead = peer_gone(atomic_load_explicit(&h->pid[!side],
							 memory_order_acquire));
		return w->dead;
	}
	return 0;
}

/* One slice of waiting for *word to leave val. */
static void ring_wait(struct ring_wait *w, _Atomic uint32_t *word, uint32_t val)
{
	switch (wait_slice(word, val, &w->dl)) {
	case WOKEN:
		break;
	case SLICE_EXPIRED:
		w->check_peer = 1;
		break;
	case DEADLINE_PASSED:
		w->timed_out = 1;
		break;
	}
}

ssize_t sfork_ring_send(void *region, int side, const void *msg, size_t len,
			int flags, const struct timespec *timeout)
{
	struct ring_wait w = { .dl = { .timeout = timeout } };
	struct ring_hdr *h = ring_get(region, side);
	uint32_t cap, need, head, tail, used, off;
	unsigned char *data;
	struct ring_dir *d;
	uint64_t rec;
	int ret;

	if (!h)
		return -1;
	if ((flags & ~SFORK_NONBLOCK) || (!msg && len) || !deadline_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	cap = h->cap;
	if (len > cap - 8) {
		errno = EMSGSIZE;
		return -1;
	}
	need = ring_need(len);
	d = &h->dir[side];
	data = ring_data(h, side);
	head = atomic_load_explicit(&d->head, memory_order_relaxed);

	for (;;) {
		tail = atomic_load_explicit(&d->tail, memory_order_acquire);
		used = ring_used(head, tail, cap);
		if (used > cap || head >= 2 * cap || head % 8) {
			errno = EBADMSG;
			return -1;
		}
		if (cap - used >= need)
			break;
		ret = ring_before_wait(&w, h, side, flags);
		if (ret < 0)
			return -1;
		if (ret || ring_spin(&w, h, &d->tail, tail))
			continue;

		atomic_store_explicit(&d->prod_want, need, memory_order_relaxed);
		atomic_store_explicit(&d->prod_waiting, 1, memory_order_release);
		atomic_thread_fence(memory_order_seq_cst);
		tail = atomic_load_explicit(&d->tail, memory_order_relaxed);
		if (cap - ring_used(head, tail, cap) < need)
			ring_wait(&w, &d->tail, tail);
		atomic_store_explicit(&d->prod_waiting, 0, memory_order_relaxed);
	}

	off = ring_off(head, cap);
	rec = len;		/* the header: the length as a u64 */
	memcpy(data + off, &rec, sizeof(rec));
	off += 8;
	if (off == cap)
		off = 0;
	if (len)
		ring_put(data, cap, off, msg, len);

	head = ring_advance(head, need, cap);
	atomic_store_explicit(&d->head, head, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&d->cons_waiting, memory_order_relaxed))
		futex_wake(&d->head, 1);
	return (ssize_t)len;
}

ssize_t sfork_ring_recv(void *region, int side, void *buf, size_t buflen,
			int flags, const struct timespec *timeout)
{
	struct ring_wait w = { .dl = { .timeout = timeout } };
	struct ring_hdr *h = ring_get(region, side);
	uint32_t cap, need, head, tail, used, off;
	unsigned char *data;
	struct ring_dir *d;
	uint64_t rec;
	size_t len;
	int ret;

	if (!h)
		return -1;
	if ((flags & ~SFORK_NONBLOCK) || (!buf && buflen) || !deadline_valid(timeout)) {
		errno = EINVAL;
		return -1;
	}
	cap = h->cap;
	d = &h->dir[!side];
	data = ring_data(h, !side);
	tail = atomic_load_explicit(&d->tail, memory_order_relaxed);

	for (;;) {
		head = atomic_load_explicit(&d->head, memory_order_acquire);
		if (head != tail)
			break;
		ret = ring_before_wait(&w, h, side, flags);
		if (ret < 0)
			return -1;
		if (ret || ring_spin(&w, h, &d->head, tail))
			continue;

		atomic_store_explicit(&d->cons_waiting, 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&d->head, memory_order_relaxed) == tail)
			ring_wait(&w, &d->head, tail);
		atomic_store_explicit(&d->cons_waiting, 0, memory_order_relaxed);
	}

	used = ring_used(head, tail, cap);
	if (used > cap || used < 8 || tail >= 2 * cap || tail % 8) {
		errno = EBADMSG;
		return -1;
	}
	off = ring_off(tail, cap);
	memcpy(&rec, data + off, sizeof(rec));
	if (rec > cap - 8 || ring_need(rec) > used) {
		errno = EBADMSG;
		return -1;
	}
	len = (size_t)rec;
	if (len > buflen) {
		errno = EMSGSIZE;
		return -1;
	}
	need = ring_need(len);
	off += 8;
	if (off == cap)
		off = 0;
	if (len)
		ring_get_bytes(data, cap, off, buf, len);

	tail = ring_advance(tail, need, cap);
	atomic_store_explicit(&d->tail, tail, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&d->prod_waiting, memory_order_acquire)) {
		uint32_t want = atomic_load_explicit(&d->prod_want, memory_order_relaxed);

		head = atomic_load_explicit(&d->head, memory_order_relaxed);
		if (cap - ring_used(head, tail, cap) >= want)
			futex_wake(&d->tail, 1);
	}
	return (ssize_t)len;
}

/* ======================================================================
 * Both kinds
 * ====================================================================== */

int sfork_chan_set_spin(void *region, unsigned long spin_ns)
{
	struct pub_hdr *p = region;
	struct ring_hdr *r = region;

	if (!region) {
		errno = EINVAL;
		return -1;
	}
	if (pub_state(p) == 1) {
		atomic_store_explicit(&p->spin_ns, clamp_spin(spin_ns),
				      memory_order_relaxed);
		return 0;
	}
	if (atomic_load_explicit(&r->ready, memory_order_acquire) == RING_MAGIC) {
		atomic_store_explicit(&r->spin_ns, clamp_spin(spin_ns),
				      memory_order_relaxed);
		return 0;
	}
	errno = EINVAL;
	return -1;
}
