// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_channel.c: the channel workloads (publish, pingpong, their _spin
 * forms, bulk).
 *
 * The region variants talk through the region: the blocking publish and
 * pingpong through libsfork's channels (<sfork_channel.h>: the publish
 * channel and the message ring, with their spin-then-sleep waits), the
 * polling (_spin) forms and bulk through a control page of futex words
 * (and for bulk a ring behind it); pipe and socketpair through fds.  idle
 * measures the CPU a receiver blocked in the ring burns while nothing
 * comes.  The control page's futex primitives live here because only the
 * channel uses them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <sfork.h>
#include <sfork_channel.h>

#include "sforkbench.h"

/* ------------------------------------------------------------------ */
/* Futex channel primitives                                            */

static long futex_wait(_Atomic uint32_t *a, uint32_t v)
{
	return syscall(SYS_futex, a, FUTEX_WAIT, v, NULL, NULL, 0);
}

static long futex_wake(_Atomic uint32_t *a, int n)
{
	return syscall(SYS_futex, a, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Poll *a for up to spin_ns; true if it changed from old. */
static bool spin_for_change(_Atomic uint32_t *a, uint32_t old, uint64_t spin_ns)
{
	uint64_t t0;
	unsigned int i = 0;

	if (!spin_ns)
		return false;
	t0 = now_ns();
	for (;;) {
		if (atomic_load_explicit(a, memory_order_acquire) != old)
			return true;
		cpu_relax();
		if ((++i & 63) == 0 && now_ns() - t0 > spin_ns)
			return false;
	}
}

/*
 * Wait until *a != old and return its value.  The waiter announces itself
 * in *waiters (Dekker with post(): both sides do a seq_cst store then a
 * seq_cst load), so post() only enters the kernel when someone sleeps.
 * Returns old when *stop is set (the watchdog fired).
 */
static uint32_t wait_change(_Atomic uint32_t *a, _Atomic uint32_t *waiters,
			    uint32_t old, uint64_t spin_ns,
			    const volatile sig_atomic_t *stop)
{
	uint32_t v;

	if (spin_for_change(a, old, spin_ns))
		return atomic_load(a);
	for (;;) {
		atomic_fetch_add(waiters, 1);
		if (atomic_load(a) == old)
			futex_wait(a, old);
		atomic_fetch_sub(waiters, 1);
		v = atomic_load(a);
		if (v != old || *stop)
			return v;
	}
}

static void post(_Atomic uint32_t *a, _Atomic uint32_t *waiters, uint32_t v)
{
	atomic_store(a, v);
	if (atomic_load(waiters))
		futex_wake(a, INT_MAX);
}

/* ------------------------------------------------------------------ */
/* Channel helpers                                                     */

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void lat_summary(struct child_report *report, uint64_t *lat, size_t n)
{
	uint64_t sum = 0;

	if (!n)
		return;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += lat[i];
	report->lat_min = lat[0];
	report->lat_med = lat[n / 2];
	report->lat_p90 = lat[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	report->lat_mean = sum / n;
}

/* ------------------------------------------------------------------ */
/* Channel workloads                                                   */

/* Layout of the control page: one cache line per word. */
struct ctl {
	_Alignas(64) _Atomic uint32_t a;	/* publish seq / ping / head */
	_Alignas(64) _Atomic uint32_t a_w;
	_Alignas(64) _Atomic uint32_t b;	/* pong / tail */
	_Alignas(64) _Atomic uint32_t b_w;
	_Alignas(64) _Atomic uint64_t t_send;
};

/* The child has no watchdog of its own: the parent's kills it. */
static const volatile sig_atomic_t never;

static const struct timespec attach_timeout = { .tv_sec = 30 };

static uint64_t cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ULL +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ULL;
}

/* Which transport a run uses through its region. */
static bool uses_libsfork(enum workload w, enum variant v)
{
	return v != VAR_PIPE && v != VAR_SOCKETPAIR &&
	       (w == WL_PUBLISH || w == WL_PINGPONG || w == WL_IDLE);
}

static void chan_child(const struct bench *b, enum workload w, enum variant v,
		       char *base, int mfd, int bfd, int ackfd, int repfd,
		       size_t size)
{
	const struct config *cfg = &b->cfg;
	bool spin = w == WL_PUBLISH_SPIN || w == WL_PINGPONG_SPIN;
	uint64_t spin_ns = spin ? cfg->spin_ns : 0;
	bool fdchan = v == VAR_PIPE || v == VAR_SOCKETPAIR;
	struct ctl *c = (struct ctl *)base;
	struct child_report report;
	struct usage u0;
	uint64_t t0, *lat = NULL;
	size_t n = (size_t)cfg->msgs;
	char *dst = NULL;

	memset(&report, 0, sizeof(report));
	if (w == WL_PUBLISH || w == WL_PUBLISH_SPIN) {
		lat = calloc(n, sizeof(*lat));
		if (!lat)
			_exit(5);
		memset(lat, 0, n * sizeof(*lat));
	}
	if (w == WL_BULK) {
		dst = malloc(cfg->chunk);
		if (!dst)
			_exit(5);
		memset(dst, 0, cfg->chunk);
	}
	if (fdchan && spin)
		set_nonblock(mfd);
	if (uses_libsfork(w, v) && w != WL_PUBLISH &&
	    sfork_ring_attach(base, SFORK_SIDE_CHILD, &attach_timeout) < 0)
		_exit(8);
	get_usage(RUSAGE_SELF, &u0);
	if (write_all(ackfd, "r", 1, &never) < 0)
		_exit(6);
	t0 = now_ns();

	switch (w) {
	case WL_IDLE: {
		uint64_t c0 = cpu_ns(), w0 = now_ns(), x;

		if (fdchan) {
			if (read_all(mfd, &x, sizeof(x), 0, &never) < 0)
				_exit(7);
		} else if (sfork_ring_recv(base, SFORK_SIDE_CHILD, &x, sizeof(x),
					   0, NULL) != sizeof(x)) {
			_exit(7);
		}
		report.waited_ns = now_ns() - w0;
		report.cpu_ns = cpu_ns() - c0;
		break;
	}
	case WL_PUBLISH:
	case WL_PUBLISH_SPIN: {
		uint32_t last = 0;

		for (size_t i = 0; i < n; i++) {
			uint64_t ts;

			if (fdchan) {
				if (read_all(mfd, &ts, sizeof(ts), spin_ns, &never) < 0)
					_exit(7);
			} else if (w == WL_PUBLISH) {
				uint64_t seq;

				if (sfork_pub_wait(base, last, NULL) < 0 ||
				    sfork_pub_read(base, &ts, sizeof(ts), &seq) !=
				    sizeof(ts))
					_exit(7);
				if (seq != (uint64_t)last + 1)
					report.errors++;
				last = (uint32_t)seq;
			} else {
				uint32_t s;

				spin_for_change(&c->a, last, spin_ns);
				while ((s = atomic_load(&c->a)) == last)
					futex_wait(&c->a, last);
				last = s;
				ts = atomic_load(&c->t_send);
			}
			lat[i] = now_ns() - ts;
			if (write_all(ackfd, "a", 1, &never) < 0)
				_exit(6);
		}
		lat_summary(&report, lat, n);
		break;
	}
	case WL_PINGPONG:
	case WL_PINGPONG_SPIN:
		for (uint32_t i = 1; i <= n; i++) {
			if (fdchan) {
				uint32_t x;

				if (read_all(mfd, &x, sizeof(x), spin_ns, &never) < 0)
					_exit(7);
				if (x != i)
					report.errors++;
				if (write_all(bfd, &x, sizeof(x), &never) < 0)
					_exit(7);
			} else if (w == WL_PINGPONG) {
				uint32_t x;

				if (sfork_ring_recv(base, SFORK_SIDE_CHILD, &x,
						    sizeof(x), 0, NULL) != sizeof(x))
					_exit(7);
				if (x != i)
					report.errors++;
				if (sfork_ring_send(base, SFORK_SIDE_CHILD, &x,
						    sizeof(x), 0, NULL) != sizeof(x))
					_exit(7);
			} else {
				uint32_t x = wait_change(&c->a, &c->a_w, i - 1,
							 spin_ns, &never);

				if (x != i)
					report.errors++;
				post(&c->b, &c->b_w, i);
			}
		}
		break;
	case WL_BULK: {
		size_t nch = size / cfg->chunk, nslots = cfg->ring / cfg->chunk;
		char *ring = base + b->page_size;

		for (size_t k = 0; k < nch; k++) {
			if (fdchan) {
				if (read_all(mfd, dst, cfg->chunk, 0, &never) < 0)
					_exit(7);
			} else {
				uint32_t h = atomic_load(&c->a);

				while (h == (uint32_t)k)
					h = wait_change(&c->a, &c->a_w, h,
							cfg->spin_ns, &never);
				memcpy(dst, ring + (k % nslots) * cfg->chunk,
				       cfg->chunk);
				post(&c->b, &c->b_w, (uint32_t)(k + 1));
			}
			if (*(uint64_t *)dst != k)
				report.errors++;
		}
		break;
	}
	default:
		break;
	}
	child_send(repfd, &report, t0, &u0);
	_exit(0);
}

void run_channel(struct bench *b, enum workload w, enum variant v,
		 size_t size, const struct lists *l, bool verify,
		 struct result *r)
{
	const struct config *cfg = &b->cfg;
	const volatile sig_atomic_t *stop = &b->dog.fired;
	size_t pg = b->page_size;
	bool spin = w == WL_PUBLISH_SPIN || w == WL_PINGPONG_SPIN;
	uint64_t spin_ns = spin ? cfg->spin_ns : 0;
	bool fdchan = v == VAR_PIPE || v == VAR_SOCKETPAIR;
	int ack[2] = { -1, -1 }, rep[2] = { -1, -1 };
	int fwd[2] = { -1, -1 }, back[2] = { -1, -1 };	/* the fd channel */
	int pm = -1, pb = -1, cm = -1, cb = -1;	/* parent/child ends */
	struct usage self0, self1, children0, children1;
	struct region reg;
	struct ctl *c = NULL;
	size_t n = (size_t)cfg->msgs, rlen;
	char *src = NULL, x;
	uint64_t t0, t1, t2, t5, t6;
	pid_t pid;

	(void)l;
	(void)verify;
	memset(&reg, 0, sizeof(reg));
	reg.var = VAR_FORK;
	if (w == WL_BULK) {
		rlen = pg + cfg->ring;
		src = malloc(cfg->chunk);
		if (!src) {
			result_fail(r, "malloc", errno);
			return;
		}
		memset(src, 0x5a, cfg->chunk);
		r->extra_bytes = (double)(size / cfg->chunk * cfg->chunk);
	} else {
		rlen = pg;
	}
	if (pipe2(ack, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		result_fail(r, "pipe", errno);
		goto out;
	}
	if (v == VAR_PIPE) {
		if (pipe2(fwd, O_CLOEXEC) < 0 || pipe2(back, O_CLOEXEC) < 0) {
			result_fail(r, "pipe", errno);
			goto out;
		}
		if (w == WL_BULK)	/* same buffering as the ring */
			fcntl(fwd[1], F_SETPIPE_SZ, (int)cfg->ring);
		pm = fwd[1]; cm = fwd[0]; pb = back[0]; cb = back[1];
	} else if (v == VAR_SOCKETPAIR) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fwd) < 0) {
			result_fail(r, "socketpair", errno);
			goto out;
		}
		pm = pb = fwd[0];
		cm = cb = fwd[1];
	}

	read_sfork_stats(&r->stats_before);
	get_usage(RUSAGE_SELF, &self0);
	get_usage(RUSAGE_CHILDREN, &children0);
	t0 = now_ns();
	pid = region_fork(b, &reg, fdchan ? VAR_FORK : v, rlen,
			  (w == WL_PUBLISH || w == WL_PUBLISH_SPIN) ?
			  SFORK_PARENT_TO_CHILD : SFORK_BIDIRECTIONAL);
	if (pid < 0) {
		result_fail(r, is_sfork(v) ? "sfork" : "create/fork", errno);
		goto out;
	}
	if (pid == 0)
		chan_child(b, w, v, reg.addr, cm, cb, ack[1], rep[1], size);
	watchdog_watch(&b->dog, pid);
	t1 = now_ns();
	/* Drop the child's ends: a dead child then reads as EOF, not a hang. */
	close_child_end(&ack[1]);
	close_child_end(&rep[1]);
	if (v == VAR_PIPE) {
		close_child_end(&fwd[0]);
		close_child_end(&back[1]);
	} else if (v == VAR_SOCKETPAIR) {
		close_child_end(&fwd[1]);
	}
	c = (struct ctl *)reg.addr;
	if (uses_libsfork(w, v)) {
		int e = w == WL_PUBLISH ?
			sfork_pub_init(reg.addr, pg, sizeof(uint64_t)) :
			sfork_ring_init(reg.addr, pg, SFORK_SIDE_PARENT, pid);

		if (!e && cfg->chan_spin_ns >= 0)
			e = sfork_chan_set_spin(reg.addr,
						(unsigned long)cfg->chan_spin_ns);
		if (e) {
			result_fail(r, "channel init", errno);
			goto reap;
		}
	}
	if (fdchan && spin)
		set_nonblock(pb);
	if (read_all(ack[0], &x, 1, 0, stop) < 0) {
		result_fail(r, "child start", errno);
		goto reap;
	}

	t2 = now_ns();
	switch (w) {
	case WL_IDLE: {
		struct timespec idle = {
			.tv_sec = cfg->idle_ms / 1000,
			.tv_nsec = (long)(cfg->idle_ms % 1000) * 1000000L,
		};
		uint64_t x = 1;

		while (nanosleep(&idle, &idle) < 0 && errno == EINTR && !*stop)
			;
		if (fdchan ? write_all(pm, &x, sizeof(x), stop) < 0 :
		    sfork_ring_send(reg.addr, SFORK_SIDE_PARENT, &x, sizeof(x),
				    0, NULL) < 0)
			result_fail(r, "send", errno);
		break;
	}
	case WL_PUBLISH:
	case WL_PUBLISH_SPIN:
		for (uint32_t i = 1; i <= n; i++) {
			uint64_t ts = now_ns();

			if (fdchan) {
				if (write_all(pm, &ts, sizeof(ts), stop) < 0)
					break;
			} else if (w == WL_PUBLISH) {
				if (sfork_pub_publish(reg.addr, &ts, sizeof(ts)) < 0)
					break;
			} else {
				atomic_store(&c->t_send, ts);
				atomic_store(&c->a, i);
				futex_wake(&c->a, 1);
			}
			if (read_all(ack[0], &x, 1, 0, stop) < 0)
				break;
		}
		break;
	case WL_PINGPONG:
	case WL_PINGPONG_SPIN:
		for (uint32_t i = 1; i <= n && !*stop; i++) {
			if (fdchan) {
				uint32_t y;

				if (write_all(pm, &i, sizeof(i), stop) < 0 ||
				    read_all(pb, &y, sizeof(y), spin_ns, stop) < 0)
					break;
			} else if (w == WL_PINGPONG) {
				uint32_t y;

				if (sfork_ring_send(reg.addr, SFORK_SIDE_PARENT, &i,
						    sizeof(i), 0, NULL) < 0 ||
				    sfork_ring_recv(reg.addr, SFORK_SIDE_PARENT, &y,
						    sizeof(y), 0, NULL) < 0)
					break;
			} else {
				post(&c->a, &c->a_w, i);
				while (atomic_load(&c->b) != i && !*stop)
					wait_change(&c->b, &c->b_w, i - 1,
						    spin_ns, stop);
			}
		}
		break;
	case WL_BULK: {
		size_t nch = size / cfg->chunk, nslots = cfg->ring / cfg->chunk;
		char *ring = reg.addr ? reg.addr + pg : NULL;

		for (size_t k = 0; k < nch && !*stop; k++) {
			*(uint64_t *)src = k;
			if (fdchan) {
				if (write_all(pm, src, cfg->chunk, stop) < 0)
					break;
				continue;
			}
			uint32_t t = atomic_load(&c->b);

			while ((uint32_t)k - t >= nslots && !*stop)
				t = wait_change(&c->b, &c->b_w, t, cfg->spin_ns,
						stop);
			memcpy(ring + (k % nslots) * cfg->chunk, src, cfg->chunk);
			post(&c->a, &c->a_w, (uint32_t)(k + 1));
		}
		break;
	}
	default:
		break;
	}
	/* done when the child's report arrives (it has consumed all) */
	if (read_all(rep[0], &r->child_report, sizeof(r->child_report), 0,
		     stop) < 0)
		result_fail(r, "child report", errno);
	else
		r->have_child_report = true;
	r->parent = (int64_t)(now_ns() - t2);
reap:
	result_reap(r, pid, &b->dog);
	get_usage(RUSAGE_SELF, &self1);
	get_usage(RUSAGE_CHILDREN, &children1);
	read_sfork_stats(&r->stats_after_work);
	usage_sub(&r->self_usage, &self1, &self0);
	usage_sub(&r->children_usage, &children1, &children0);
	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		result_fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfork_stats(&r->stats_after_destroy);
	r->setup = (int64_t)(t1 - t0);
	r->teardown = (int64_t)(t6 - t5);
	if (r->have_child_report && r->child_report.errors) {
		r->verify_errors = r->child_report.errors;
		result_fail(r, "verify: channel delivered wrong data", 0);
	}
	if (w == WL_IDLE) {
		r->value = (double)r->child_report.cpu_ns;
		r->idle_ns = (int64_t)r->child_report.waited_ns;
	} else if (w == WL_PUBLISH || w == WL_PUBLISH_SPIN)
		r->value = (double)r->child_report.lat_med;
	else if (w == WL_BULK)
		r->value = (double)r->parent;
	else
		r->value = (double)r->parent / (double)(n ? n : 1);
out:
	free(src);
	for (int i = 0; i < 2; i++) {
		if (ack[i] >= 0) close(ack[i]);
		if (rep[i] >= 0) close(rep[i]);
		if (fwd[i] >= 0) close(fwd[i]);
		if (back[i] >= 0) close(back[i]);
	}
}
