// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Region pages are charged to the memory cgroup and never exceed
 * its memory.max.
 *
 * Adapts the style of LTP's mem/memcg and controllers/memcg tests (a
 * process in a memory cgroup with memory.max allocates beyond it; check
 * memory.events, memory.current and memory.peak) to sfork.  The cgroup has
 * memory.max 32 MiB (memory.swap.max 0); the sfork processes run in it,
 * the test process outside.
 *
 *  0. an eager sfork of 64 MiB fails with ENOMEM and creates nothing: no
 *     child, no new mapping or fd in the caller, regions_live unchanged,
 *     memory.current back where it was; nobody is OOM-killed (oom_kill in
 *     memory.events unchanged, the caller lives on);
 *  1. a lazy 64 MiB region, the child touches it page by page (stores if
 *     it writes, loads if it is the read-only side), 2. the same with the
 *     parent touching: the toucher ends by SIGBUS or by the cgroup's own
 *     OOM kill (SIGKILL with oom_kill in memory.events raised) before it
 *     touched 32 MiB; the other side (oom_score_adj -1000) lives on; a
 *     toucher that is still faulting after 120 s is a failure (livelock);
 *  3. an 8 MiB region within the limit (allocation -a):
 *     sfork succeeds, the writer fills every page and the other side reads
 *     it; memory.current grows by at least 90 % of the region (eager: right
 *     after the call), and drops back after both sides are gone.
 *
 * Throughout, memory.peak (when present) and memory.current never exceed
 * memory.max.  Cases 1 and 2 run for -d (bi, p2c and c2p when not given).
 *
 * A module that charges region pages to no cgroup or to the wrong one, that
 * allocates with __GFP_NOFAIL past the limit, that OOM-kills on an eager
 * failure, or that leaves a half-made region or charge behind fails one of
 * these checks.
 */

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define LIMIT		(32ULL << 20)
#define BIG		(2 * LIMIT)
#define WITHIN		((size_t)8 << 20)
#define TOUCH_TIMEOUT_S	120

#define CP_CHILD	1

/* shared between the test process and the processes in the cgroup */
struct shared {
	volatile size_t touched;	/* pages the toucher got through */
	volatile pid_t child;		/* the sfork child */
	volatile int toucher_done;	/* the toucher touched everything */
	char peak[PATH_MAX];		/* tst_cg's memory.peak */
};

static struct shared *sh;
static int has_peak;
static char peak_path[PATH_MAX];

static unsigned long long cg_val(const char *file)
{
	unsigned long long v;

	SAFE_CG_SCANF(tst_cg, file, "%llu", &v);
	return v;
}

static unsigned long long cg_event(const char *key)
{
	unsigned long long v;
	char fmt[64];

	snprintf(fmt, sizeof(fmt), "%s %%llu", key);
	SAFE_CG_LINES_SCANF(tst_cg, "memory.events", fmt, &v);
	return v;
}

static void check_limits(const char *when)
{
	unsigned long long cur = cg_val("memory.current"), peak = 0;

	if (has_peak)
		SAFE_FILE_SCANF(peak_path, "%llu", &peak);

	if (cur > LIMIT || peak > LIMIT)
		tst_res(TFAIL, "%s: memory.current %llu, memory.peak %llu exceed memory.max %llu",
			when, cur, peak, LIMIT);
	else if (has_peak)
		tst_res(TPASS, "%s: memory.current %llu, memory.peak %llu <= memory.max %llu",
			when, cur, peak, LIMIT);
	else
		tst_res(TPASS, "%s: memory.current %llu <= memory.max %llu",
			when, cur, LIMIT);
}

/* memory.current back to at most before + slack within 2 s */
static unsigned long long current_settles(unsigned long long before,
					  unsigned long long slack)
{
	unsigned long long cur = 0;
	int i;

	for (i = 0; i < 200; i++) {
		cur = cg_val("memory.current");
		if (cur <= before + slack)
			break;
		usleep(10000);
	}
	return cur;
}

static void join_cgroup(void)
{
	SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", getpid());
}

/*
 * tst_cg's memory.peak, by path: LTP's cgroup API does not know the file
 * (SAFE_CG_* would be TBROK there).  A child joins tst_cg and finds it.
 */
