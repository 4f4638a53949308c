// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress threads: the threads of one process sfork at the same time;
 * every child must get its own region with the right permissions.
 */
#include "stress.h"

/* ---- threads ------------------------------------------------------------- */

struct thr {
	pthread_t tid;
	int id;
	long iters, done, ro_child, ro_parent;
	uint64_t seed;
	pid_t self;
	int failed;
};

static _Atomic int thr_failed;

/* The child of a thread's sfork: its own side's permission, its data. */
static int thr_child(char *base, size_t sz, int d, uint64_t tok, pid_t parent)
{
	char *probe = base + sz - PAGE + 200;
	int r;

	if (parent_writes(d)) {
		r = flag_wait((uint32_t *)base, 60, parent);
		if (r)
			return r;
		if (*(volatile uint64_t *)(base + 8) != tok)
			return E_MISMATCH;
	}
	if (child_writes(d)) {
		if (probe_access(probe, 1, 1, NULL))
			return E_WRITE_FAULTED;
		*(volatile uint64_t *)(base + 16) = ~tok;
		return 0;
	}
	return check_ro_store(probe);
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct rng r;

	rng_init(&r, t->seed, 1000 + t->id);
	for (long i = 0; i < t->iters && !atomic_load(&thr_failed); i++) {
		int d = below(&r, 3), a = below(&r, 3), st, code;
		size_t len = pick_len(&r, 64), sz = (len + PAGE - 1) & ~(PAGE - 1);
		uint64_t tok = mix64(t->seed ^ ((uint64_t)t->id << 32) ^ i) | 1;
		void *addr = NULL;
		char *base;
		pid_t pid = sfork(len, dir_flag[d] | alloc_flag[a], &addr);

		if (pid < 0) {
			failf("thread %d: sfork(%zu, %s|%s): %s", t->id, len, dir_name[d],
			      alloc_name[a], strerror(errno));
			goto fail;
		}
		if (pid == 0)
			_exit(thr_child(addr, sz, d, tok, t->self));
		base = addr;
		if (parent_writes(d)) {
			if (probe_access(base + sz - 1, 1, 0, NULL)) {
				failf("thread %d: store on the parent's writable %s side faulted",
				      t->id, dir_name[d]);
				kill(pid, SIGKILL);
			}
			*(volatile uint64_t *)(base + 8) = tok;
			flag_set((uint32_t *)base);
		} else {
			code = check_ro_store(base + below(&r, sz));
			if (code) {
				failf("thread %d: parent's read-only c2p side: %s", t->id, code_name(code));
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				goto fail;
			}
			t->ro_parent++;
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			if (WIFSIGNALED(st))
				failf("thread %d: %s child killed by signal %d", t->id, dir_name[d],
				      WTERMSIG(st));
			else
				failf("thread %d: %s|%s child of %zu bytes: %s", t->id, dir_name[d],
				      alloc_name[a], sz, code_name(WEXITSTATUS(st)));
			goto fail;
		}
		if (!child_writes(d))
			t->ro_child++;
		if (child_writes(d) && *(volatile uint64_t *)(base + 16) != ~tok) {
			failf("thread %d: the child's reply is not in the %s region", t->id, dir_name[d]);
			goto fail;
		}
		if (munmap(addr, sz)) {
			failf("thread %d: munmap: %s", t->id, strerror(errno));
			goto fail;
		}
		t->done++;
	}
	return NULL;
fail:
	t->failed = 1;
	atomic_store(&thr_failed, 1);
	return NULL;
}

int mode_threads(int nthreads, long n, uint64_t seed)
{
	struct thr *ts = calloc(nthreads, sizeof(*ts));
	long done = 0, roc = 0, rop = 0;
	double t0 = now_s();
	int bad = 0;

	if (!ts)
		return 1;
	info("%ld sforks by %d threads of one process (seed %lu)", n, nthreads,
	     (unsigned long)seed);
	probe_install();
	for (int i = 0; i < nthreads; i++) {
		ts[i].id = i;
		ts[i].seed = seed;
		ts[i].self = getpid();
		ts[i].iters = n / nthreads + (i < n % nthreads);
		if (pthread_create(&ts[i].tid, NULL, thr_main, &ts[i])) {
			failf("pthread_create failed");
			return 1;
		}
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(ts[i].tid, NULL);
		done += ts[i].done;
		roc += ts[i].ro_child;
		rop += ts[i].ro_parent;
		bad |= ts[i].failed;
	}
	if (reap_all(30, NULL))
		bad = 1;
	if (!bad && done != n) {
		failf("%ld sforks done, %ld asked", done, n);
		bad = 1;
	}
	info("%ld sforks by %d threads; read-only stores that faulted as they must: %ld in "
	     "p2c children, %ld in c2p parents; %.1f s: %s",
	     done, nthreads, roc, rop, now_s() - t0, bad ? "FAILED" : "ok");
	free(ts);
	return bad;
}
