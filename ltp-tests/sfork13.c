// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Concurrent sfork calls from several threads of one process.
 *
 * Adapts LTP's fork14 (forks while memory is mapped, repeatedly) and the
 * threaded fork tests to sfork.  Four threads each call sfork 25 times
 * (-n), cycling through the directions and allocations, while a fifth
 * thread calls plain fork() in a loop.  Every region a thread owns is
 * listed in a table the children inherit.  Checked:
 *
 *  - every sfork call succeeds and returns a region no other live region
 *    has;
 *  - each sfork child has the child's side of its own region (a store and
 *    mprotect(RW) fail when it is read-only, with SEGV_ACCERR and EACCES;
 *    else it writes its own pattern, which the calling thread then reads)
 *    and the parent's side of every other region that was live when it was
 *    forked (regions of the other threads, inherited by a plain fork);
 *  - each calling thread has the parent's side of its region;
 *  - every child of the fork loop has the parent's side of every region
 *    live at its fork (never the child's side of a region another thread
 *    had armed but not yet forked for);
 *  - after all threads are done regions_live and pages_live are back to
 *    their values before, within 2 s.
 *
 * A module that arms a region per process instead of per thread, or mixes
 * up the regions of concurrent calls, fails one of these checks.
 */

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "tst_safe_pthread.h"
#include "sfork_test.h"

#define NTHREADS	4
#define DEFAULT_ITER	25

struct slot {
	unsigned char *addr;
	size_t len;
	unsigned int flags;
	int live;
};

struct thread_result {
	unsigned int calls, failures, bad_children, bad_data, bad_parent;
};

static const unsigned int dir_of[] = {
	SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD, SFORK_CHILD_TO_PARENT
};
static const unsigned int alloc_of[] = { SFORK_LAZY, SFORK_EAGER, 0 };

static char *str_n;
static int iterations = DEFAULT_ITER;
static struct slot slots[NTHREADS];
static struct thread_result results[NTHREADS];

/* ---- stores that may fault, usable from any thread ---- */

static __thread sigjmp_buf probe_jmp;
static __thread volatile int probing;
static __thread siginfo_t probe_info;

static void probe_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probing) {
		/* not ours: the default action on the re-executed access */
		signal(sig, SIG_DFL);
		return;
	}
	probe_info = *si;
	siglongjmp(probe_jmp, 1);
}

/* 0: the store happened; 1: it raised a signal (*si) */
static int probe_store(volatile unsigned char *addr, unsigned char val,
		       siginfo_t *si)
{
	if (sigsetjmp(probe_jmp, 1) == 0) {
		probing = 1;
		*addr = val;
		probing = 0;
		return 0;
	}
	probing = 0;
	*si = probe_info;
	return 1;
}

/*
 * 0 when the view of [p, p + len) is as expected (TFAIL otherwise); its own
 * probe, not sfork_try_store(): this runs in many threads at once.
 */
static int check_view(unsigned char *p, size_t len, int writable,
		   const char *who, const char *what)
{
	volatile unsigned char *last = p + len - 1;
	siginfo_t si;

	if (writable) {
		/* the last byte is nobody's data */
		if (probe_store(last, *last, &si)) {
			tst_res(TFAIL, "%s: store to %s raised %s si_code %d",
				who, what, tst_strsig(si.si_signo), si.si_code);
			return 1;
		}
		return 0;
	}

	if (!probe_store(p, 0x5a, &si)) {
		tst_res(TFAIL, "%s: store to read-only %s succeeded", who, what);
		return 1;
	}
	if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR ||
	    si.si_addr != (void *)p) {
		tst_res(TFAIL, "%s: store to %s raised %s si_code %d si_addr %p",
			who, what, tst_strsig(si.si_signo), si.si_code, si.si_addr);
		return 1;
	}
	if (mprotect(p, len, PROT_READ | PROT_WRITE) != -1 || errno != EACCES) {
		tst_res(TFAIL | TERRNO, "%s: mprotect(RW) of read-only %s", who,
			what);
		return 1;
	}
	return 0;
}

/* the parent's side of every live region but skip's; returns bad count */
static int count_others_wrong(int skip, const char *who, unsigned int *seen)
{
	char what[64];
	int t, bad = 0;

	for (t = 0; t < NTHREADS; t++) {
		struct slot *s = &slots[t];

		if (t == skip || !__atomic_load_n(&s->live, __ATOMIC_ACQUIRE))
			continue;
		snprintf(what, sizeof(what), "%s region of thread %d",
			 sfork_dir_name(s->flags), t);
		bad += check_view(s->addr, s->len, sfork_parent_writes(s->flags),
				who, what);
		if (seen)
			(*seen)++;
	}
	return bad;
}

static unsigned char pattern(size_t off, int t, int it)
{
	return sfork_pattern(off, (unsigned int)(t * 1000 + it + 1));
}

