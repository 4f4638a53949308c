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
static void touch_all(char *base, size_t pg, size_t npages, unsigned int slot)
{
	for (size_t i = 0; i < npages; i++)
		*(volatile uint64_t *)(base + i * pg + slot * 8) =
			tag_of(slot, i);
}

static void touch_list(char *base, size_t pg, const uint32_t *idx, size_t n,
		       unsigned int slot)
{
	for (size_t i = 0; i < n; i++)
		*(volatile uint64_t *)(base + (size_t)idx[i] * pg + slot * 8) =
			tag_of(slot, idx[i]);
}

static size_t check_list(const char *base, size_t pg, const uint32_t *idx,
			 size_t n, unsigned int slot)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		if (*(const volatile uint64_t *)(base + (size_t)idx[i] * pg +
						 slot * 8) != tag_of(slot, idx[i]))
			bad++;
	return bad;
}

static size_t check_all(const char *base, size_t pg, size_t npages,
			unsigned int slot)
{
	size_t bad = 0;

	for (size_t i = 0; i < npages; i++)
		if (*(const volatile uint64_t *)(base + i * pg + slot * 8) !=
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

void lists_make(struct lists *l, enum workload w, size_t npages, int rep)
{
	lists_free(l);
	l->npages = npages;
	for (int s = 0; s < NSLOTS; s++) {
		size_t want;

		if (w == WL_SPARSE) {
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
		if (w != WL_RANDOM && w != WL_MULTILEVEL)
			continue;
		if (w == WL_RANDOM && s > 1)
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

static void child_region_work(enum workload w, char *base, size_t pg,
			      const struct lists *l, int repfd, int gofd)
{
	struct child_report report;
	struct usage u0;
	uint64_t t0;
	char c;

	memset(&report, 0, sizeof(report));
	switch (w) {
	case WL_LATENCY:
	case WL_TEARDOWN:
		_exit(0);
	case WL_FAULT:
		/* Stay mapped while the parent faults, then go. */
		while (read(gofd, &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	default:
		break;
	}
	get_usage(RUSAGE_SELF, &u0);
	t0 = now_ns();
	if (w == WL_ABUNDANT) {
		touch_all(base, pg, l->npages, 1);
	} else if (w == WL_SPARSE || w == WL_RANDOM) {
		touch_list(base, pg, l->idx[1], l->n[1], 1);
	} else if (w == WL_MULTILEVEL) {
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
		touch_list(base, pg, l->idx[slot], l->n[slot], slot);
		int bad = 0, st;

		if (k2 > 0 && (waitpid(k2, &st, 0) < 0 || st))
			bad = 1;
		if (k2 == 0)
			_exit(0);
		if (k1 > 0 && (waitpid(k1, &st, 0) < 0 || st))
			bad = 1;
		if (k1 == 0)
			_exit(bad);
		report.errors = bad;
	}
	child_send(repfd, &report, t0, &u0);
	_exit(0);
}

void run_region(struct bench *b, enum workload w, enum variant v, size_t size,
		const struct lists *l, bool verify, struct result *r)
{
	const volatile sig_atomic_t *stop = &b->dog.fired;
	size_t pg = b->page_size;
	struct usage self0, self1, children0, children1;
	struct region reg;
	int rp[2] = { -1, -1 }, gp[2] = { -1, -1 };
	bool want_report = w == WL_ABUNDANT || w == WL_SPARSE ||
			   w == WL_RANDOM || w == WL_MULTILEVEL;
	size_t npages = size / pg;
	uint64_t t0, t2, t3, t4, t5, t6;
	long long mem0 = 0, mem1;
	bool have_mem0;
	pid_t pid;

	if (want_report && pipe2(rp, O_CLOEXEC) < 0) {
		result_fail(r, "pipe", errno);
		return;
	}
	if (w == WL_FAULT && pipe2(gp, O_CLOEXEC) < 0) {
		result_fail(r, "pipe", errno);
		goto out_pipes;
	}
	have_mem0 = region_memory_kb(&mem0) == 0;
	read_sfork_stats(&r->stats_before);
	get_usage(RUSAGE_SELF, &self0);
	get_usage(RUSAGE_CHILDREN, &children0);

	t0 = now_ns();
	pid = region_fork(b, &reg, v, size, SFORK_BIDIRECTIONAL);
	if (pid < 0) {
		result_fail(r, is_sfork(v) ? "sfork" : "create/fork", errno);
		goto out_pipes;
	}
	if (pid == 0)
		child_region_work(w, reg.addr, pg, l, rp[1], gp[0]);
	watchdog_watch(&b->dog, pid);
	close_child_end(&rp[1]);
	close_child_end(&gp[0]);
	t2 = now_ns();

	switch (w) {
	case WL_ABUNDANT:
	case WL_TEARDOWN:
	case WL_FAULT:
		touch_all(reg.addr, pg, npages, 0);
		break;
	case WL_SPARSE:
	case WL_RANDOM:
	case WL_MULTILEVEL:
		touch_list(reg.addr, pg, l->idx[0], l->n[0], 0);
		break;
	default:
		break;
	}
	t3 = now_ns();
	if (w == WL_FAULT && write_all(gp[1], "g", 1, stop) < 0)
		result_fail(r, "write", errno);
	result_reap(r, pid, &b->dog);
	t4 = now_ns();

	get_usage(RUSAGE_SELF, &self1);
	get_usage(RUSAGE_CHILDREN, &children1);
	read_sfork_stats(&r->stats_after_work);
	usage_sub(&r->self_usage, &self1, &self0);
	usage_sub(&r->children_usage, &children1, &children0);
	/* untimed: what the region holds now, and how much of it is huge */
	if (have_mem0 && region_memory_kb(&mem1) == 0) {
		r->have_mem = true;
		r->mem_kb = mem1 - mem0;
		mapped_huge_kb(&r->shmem_pmd_kb, &r->hugetlb_kb);
	}
	if (want_report && r->ok) {
		if (read_all(rp[0], &r->child_report, sizeof(r->child_report),
			     0, stop) < 0)
			result_fail(r, "child report", errno);
		else
			r->have_child_report = true;
		if (r->child_report.errors)
			result_fail(r, "grandchild failed", 0);
	}
	if (verify && r->ok) {
		size_t bad = 0;

		if (w == WL_ABUNDANT)
			bad = check_all(reg.addr, pg, npages, 1);
		else if (w == WL_SPARSE || w == WL_RANDOM)
			bad = check_list(reg.addr, pg, l->idx[1], l->n[1], 1);
		else if (w == WL_MULTILEVEL)
			for (unsigned int s = 1; s < NSLOTS; s++)
				bad += check_list(reg.addr, pg, l->idx[s],
						  l->n[s], s);
		if (w == WL_ABUNDANT || w == WL_FAULT || w == WL_TEARDOWN)
			bad += check_all(reg.addr, pg, npages, 0);
		r->verify_errors = (int64_t)bad;
		if (bad)
			result_fail(r, "verify: pages with wrong contents", 0);
	}

	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		result_fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfork_stats(&r->stats_after_destroy);

	if (w == WL_TEARDOWN && r->stats_before.ok && is_sfork(v)) {
		/* How long until the module's pages are really gone. */
		uint64_t ts = now_ns();
		struct sfork_stats s;

		for (;;) {
			read_sfork_stats(&s);
			if (!s.ok || s.pages_live <= r->stats_before.pages_live ||
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
	if (w == WL_FAULT)
		r->value = (double)r->parent / (double)(npages ? npages : 1);
	else if (w == WL_TEARDOWN)
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
void run_latency(struct bench *b, enum workload w, enum variant v,
		 size_t size, const struct lists *l, bool verify,
		 struct result *r)
{
	size_t per = size ? size : 1;
	int inner = (int)((16UL << 20) / per);
	struct result one;
	double sum = 0, sum_setup = 0, sum_td = 0;
	struct usage self = {0}, children = {0};

	(void)l;
	(void)verify;

	if (inner < 1)
		inner = 1;
	if (inner > 10)
		inner = 10;
	for (int i = 0; i < inner && r->ok; i++) {
		result_init(&one);
		run_region(b, w, v, size, NULL, false, &one);
		if (!one.ok) {
			*r = one;
			return;
		}
		if (i == 0)
			r->stats_before = one.stats_before;
		r->stats_after_work = one.stats_after_work;
		r->stats_after_destroy = one.stats_after_destroy;
		sum += one.value;
		sum_setup += (double)one.setup;
		sum_td += (double)one.teardown;
		self.minflt += one.self_usage.minflt;
		self.nvcsw += one.self_usage.nvcsw;
		self.nivcsw += one.self_usage.nivcsw;
		children.minflt += one.children_usage.minflt;
		children.nvcsw += one.children_usage.nvcsw;
		children.nivcsw += one.children_usage.nivcsw;
	}
	r->value = sum / inner;
	r->total = (int64_t)r->value;
	r->setup = (int64_t)(sum_setup / inner);
	r->teardown = (int64_t)(sum_td / inner);
	r->inner = inner;
	/* counters per cycle */
	r->self_usage.minflt = self.minflt / inner;
	r->self_usage.nvcsw = self.nvcsw / inner;
	r->self_usage.nivcsw = self.nivcsw / inner;
	r->children_usage.minflt = children.minflt / inner;
	r->children_usage.nvcsw = children.nvcsw / inner;
	r->children_usage.nivcsw = children.nivcsw / inner;
	r->stats_after_work.faults = r->stats_before.faults +
		(r->stats_after_work.faults - r->stats_before.faults) / inner;
}

/* ------------------------------------------------------------------ */
/* zerofill                                                            */

void membuf_release(struct membuf *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
	m->addr = NULL;
	m->len = 0;
}

void run_zerofill(struct bench *b, enum workload w, enum variant v,
		  size_t size, const struct lists *l, bool verify,
		  struct result *r)
{
	struct membuf *m = &b->membuf;
	struct usage self0, self1, children0, children1;
	uint64_t t0, t1, t5, t6;

	(void)w;
	(void)l;
	(void)verify;
	read_sfork_stats(&r->stats_before);
	get_usage(RUSAGE_SELF, &self0);
	get_usage(RUSAGE_CHILDREN, &children0);
	if (v == VAR_MEMSET) {
		if (m->len != size) {
			membuf_release(m);
			m->addr = mmap(NULL, size, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m->addr == MAP_FAILED) {
				m->addr = NULL;
				result_fail(r, "mmap", errno);
				return;
			}
			m->len = size;
			memset(m->addr, 1, size);	/* fault it in */
		}
		t0 = now_ns();
		memset(m->addr, 0, size);
		__asm__ __volatile__("" : : "r"(m->addr) : "memory");
		t1 = now_ns();
		r->value = (double)(t1 - t0);
		r->setup = (int64_t)(t1 - t0);
		if (m->addr[size - 1] != 0)
			result_fail(r, "memset", 0);
		get_usage(RUSAGE_SELF, &self1);
		usage_sub(&r->self_usage, &self1, &self0);
		return;
	}
	if (v == VAR_POPULATE) {
		void *p;

		t0 = now_ns();
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		t1 = now_ns();
		if (p == MAP_FAILED) {
			result_fail(r, "mmap", errno);
			return;
		}
		get_usage(RUSAGE_SELF, &self1);
		usage_sub(&r->self_usage, &self1, &self0);
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
	pid = region_fork(b, &reg, v, size, SFORK_BIDIRECTIONAL);
	t1 = now_ns();
	if (pid < 0) {
		result_fail(r, "sfork", errno);
		return;
	}
	if (pid == 0)
		_exit(0);
	watchdog_watch(&b->dog, pid);
	result_reap(r, pid, &b->dog);
	get_usage(RUSAGE_SELF, &self1);
	get_usage(RUSAGE_CHILDREN, &children1);
	usage_sub(&r->self_usage, &self1, &self0);
	usage_sub(&r->children_usage, &children1, &children0);
	read_sfork_stats(&r->stats_after_work);
	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		result_fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfork_stats(&r->stats_after_destroy);
	r->value = (double)(t1 - t0);
	r->setup = (int64_t)(t1 - t0);
	r->teardown = (int64_t)(t6 - t5);
}

