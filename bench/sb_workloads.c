// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_workloads.c: the region workloads (abundant, sparse, random,
 * multilevel, latency, fault, teardown) and zerofill.
 *
 * Each creates a region through sb_region.c, has parent and child (and,
 * for multilevel, grandchildren) write their own pages, and times the
 * phases.  The page lists are made once per repetition so that every
 * variant writes the same pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <sfork.h>

#include "sforkbench.h"

/* ------------------------------------------------------------------ */
/* Page touching                                                       */

static inline uint64_t tag_of(unsigned int slot, size_t page)
{
	return 0x5f0c000000000000ULL ^ ((uint64_t)slot << 40) ^ (uint64_t)page;
}

/* Each process writes its own 8-byte slot of a page: no write races. */
static void touch_all(char *base, size_t npages, unsigned int slot)
{
	for (size_t i = 0; i < npages; i++)
		*(volatile uint64_t *)(base + i * g_pg + slot * 8) =
			tag_of(slot, i);
}

static void touch_list(char *base, const uint32_t *idx, size_t n,
		       unsigned int slot)
{
	for (size_t i = 0; i < n; i++)
		*(volatile uint64_t *)(base + (size_t)idx[i] * g_pg + slot * 8) =
			tag_of(slot, idx[i]);
}

static size_t check_list(const char *base, const uint32_t *idx, size_t n,
			 unsigned int slot)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (*(const volatile uint64_t *)(base + (size_t)idx[i] * g_pg +
						 slot * 8) != tag_of(slot, idx[i]))
			bad++;
	return bad;
}