static void sfork_child(int t, int it, unsigned char *p, size_t len,
			unsigned int flags)
{
	const char *who = "sfork child";
	size_t i;
	int bad = 0;

	if (sfork_child_writes(flags)) {
		if (!check_view(p, len, 1, who, "its own region")) {
			for (i = 0; i < len - 1; i++)
				p[i] = pattern(i, t, it);
		} else {
			bad++;
		}
	} else {
		bad += check_view(p, len, 0, who, "its own region");
	}
	bad += count_others_wrong(t, who, NULL);
	_exit(bad ? 1 : 0);
}

static void *sfork_thread(void *arg)
{
	int t = (int)(long)arg, it, u, status;
	struct thread_result *r = &results[t];
	struct slot *s = &slots[t];
	unsigned int flags;
	void *addr;
	size_t len, i;
	pid_t pid;

	for (it = 0; it < iterations; it++) {
		flags = dir_of[(t + it) % 3] | alloc_of[(t + it / 3) % 3];
		len = sfork_page * (1 + (t + it) % 3);
		addr = NULL;

		r->calls++;
		pid = sfork(len, flags, &addr);
		if (pid < 0) {
			tst_res(TFAIL | TERRNO, "thread %d: sfork(%zu, %s)", t, len,
				sfork_dir_name(flags));
			r->failures++;
			continue;
		}
		if (!pid)
			sfork_child(t, it, addr, len, flags);

		for (u = 0; u < NTHREADS; u++) {
			if (u != t && __atomic_load_n(&slots[u].live, __ATOMIC_ACQUIRE) &&
			    slots[u].addr == addr) {
				tst_res(TFAIL, "thread %d got region %p, live in thread %d",
					t, addr, u);
				r->failures++;
			}
		}
		s->addr = addr;
		s->len = len;
		s->flags = flags;
		__atomic_store_n(&s->live, 1, __ATOMIC_RELEASE);

		if (check_view(addr, len, sfork_parent_writes(flags), "calling thread",
				"its own region"))
			r->bad_parent++;

		SAFE_WAITPID(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			tst_res(TFAIL, "thread %d: sfork child (%s) %s", t,
				sfork_flags_desc(flags), tst_strstatus(status));
			r->bad_children++;
		} else if (sfork_child_writes(flags)) {
			for (i = 0; i < len - 1; i++) {
				if (((unsigned char *)addr)[i] != pattern(i, t, it)) {
					tst_res(TFAIL, "thread %d: byte %zu of its region is not its child's",
						t, i);
					r->bad_data++;
					break;
				}
			}
		}

		__atomic_store_n(&s->live, 0, __ATOMIC_RELEASE);
		SAFE_MUNMAP(addr, len);
	}
	return NULL;
}

/* a fork child of the forking thread: 0 no live region, 1 some, 2 wrong */
static int forker_child(void)
{
	unsigned int seen = 0;
	int bad = count_others_wrong(-1, "fork child of the forking thread", &seen);

	return bad ? 2 : seen ? 1 : 0;
}

static struct sfork_fork_loop forker = { .child = forker_child };

static void run(void)
{
	pthread_t thr[NTHREADS], forker_thr;
	unsigned int calls = 0, fails = 0, bad_children = 0, bad_data = 0, bad_parent = 0;
	struct sfork_counters before;
	long t;

	sfork_counters_save(&before);
	memset(results, 0, sizeof(results));
	memset(slots, 0, sizeof(slots));
	forker.stop = 0;
	forker.none = forker.seen = forker.bad = 0;

	SAFE_PTHREAD_CREATE(&forker_thr, NULL, sfork_fork_loop, &forker);
	for (t = 0; t < NTHREADS; t++)
		SAFE_PTHREAD_CREATE(&thr[t], NULL, sfork_thread, (void *)t);
	for (t = 0; t < NTHREADS; t++)
		SAFE_PTHREAD_JOIN(thr[t], NULL);
	forker.stop = 1;
	SAFE_PTHREAD_JOIN(forker_thr, NULL);

	for (t = 0; t < NTHREADS; t++) {
		calls += results[t].calls;
		fails += results[t].failures;
		bad_children += results[t].bad_children;
		bad_data += results[t].bad_data;
		bad_parent += results[t].bad_parent;
	}

	TST_EXP_EXPR(!fails, "%u concurrent sfork calls from %d threads, each its own region (%u failed or overlapped)",
		     calls, NTHREADS, fails);
	TST_EXP_EXPR(!bad_children && !bad_data,
		     "every sfork child: child's side of its region, parent's side of the others (%u wrong views, %u regions without their child's data)",
		     bad_children, bad_data);
	TST_EXP_EXPR(!bad_parent, "every calling thread has the parent's side (%u without)",
		     bad_parent);
	TST_EXP_EXPR(!forker.bad, "%u children of the fork loop, %u of them with live regions: parent's side only (%u with a wrong view)",
		     forker.none + forker.seen + forker.bad, forker.seen,
		     forker.bad);

	sfork_check_settled(&before, "after the end");
}

static void setup(void)
{
	sfork_test_setup();
	if (tst_parse_int(str_n, &iterations, 1, 100000))
		tst_brk(TBROK, "Invalid -n '%s'", str_n);

	sfork_catch_faults(probe_handler, NULL, NULL);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"n:", &str_n, "sfork calls per thread (default 25)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.needs_root = 1,
	.timeout = 300,
};