static void find_peak_file(void)
{
	pid_t pid;
	int status;

	pid = SAFE_FORK();
	if (!pid) {
		join_cgroup();
		sfork_cg_path("memory.peak", sh->peak, sizeof(sh->peak));
		exit(0);
	}
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("cgroup path reader", status);
	memcpy(peak_path, sh->peak, sizeof(peak_path));
	has_peak = !access(peak_path, R_OK);
}

static void set_oom_score_adj(int adj)
{
	SAFE_FILE_PRINTF("/proc/self/oom_score_adj", "%d", adj);
}

/* waits for pid up to TOUCH_TIMEOUT_S; SIGKILL and -1 when it does not end */
static int wait_bounded(pid_t pid, int *status)
{
	int i;

	for (i = 0; i < TOUCH_TIMEOUT_S * 10; i++) {
		if (SAFE_WAITPID(pid, status, WNOHANG) == pid)
			return 0;
		usleep(100000);
	}
	SAFE_KILL(pid, SIGKILL);
	SAFE_WAITPID(pid, status, 0);
	return -1;
}

/* ---- case 0: eager beyond the limit ---- */

static void eager_too_big(unsigned int flags)
{
	unsigned long long cur_before, oom_before, cur;
	long long regions_before;
	int maps_before, fds_before, status;
	void *addr = NULL;
	pid_t pid;

	join_cgroup();
	flags = (flags & SFORK_DIRECTION_MASK) | SFORK_EAGER;

	maps_before = sfork_count_maps();
	fds_before = sfork_count_fds();
	regions_before = sfork_stat("regions_live");
	cur_before = cg_val("memory.current");
	oom_before = cg_event("oom_kill");

	pid = sfork(BIG, flags, &addr);
	if (!pid)
		exit(0);
	if (pid > 0) {
		tst_res(TFAIL, "eager sfork of %llu bytes in a cgroup limited to %llu succeeded",
			BIG, LIMIT);
		SAFE_WAITPID(pid, &status, 0);
		SAFE_MUNMAP(addr, BIG);
		exit(0);
	}
	if (errno == ENOMEM)
		tst_res(TPASS | TERRNO, "eager sfork of %llu bytes beyond memory.max %llu",
			BIG, LIMIT);
	else
		tst_res(TFAIL | TERRNO, "eager sfork of %llu bytes beyond memory.max: expected ENOMEM",
			BIG);

	TST_EXP_FAIL2(waitpid(-1, &status, WNOHANG), ECHILD,
		      "no child after the failed sfork");
	TST_EXP_EQ_LI(sfork_count_maps(), maps_before);
	TST_EXP_EQ_LI(sfork_count_fds(), fds_before);
	TST_EXP_EQ_LI(sfork_stat_wait("regions_live", regions_before, 2000),
		      regions_before);

	cur = current_settles(cur_before, 1 << 20);
	if (cur <= cur_before + (1 << 20))
		tst_res(TPASS, "memory.current %llu back to about %llu (partial allocation uncharged)",
			cur, cur_before);
	else
		tst_res(TFAIL, "memory.current %llu, was %llu before the failed sfork",
			cur, cur_before);

	TST_EXP_EQ_LU(cg_event("oom_kill"), oom_before);
	check_limits("after the failed eager sfork");
	exit(0);
}

/* ---- cases 1 and 2: lazy beyond the limit, one side touches ---- */

static void touch_all(unsigned char *p, int writes)
{
	size_t npages = BIG / sfork_page, i;
	volatile unsigned char *q;
	unsigned char sum = 0;

	for (i = 0; i < npages; i++) {
		q = p + i * sfork_page;
		if (writes)
			*q = (unsigned char)i | 1;
		else
			sum += *q;
		sh->touched = i + 1;
	}
	(void)sum;
	sh->toucher_done = 1;
}