static size_t check_all(const char *base, size_t npages, unsigned int slot)
{
	size_t bad = 0;

	for (size_t i = 0; i < npages; i++)
		if (*(const volatile uint64_t *)(base + i * g_pg + slot * 8) !=
		    tag_of(slot, i))
			bad++;
	return bad;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void die(const char *what)
{
	fprintf(stderr, "sforkbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

void lists_free(struct lists *l)
{
	for (int s = 0; s < NSLOTS; s++)
		free(l->idx[s]);
	free(l->perm);
	memset(l, 0, sizeof(*l));
}

void lists_make(struct lists *l, int w, size_t npages, int rep)
{
	lists_free(l);
	l->npages = npages;
	for (int s = 0; s < NSLOTS; s++) {
		size_t want;

		if (w == W_SPARSE) {
			/* parent: 0, n/3, 2n/3; child: n/6, n/2, 5n/6 */
			want = 3;
			l->idx[s] = calloc(want, sizeof(uint32_t));
			if (!l->idx[s])
				die("calloc");
			for (size_t k = 0; k < 3; k++)
				l->idx[s][k] = (uint32_t)(s == 0 ?
					(npages * 2 * k) / 6 :
					(npages * (2 * k + 1)) / 6);
			l->n[s] = want;
			continue;
		}
		if (w != W_RANDOM && w != W_MULTILEVEL)
			continue;
		if (w == W_RANDOM && s > 1)
			continue;
		/* A random quarter, in random order (partial Fisher-Yates). */
		if (!l->perm) {
			l->perm = malloc(npages * sizeof(uint32_t));
			if (!l->perm)
				die("malloc");
		}
		for (size_t i = 0; i < npages; i++)
			l->perm[i] = (uint32_t)i;
		want = npages / 4 ? npages / 4 : 1;
		uint64_t seed = 0x9e3779b97f4a7c15ULL ^
			((uint64_t)(rep + 2) << 32) ^ (uint64_t)(s + 1) * 0x1234567ULL;
		for (size_t i = 0; i < want; i++) {
			size_t j = i + xorshift(&seed) % (npages - i);
			uint32_t t = l->perm[i];

			l->perm[i] = l->perm[j];
			l->perm[j] = t;
		}
		l->idx[s] = malloc(want * sizeof(uint32_t));
		if (!l->idx[s])
			die("malloc");
		memcpy(l->idx[s], l->perm, want * sizeof(uint32_t));
		l->n[s] = want;
	}
}

/* ------------------------------------------------------------------ */
/* Region workloads: abundant sparse random multilevel latency fault
 * teardown                                                             */

static void child_region_work(int w, char *base, const struct lists *l,
			      int repfd, int gofd)
{
	struct child_report cr;
	struct usage u0;
	uint64_t t0;
	char c;

	memset(&cr, 0, sizeof(cr));
	switch (w) {
	case W_LATENCY:
	case W_TEARDOWN:
		_exit(0);
	case W_FAULT:
		/* Stay mapped while the parent faults, then go. */
		while (read(gofd, &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	default:
		break;
	}
	get_usage(RUSAGE_SELF, &u0);
	t0 = now_ns();
	if (w == W_ABUNDANT) {
		touch_all(base, l->npages, 1);
	} else if (w == W_SPARSE || w == W_RANDOM) {
		touch_list(base, l->idx[1], l->n[1], 1);
	} else if (w == W_MULTILEVEL) {
		/* fork twice: 4 processes here, slots 1..4 */
		unsigned int slot = 1;
		pid_t k1 = fork(), k2;

		if (k1 < 0)
			_exit(4);
		if (k1 == 0)
			slot += 1;
		k2 = fork();
		if (k2 < 0)
			_exit(4);
		if (k2 == 0)
			slot += 2;
		touch_list(base, l->idx[slot], l->n[slot], slot);
		int bad = 0, st;

		if (k2 > 0 && (waitpid(k2, &st, 0) < 0 || st))
			bad = 1;
		if (k2 == 0)
			_exit(0);
		if (k1 > 0 && (waitpid(k1, &st, 0) < 0 || st))
			bad = 1;
		if (k1 == 0)
			_exit(bad);
		cr.errors = bad;
	}
	child_send(repfd, &cr, t0, &u0);
	_exit(0);
}

void run_region(int w, int v, size_t size, const struct lists *l,
		bool verify, struct result *r)
{
	struct usage us0, us1, uc0, uc1;
	struct region reg;
	int rp[2] = { -1, -1 }, gp[2] = { -1, -1 };
	bool want_report = w == W_ABUNDANT || w == W_SPARSE ||
			   w == W_RANDOM || w == W_MULTILEVEL;
	size_t npages = size / g_pg;
	uint64_t t0, t2, t3, t4, t5, t6;
	pid_t pid;

	if (want_report && pipe2(rp, O_CLOEXEC) < 0) {
		fail(r, "pipe", errno);
		return;
	}
	if (w == W_FAULT && pipe2(gp, O_CLOEXEC) < 0) {
		fail(r, "pipe", errno);
		goto out_pipes;
	}
	read_sfstats(&r->s0);
	get_usage(RUSAGE_SELF, &us0);
	get_usage(RUSAGE_CHILDREN, &uc0);

	t0 = now_ns();
	pid = region_fork(&reg, v, size, SFORK_BIDIRECTIONAL);
	if (pid < 0) {
		fail(r, is_sfork(v) ? "sfork" : "create/fork", errno);
		goto out_pipes;
	}
	if (pid == 0)
		child_region_work(w, reg.addr, l, rp[1], gp[0]);
	g_child = pid;
	close_child_end(&rp[1]);
	close_child_end(&gp[0]);
	t2 = now_ns();

	switch (w) {
	case W_ABUNDANT:
	case W_TEARDOWN:
	case W_FAULT:
		touch_all(reg.addr, npages, 0);
		break;
	case W_SPARSE:
	case W_RANDOM:
	case W_MULTILEVEL:
		touch_list(reg.addr, l->idx[0], l->n[0], 0);
		break;
	default:
		break;
	}
	t3 = now_ns();
	if (w == W_FAULT && write_all(gp[1], "g", 1) < 0)
		fail(r, "write", errno);
	reap(pid, r);
	t4 = now_ns();

	get_usage(RUSAGE_SELF, &us1);
	get_usage(RUSAGE_CHILDREN, &uc1);
	read_sfstats(&r->s1);
	usage_sub(&r->up, &us1, &us0);
	usage_sub(&r->uc, &uc1, &uc0);
	if (want_report && r->ok) {
		if (read_all(rp[0], &r->cr, sizeof(r->cr), 0) < 0)
			fail(r, "child report", errno);
		else
			r->have_cr = true;
		if (r->cr.errors)
			fail(r, "grandchild failed", 0);
	}
	if (verify && r->ok) {
		size_t bad = 0;

		if (w == W_ABUNDANT)
			bad = check_all(reg.addr, npages, 1);
		else if (w == W_SPARSE || w == W_RANDOM)
			bad = check_list(reg.addr, l->idx[1], l->n[1], 1);
		else if (w == W_MULTILEVEL)
			for (unsigned int s = 1; s < NSLOTS; s++)
				bad += check_list(reg.addr, l->idx[s], l->n[s], s);
		if (w == W_ABUNDANT || w == W_FAULT || w == W_TEARDOWN)
			bad += check_all(reg.addr, npages, 0);
		r->verify_errors = (int64_t)bad;
		if (bad)
			fail(r, "verify: pages with wrong contents", 0);
	}

	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfstats(&r->s2);

	if (w == W_TEARDOWN && r->s0.ok && is_sfork(v)) {
		/* How long until the module's pages are really gone. */
		uint64_t ts = now_ns();
		struct sfstats s;

		for (;;) {
			read_sfstats(&s);
			if (!s.ok || s.pages_live <= r->s0.pages_live ||
			    now_ns() - ts > 3000000000ULL)
				break;
			usleep(1000);
		}
		r->settle = (int64_t)(now_ns() - t5);
	}

	r->setup = (int64_t)(t2 - t0);
	r->parent = (int64_t)(t3 - t2);
	r->wait = (int64_t)(t4 - t3);
	r->teardown = (int64_t)(t6 - t5);
	r->total = (int64_t)((t4 - t0) + (t6 - t5));
	if (w == W_FAULT)
		r->value = (double)r->parent / (double)(npages ? npages : 1);
	else if (w == W_TEARDOWN)
		r->value = (double)r->teardown;
	else
		r->value = (double)r->total;
out_pipes:
	for (int i = 0; i < 2; i++) {
		if (rp[i] >= 0)
			close(rp[i]);
		if (gp[i] >= 0)
			close(gp[i]);
	}
}

/* latency: average of several cycles (few for big eager regions). */
void run_latency(int v, size_t size, struct result *r)
{
	size_t per = size ? size : 1;
	int inner = (int)((16UL << 20) / per);
	struct result one;
	double sum = 0, sum_setup = 0, sum_td = 0;
	struct usage up = {0}, uc = {0};

	if (inner < 1)
		inner = 1;
	if (inner > 10)
		inner = 10;
	for (int i = 0; i < inner && r->ok; i++) {
		result_init(&one);
		run_region(W_LATENCY, v, size, NULL, false, &one);
		if (!one.ok) {
			*r = one;
			return;
		}
		if (i == 0) {
			r->s0 = one.s0;
		}
		r->s1 = one.s1;
		r->s2 = one.s2;
		sum += one.value;
		sum_setup += (double)one.setup;
		sum_td += (double)one.teardown;
		up.minflt += one.up.minflt;
		up.nvcsw += one.up.nvcsw;
		up.nivcsw += one.up.nivcsw;
		uc.minflt += one.uc.minflt;
		uc.nvcsw += one.uc.nvcsw;
		uc.nivcsw += one.uc.nivcsw;
	}
	r->value = sum / inner;
	r->total = (int64_t)r->value;
	r->setup = (int64_t)(sum_setup / inner);
	r->teardown = (int64_t)(sum_td / inner);
	r->inner = inner;
	/* counters per cycle */
	r->up.minflt = up.minflt / inner;
	r->up.nvcsw = up.nvcsw / inner;
	r->up.nivcsw = up.nivcsw / inner;
	r->uc.minflt = uc.minflt / inner;
	r->uc.nvcsw = uc.nvcsw / inner;
	r->uc.nivcsw = uc.nivcsw / inner;
	r->s1.faults = r->s0.faults + (r->s1.faults - r->s0.faults) / inner;
}

/* ------------------------------------------------------------------ */
/* zerofill                                                            */

static char *g_membuf;
static size_t g_membuf_len;

void membuf_release(void)
{
	if (g_membuf)
		munmap(g_membuf, g_membuf_len);
	g_membuf = NULL;
	g_membuf_len = 0;
}

void run_zerofill(int v, size_t size, struct result *r)
{
	struct usage us0, us1, uc0, uc1;
	uint64_t t0, t1, t5, t6;

	read_sfstats(&r->s0);
	get_usage(RUSAGE_SELF, &us0);
	get_usage(RUSAGE_CHILDREN, &uc0);
	if (v == V_MEMSET) {
		if (g_membuf_len != size) {
			membuf_release();
			g_membuf = mmap(NULL, size, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (g_membuf == MAP_FAILED) {
				g_membuf = NULL;
				fail(r, "mmap", errno);
				return;
			}
			g_membuf_len = size;
			memset(g_membuf, 1, size);	/* fault it in */
		}
		t0 = now_ns();
		memset(g_membuf, 0, size);
		__asm__ __volatile__("" : : "r"(g_membuf) : "memory");
		t1 = now_ns();
		r->value = (double)(t1 - t0);
		r->setup = (int64_t)(t1 - t0);
		if (g_membuf[size - 1] != 0)
			fail(r, "memset", 0);
		get_usage(RUSAGE_SELF, &us1);
		usage_sub(&r->up, &us1, &us0);
		return;
	}
	if (v == V_POPULATE) {
		void *p;

		t0 = now_ns();
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		t1 = now_ns();
		if (p == MAP_FAILED) {
			fail(r, "mmap", errno);
			return;
		}
		get_usage(RUSAGE_SELF, &us1);
		usage_sub(&r->up, &us1, &us0);
		t5 = now_ns();
		munmap(p, size);
		t6 = now_ns();
		r->value = (double)(t1 - t0);
		r->setup = (int64_t)(t1 - t0);
		r->teardown = (int64_t)(t6 - t5);
		return;
	}
	/* sfork: time until the call returns in the parent */
	struct region reg;
	pid_t pid;

	t0 = now_ns();
	pid = region_fork(&reg, v, size, SFORK_BIDIRECTIONAL);
	t1 = now_ns();
	if (pid < 0) {
		fail(r, "sfork", errno);
		return;
	}
	if (pid == 0)
		_exit(0);
	g_child = pid;
	reap(pid, r);
	get_usage(RUSAGE_SELF, &us1);
	get_usage(RUSAGE_CHILDREN, &uc1);
	usage_sub(&r->up, &us1, &us0);
	usage_sub(&r->uc, &uc1, &uc0);
	read_sfstats(&r->s1);
	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfstats(&r->s2);
	r->value = (double)(t1 - t0);
	r->setup = (int64_t)(t1 - t0);
	r->teardown = (int64_t)(t6 - t5);
}

