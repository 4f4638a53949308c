// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress kill: SIGKILL children, parents and whole groups in the middle
 * of faulting a region in (or of an eager sfork); the survivors must see
 * the data written before the kill, and everything must be reaped.
 */
#include "stress.h"

/* ---- kill ---------------------------------------------------------------- */

enum {
	K_PARENT_KILLS_CHILD,	/* P kills its touching child at a page count */
	K_KILL_PARENT,		/* we kill P while its child touches; maybe the child too */
	K_KILL_PARENT_TOUCHING,	/* we kill P while it touches; the child checks the data */
	K_KILL_GROUP,		/* we kill P and its touching child at once */
	K_KILL_IN_EAGER,	/* we kill both after a random delay (eager sfork) */
	K_NKINDS
};

static const char *const kind_name[K_NKINDS] = {
	"parent kills child", "parent killed", "parent killed while touching",
	"group killed", "killed around an eager sfork",
};

struct kslot {
	/* shared with the episode's processes */
	_Atomic long progress;		/* pages the toucher is done with */
	_Atomic int child;		/* the sfork child's pid, once P knows it */
	_Atomic int child_reaped;	/* P reaped its child itself */
	_Atomic int killed_mid;		/* P killed the child before it finished */
	_Atomic int in_sfork;		/* P has called sfork() */
	/* ours */
	pid_t p;
	int kind, dir, active, p_reaped, c_reaped, p_killed, c_killed;
	long target, target2;
	double t0, kill_at;
	uint64_t seed;
};

/* Pages below @done must hold the pattern, pages above @upto must be zero. */
static int check_pages(const char *base, long npages, uint64_t seed, long done, long upto,
		       struct rng *r)
{
	for (int i = 0; i < 16 && done > 0; i++) {
		long p = i == 0 ? done - 1 : (long)below(r, done);

		if (*(volatile const uint64_t *)(base + kword_off(p)) != kval(seed, p))
			return E_MISMATCH;
	}
	for (int i = 0; i < 4 && upto + 1 < npages; i++) {
		long p = upto + 1 + below(r, npages - upto - 1);

		if (*(volatile const uint64_t *)(base + kword_off(p)))
			return E_NOTZERO;
	}
	return 0;
}

/* The orphan-to-be of K_KILL_PARENT_TOUCHING: wait for P to die, check its data. */
static int watcher_child(char *base, long npages, uint64_t seed, struct kslot *s, pid_t parent)
{
	double end = now_s() + 120;
	struct rng r;
	long done;

	while (getppid() == parent) {
		if (now_s() > end)
			return E_TIMEOUT;
		sleep_us(1000);
	}
	done = atomic_load_explicit(&s->progress, memory_order_acquire);
	rng_init(&r, seed, 7);
	/* Page done may or may not hold its word: P died around it. */
	return check_pages(base, npages, seed, done, done, &r);
}

/*
 * Wait for our child, tell the main process it is ours (so it never takes
 * a recycled pid for it), then let the pid go.
 */