static void lazy_toucher_side(unsigned int flags, int child_touches)
{
	int child_writes = sfork_child_writes(flags);
	int parent_writes = sfork_parent_writes(flags);
	int status, ret;
	void *addr = NULL;
	pid_t pid, ppid;

	join_cgroup();
	pid = SAFE_SFORK(BIG, (flags & SFORK_DIRECTION_MASK) | SFORK_LAZY, &addr);
	if (!pid) {
		if (child_touches) {
			set_oom_score_adj(1000);
			touch_all(addr, child_writes);
			exit(0);
		}
		/* the other side waits until the toucher (its parent) is gone */
		ppid = getppid();
		set_oom_score_adj(-1000);
		TST_CHECKPOINT_WAKE(CP_CHILD);
		while (getppid() == ppid && !sh->toucher_done)
			usleep(10000);
		exit(0);
	}

	sh->child = pid;
	if (!child_touches) {
		TST_CHECKPOINT_WAIT(CP_CHILD);
		set_oom_score_adj(1000);
		touch_all(addr, parent_writes);
		exit(0);
	}

	/* the parent does not touch; it watches the child */
	set_oom_score_adj(-1000);
	ret = wait_bounded(pid, &status);
	if (ret)
		tst_res(TFAIL, "child toucher still running after %d s (killed): livelock in the fault path?",
			TOUCH_TIMEOUT_S);
	exit(ret ? 2 : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status)));
}

static void judge_toucher(const char *who, int timed_out, int sig, int exited,
			  unsigned long long oom_delta)
{
	size_t touched = sh->touched * sfork_page;

	tst_res(TINFO, "%s touched %zu bytes (%zu pages)", who, touched,
		sh->touched);
	if (timed_out)
		return;
	if (exited || sh->toucher_done) {
		tst_res(TFAIL, "%s touched all %llu bytes in a cgroup limited to %llu",
			who, BIG, LIMIT);
		return;
	}
	if (sig == SIGBUS) {
		tst_res(TPASS, "%s ended by SIGBUS before the limit", who);
	} else if (sig == SIGKILL && oom_delta) {
		tst_res(TPASS, "%s ended by the cgroup's OOM kill (oom_kill +%llu)",
			who, oom_delta);
	} else {
		tst_res(TFAIL, "%s ended by %s (oom_kill +%llu), expected SIGBUS or the cgroup's OOM SIGKILL",
			who, sig ? tst_strsig(sig) : "nothing", oom_delta);
	}
	if (touched > LIMIT)
		tst_res(TFAIL, "%s faulted in %zu bytes, more than memory.max %llu",
			who, touched, LIMIT);
}

static void lazy_beyond(unsigned int flags, int child_touches)
{
	const char *who = child_touches ? "child toucher" : "parent toucher";
	unsigned long long oom_before = cg_event("oom_kill");
	long long regions_before = sfork_stat("regions_live");
	int status, code, sig = 0, exited = 0, timed_out = 0;
	pid_t h;

	memset(sh, 0, sizeof(*sh));

	h = SAFE_FORK();
	if (!h)
		lazy_toucher_side(flags, child_touches);

	if (child_touches) {
		/* h reports the child's end in its exit code */
		SAFE_WAITPID(h, &status, 0);
		if (!WIFEXITED(status)) {
			tst_res(TFAIL, "non-touching parent %s", tst_strstatus(status));
		} else {
			code = WEXITSTATUS(status);
			if (code == 2)
				timed_out = 1;
			else if (code > 128)
				sig = code - 128;
			else
				exited = 1;
			tst_res(TPASS, "non-touching parent survived");
		}
	} else {
		if (wait_bounded(h, &status)) {
			timed_out = 1;
			tst_res(TFAIL, "parent toucher still running after %d s (killed): livelock in the fault path?",
				TOUCH_TIMEOUT_S);
		} else if (WIFSIGNALED(status)) {
			sig = WTERMSIG(status);
		} else {
			exited = 1;
		}
		/* the non-touching child, now ours (subreaper) */
		SAFE_WAITPID(sh->child, &status, 0);
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			tst_res(TPASS, "non-touching child survived");
		else
			tst_res(TFAIL, "non-touching child %s", tst_strstatus(status));
	}

	judge_toucher(who, timed_out, sig, exited,
		      cg_event("oom_kill") - oom_before);
	check_limits("after the lazy region was touched beyond the limit");

	TST_EXP_EQ_LI(sfork_stat_wait("regions_live", regions_before, 2000),
		      regions_before);
}