static void leader_reap(struct kslot *s, pid_t c, int *st)
{
	siginfo_t si;

	while (waitid(P_PID, c, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	atomic_store(&s->child_reaped, 1);
	while (waitpid(c, st, 0) < 0 && errno == EINTR)
		;
}

static int kill_leader(struct kslot *s, long npages)
{
	int alloc = s->kind == K_KILL_IN_EAGER ? SFORK_EAGER : SFORK_LAZY, st, r;
	pid_t me = getpid(), c;
	void *addr = NULL;
	struct rng rr;

	setpgid(0, 0);
	atomic_store(&s->in_sfork, 1);
	c = sfork(npages * PAGE, dir_flag[s->dir] | alloc, &addr);
	if (c < 0) {
		fprintf(stderr, "sfork-stress kill: sfork(%ld pages, %s): %s\n", npages,
			dir_name[s->dir], strerror(errno));
		return E_SFORK;
	}
	if (c == 0) {
		if (s->kind == K_KILL_PARENT_TOUCHING)
			_exit(watcher_child(addr, npages, s->seed, s, me));
		_exit(touch_pages(addr, npages, child_writes(s->dir), s->seed, &s->progress));
	}
	atomic_store(&s->child, c);
	rng_init(&rr, s->seed, 3);

	switch (s->kind) {
	case K_PARENT_KILLS_CHILD: {
		long at, fin;

		while (atomic_load(&s->progress) < s->target && waitpid(c, &st, WNOHANG) == 0)
			sched_yield();
		at = atomic_load(&s->progress);
		kill(c, SIGKILL);
		leader_reap(s, c, &st);
		fin = atomic_load(&s->progress);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			atomic_store(&s->killed_mid, fin < npages);
		else if (!WIFEXITED(st) || WEXITSTATUS(st) || fin != npages)
			return E_CHILD_STATUS;
		/* What the killed writer wrote is there; what it never reached is zero. */
		if (child_writes(s->dir))
			return check_pages(addr, npages, s->seed, at, fin, &rr);
		return 0;
	}
	case K_KILL_PARENT_TOUCHING: {
		double end = now_s() + 120;

		touch_pages(addr, npages, 1, s->seed, &s->progress);
		/* Done before the kill came: wait for it. */
		while (now_s() < end)
			sleep_us(10000);
		kill(c, SIGKILL);
		return E_TIMEOUT;
	}
	default:
		leader_reap(s, c, &st);
		/* We are alive, so nobody killed us or our group: the child must have finished. */
		if (WIFSIGNALED(st)) {
			fprintf(stderr, "sfork-stress kill: %s child killed by signal %d\n",
				dir_name[s->dir], WTERMSIG(st));
			return E_CHILD_STATUS;
		}
		r = WEXITSTATUS(st);
		return r;
	}
}

struct kill_counts {
	long kinds[K_NKINDS], child_mid, child_done_first, parents_killed, groups_killed,
	     orphans, strays, pages, in_sfork;
};

static void kill_start(struct kslot *s, int idx, struct rng *r, long npages, uint64_t seed)
{
	pid_t pid;

	s->kind = below(r, K_NKINDS);
	s->dir = s->kind == K_KILL_PARENT_TOUCHING ? (below(r, 2) ? D_BI : D_P2C) : below(r, 3);
	s->target = 1 + below(r, npages - 1);
	s->target2 = below(r, 2) ? s->target + below(r, npages - s->target) : 0;
	s->seed = mix64(seed ^ (uint64_t)idx << 20);
	s->t0 = now_s();
	s->kill_at = s->t0 + below(r, 400) / 1000.0;
	s->active = 1;
	/* The slot is shared: only we may store the pid in it, never the child. */
	pid = fork();
	if (pid == 0)
		_exit(kill_leader(s, npages));
	if (pid > 0)
		setpgid(pid, pid);
	s->p = pid;
}

/* What a stuck process is doing, for the log. */
static void dump_proc(pid_t pid)
{
	static const char *const files[] = { "stat", "wchan", "syscall", "stack" };
	char path[64], buf[4096];

	if (pid <= 0)
		return;
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
			snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[i]);
			if (read_str(path, buf, sizeof(buf)) == 0)
				fprintf(stderr, "  %s: %s%s", path, buf,
					buf[0] && buf[strlen(buf) - 1] == '\n' ? "" : "\n");
		}
		fprintf(stderr, "  %s faults %ld\n", STATS, stat_get("faults"));
		if (k == 0)
			sleep_us(1000000);
	}
}

/* SIGKILL one process (@pid > 1) or one of our episode groups (-@pid); never ourselves. */
static void kill_one(pid_t pid)
{
	if (pid > 1 || (pid < -1 && -pid != getpgrp()))
		kill(pid, SIGKILL);
}

int mode_kill(long n, int c, size_t size, uint64_t seed)
{
	long npages = size / PAGE, next = 0, active = 0;
	struct kslot *slots = mmap(NULL, n * sizeof(*slots), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct kill_counts kc = { 0 };
	double t0 = now_s(), last = t0;
	struct rng r;
	int bad = 0;

	if (slots == MAP_FAILED || npages < 2) {
		failf("bad size or mmap: %s", strerror(errno));
		return 1;
	}
	rng_init(&r, seed, 99);
	info("%ld episodes, %d at once, lazy regions of %zu MiB touched page by page (seed %lu)",
	     n, c, size >> 20, (unsigned long)seed);
	while ((next < n || active > 0) && !bad) {
		int st, busy = 0;
		pid_t pid;

		while (active < c && next < n) {
			kill_start(&slots[next], next, &r, npages, seed);
			if (slots[next].p < 0) {
				failf("fork: %s", strerror(errno));
				bad = 1;
				break;
			}
			kc.kinds[slots[next].kind]++;
			next++;
			active++;
		}
		for (long i = 0; i < next; i++) {
			struct kslot *s = &slots[i];
			long prog;
			pid_t ch;

			if (!s->active)
				continue;
			prog = atomic_load(&s->progress);
			ch = atomic_load(&s->child);
			switch (s->kind) {
			case K_KILL_PARENT:
			case K_KILL_PARENT_TOUCHING:
				if (!s->p_killed && prog >= s->target) {
					kill_one(s->p);
					s->p_killed = 1;
					kc.parents_killed++;
					if (s->kind == K_KILL_PARENT_TOUCHING && prog < npages)
						kc.child_mid++;	/* the toucher is P here */
				}
				/* Only once P is reaped: the orphan is then ours, its pid reserved. */
				if (s->kind == K_KILL_PARENT && s->p_reaped && s->target2 &&
				    !s->c_killed && ch > 0 && prog >= s->target2 && !s->c_reaped &&
				    !atomic_load(&s->child_reaped)) {
					kill_one(ch);
					s->c_killed = 1;
					if (prog < npages)
						kc.child_mid++;
				}
				break;
			case K_KILL_GROUP:
				if (!s->p_killed && prog >= s->target) {
					kill_one(-s->p);
					s->p_killed = s->c_killed = 1;
					kc.groups_killed++;
					if (prog < npages)
						kc.child_mid++;
				}
				break;
			case K_KILL_IN_EAGER:
				if (!s->p_killed && now_s() >= s->kill_at) {
					kill_one(-s->p);
					s->p_killed = s->c_killed = 1;
					kc.groups_killed++;
				}
				break;
			}
			if (now_s() - s->t0 > 180) {
				failf("episode %ld (%s, %s, %s) still running after 180 s: progress %ld of %ld, "
				      "target %ld/%ld, leader %d%s%s, child %d%s%s%s", i, kind_name[s->kind],
				      dir_name[s->dir], s->kind == K_KILL_IN_EAGER ? "eager" : "lazy",
				      prog, npages, s->target, s->target2, s->p,
				      s->p_killed ? " killed" : "", s->p_reaped ? " reaped" : "", ch,
				      s->c_killed ? " killed" : "", s->c_reaped ? " reaped by us" : "",
				      atomic_load(&s->child_reaped) ? " reaped by leader" : "");
				dump_proc(s->p);
				dump_proc(ch);
				kill_one(-s->p);
				bad = 1;
			}
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			struct kslot *s = NULL;
			int is_p = 0;

			busy = 1;
			for (long i = 0; i < next && !s; i++) {
				if (!slots[i].active)
					continue;
				if (slots[i].p == pid && !slots[i].p_reaped)
					s = &slots[i], is_p = 1;
				/* child_reaped is set before the leader lets the pid go. */
				else if (atomic_load(&slots[i].child) == pid && !slots[i].c_reaped &&
					 !atomic_load(&slots[i].child_reaped))
					s = &slots[i];
			}
			if (!s) {
				kc.strays++;	/* a child whose leader died before it knew its pid */
				continue;
			}
			if (is_p) {
				s->p_reaped = 1;
				if (WIFEXITED(st) && WEXITSTATUS(st)) {
					failf("%s episode (%s): leader: %s", kind_name[s->kind],
					      dir_name[s->dir], code_name(WEXITSTATUS(st)));
					bad = 1;
				} else if (WIFSIGNALED(st) && !(s->p_killed && WTERMSIG(st) == SIGKILL)) {
					failf("%s episode: leader killed by signal %d", kind_name[s->kind],
					      WTERMSIG(st));
					bad = 1;
				}
				if (s->p_killed && atomic_load(&s->in_sfork) && !atomic_load(&s->child))
					kc.in_sfork++;	/* killed before sfork returned in it */
				if (atomic_load(&s->killed_mid))
					kc.child_mid++;
				else if (s->kind == K_PARENT_KILLS_CHILD)
					kc.child_done_first++;
			} else {
				s->c_reaped = 1;
				kc.orphans++;
				if (WIFEXITED(st) && WEXITSTATUS(st)) {
					failf("%s episode (%s): orphaned child: %s", kind_name[s->kind],
					      dir_name[s->dir], code_name(WEXITSTATUS(st)));
					bad = 1;
				} else if (WIFSIGNALED(st) && !(s->c_killed && WTERMSIG(st) == SIGKILL)) {
					failf("%s episode: orphaned child killed by signal %d",
					      kind_name[s->kind], WTERMSIG(st));
					bad = 1;
				}
			}
			if (s->p_reaped && (s->c_reaped || atomic_load(&s->child_reaped) ||
					    atomic_load(&s->child) == 0)) {
				s->active = 0;
				active--;
				kc.pages += atomic_load(&s->progress);
			}
		}
		if (verbose && now_s() - last > 10) {
			last = now_s();
			info("... %ld episodes started, %ld running", next, active);
		}
		if (!busy)
			sleep_us(300);
	}
	if (bad)
		kill_all_children();
	if (reap_all(120, &kc.strays)) {
		failf("processes left after 120 s");
		bad = 1;
	}
	info("%ld episodes (%ld parent-kills-child, %ld parent killed, %ld parent killed while "
	     "touching, %ld group killed, %ld killed around an eager sfork): %ld touchers killed "
	     "mid-fault, %ld children done before the kill, %ld parents and %ld groups "
	     "SIGKILLed (%ld leaders before sfork returned in them), %ld orphans and %ld strays "
	     "reaped, %ld pages touched, %.1f s: %s",
	     next, kc.kinds[0], kc.kinds[1], kc.kinds[2], kc.kinds[3], kc.kinds[4], kc.child_mid,
	     kc.child_done_first, kc.parents_killed, kc.groups_killed, kc.in_sfork, kc.orphans,
	     kc.strays,
	     kc.pages, now_s() - t0, bad ? "FAILED" : "ok");
	munmap(slots, n * sizeof(*slots));
	return bad;
}