/* ---- case 3: within the limit ---- */

/* memory.current has grown by at least 90 % of the region since before */
static void check_charged(unsigned long long before, const char *when)
{
	unsigned long long cur = cg_val("memory.current");

	TST_EXP_EXPR(cur >= before + WITHIN * 9 / 10,
		     "memory.current %llu -> %llu %s: at least 90 %% of %zu bytes charged here",
		     before, cur, when, WITHIN);
}

static void within_limit(unsigned int flags)
{
	size_t npages = WITHIN / sfork_page;
	unsigned long long before;
	unsigned char *p;
	void *addr = NULL;
	int status;
	pid_t pid;

	join_cgroup();
	before = cg_val("memory.current");
	pid = SAFE_SFORK(WITHIN, flags, &addr);
	p = addr;
	if (!pid) {
		TST_CHECKPOINT_WAIT(CP_CHILD);
		if (sfork_child_writes(flags))
			sfork_fill(p, 0, WITHIN, 3);
		exit(0);
	}

	if (flags & SFORK_EAGER)
		check_charged(before, "right after an eager sfork");

	if (sfork_parent_writes(flags))
		sfork_fill(p, 0, WITHIN, 3);
	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	if (!sfork_check_fill(p, 0, WITHIN, 3, "after the writer filled the region"))
		tst_res(TPASS, "%zu pages written and read within the limit", npages);

	check_charged(before, "with the region filled");
	check_limits("region within the limit, filled");

	SAFE_MUNMAP(addr, WITHIN);
	exit(0);
}

static void in_helper(void (*fn)(unsigned int), unsigned int flags)
{
	unsigned long long before = cg_val("memory.current"), cur;
	int status;
	pid_t h;

	h = SAFE_FORK();
	if (!h)
		fn(flags);
	SAFE_WAITPID(h, &status, 0);
	sfork_check_exit0("process in the cgroup", status);

	cur = current_settles(before, 1 << 20);
	if (cur > before + (1 << 20))
		tst_res(TFAIL, "memory.current %llu after everything ended, %llu before",
			cur, before);
}

static void lazy_beyond_case(unsigned int n, unsigned int flags)
{
	lazy_beyond(flags & SFORK_DIRECTION_MASK, n == 1);
}

static void within_case(unsigned int n, unsigned int flags)
{
	(void)n;
	tst_res(TINFO, "region of %zu bytes within memory.max", WITHIN);
	in_helper(within_limit, flags);
}

static void run(unsigned int n)
{
	switch (n) {
	case 0:
		tst_res(TINFO, "eager sfork beyond memory.max");
		in_helper(eager_too_big, sfork_dirs[0]);
		break;
	case 1:
		sfork_for_each_dir_case(n, "lazy region beyond memory.max, the child touches",
					lazy_beyond_case);
		break;
	case 2:
		sfork_for_each_dir_case(n, "lazy region beyond memory.max, the parent touches",
					lazy_beyond_case);
		break;
	case 3:
		sfork_for_each_dir_case(n, "within memory.max", within_case);
		break;
	}
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);

	if (sfork_param("max_region_bytes") < BIG)
		tst_brk(TCONF, "max_region_bytes below %llu", BIG);

	SAFE_CG_PRINTF(tst_cg, "memory.max", "%llu", LIMIT);
	if (SAFE_CG_HAS(tst_cg, "memory.swap.max"))
		SAFE_CG_PRINT(tst_cg, "memory.swap.max", "0");
	sh = sfork_shared_alloc(sizeof(*sh));
	find_peak_file();
	tst_res(TINFO, "memory.peak: %s", has_peak ? peak_path : "none");

	/* an orphaned sfork child (its parent touched and died) becomes ours */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		tst_brk(TBROK | TERRNO, "prctl(PR_SET_CHILD_SUBREAPER)");
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = sfork_test_cleanup,
	.test = run,
	.tcnt = 4,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.needs_cgroup_ctrls = (const char *const []){ "memory", NULL },
	.timeout = 600,
};
