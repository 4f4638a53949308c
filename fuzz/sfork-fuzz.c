// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-fuzz: a seeded, reproducible fuzzer of the /dev/sfork interface.
 *
 * Workers (processes, each with threads) draw operations from a per-thread
 * PRNG seeded from (seed, worker, thread): random ioctl numbers and
 * arguments, CREATE with random lengths and flags, mmap of the device with
 * random lengths/offsets/protections/flags, sfork() itself, and on the
 * regions it made: loads and stores, munmap, mremap, mprotect, madvise,
 * plain fork, exit and kill, and on a region's exported descriptor: seals,
 * ftruncate, fallocate, write, mmap and a reopen through /proc/self/fd.
 * With -p 1 -t 1 a seed replays exactly.
 *
 * The oracle is small and exact: a store into a region this process holds
 * read-only must fault, a store into a writable one must not, and argument
 * errors must be the contract's.  Kernel-side damage (BUG, WARNING, leaks)
 * is what the harness looks for around the run.
 *
 * Usage: sfork-fuzz [-s seed] [-n ops] [-p procs] [-t threads] [-v [-v]]
 * (-v: progress; -v -v: every operation, for replaying a failing seed)
 * Exit: 0 clean, 1 an oracle failed (the line says which seed and op).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sfork.h>

#include "probe.h"
#include "rng.h"

#define MAX_REGIONS	8
#define MAX_FDS		4
#define PAGE		4096UL

struct region {
	char *addr;
	size_t len;
	int writable;
	int dontfork;	/* MADV_DONTFORK was applied to some of it */
};

struct worker {
	struct rng rng;
	unsigned long seed;
	int id;
	long ops;
	struct region reg[MAX_REGIONS];
	int fds[MAX_FDS];
	long done;
	int in_child;
};

static int verbose;
static volatile sig_atomic_t failed;

/* The /proc/self/maps line holding @p, for a failure message. */
static void maps_line(const void *p, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long a = (unsigned long)p, lo, hi;
	char line[200];

	snprintf(out, n, "not mapped");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, n, "%s", line);
			break;
		}
	if (f)
		fclose(f);
}

static void fail(struct worker *w, const char *what)
{
	fprintf(stderr, "sfork-fuzz: FAIL seed=%lu worker=%d op=%ld: %s\n",
		w->seed, w->id, w->done, what);
	failed = 1;
}

/* 0: the access went through; else the SIGSEGV si_code, or -1 for SIGBUS. */
static int try_access(char *p, int store)
{
	struct probe pr;

	if (!probe_access(p, store, 0x5a, &pr))
		return 0;
	return pr.sig == SIGSEGV ? pr.code : -1;
}

static size_t pick_len(struct worker *w)
{
	switch (below(&w->rng, 8)) {
	case 0:
		return below(&w->rng, 3 * PAGE) + 1;
	case 1:
		return (below(&w->rng, 64) + 1) * PAGE;
	case 2:
		return (below(&w->rng, 16) + 1) << 20;
	case 3:
		return 0;
	case 4:
		return rnd(&w->rng);
	default:
		return (below(&w->rng, 4) + 1) * PAGE;
	}
}

static unsigned int pick_flags(struct worker *w)
{
	static const unsigned int dirs[] = { SFORK_BIDIRECTIONAL,
		SFORK_PARENT_TO_CHILD, SFORK_CHILD_TO_PARENT };
	static const unsigned int allocs[] = { 0, SFORK_LAZY, SFORK_EAGER };

	if (!below(&w->rng, 10))
		return (unsigned int)rnd(&w->rng);
	return dirs[below(&w->rng, 3)] | allocs[below(&w->rng, 3)];
}

static int valid_flags(unsigned int f)
{
	unsigned int d = f & SFORK_DIRECTION_MASK;

	return !(f & ~SFORK_VALID_FLAGS) && d && !(d & (d - 1)) &&
	       (f & SFORK_ALLOC_MASK) != SFORK_ALLOC_MASK;
}

static struct region *slot(struct worker *w, int empty)
{
	int i = below(&w->rng, MAX_REGIONS), n;

	for (n = 0; n < MAX_REGIONS; n++, i = (i + 1) % MAX_REGIONS)
		if ((w->reg[i].addr == NULL) == empty)
			return &w->reg[i];
	return NULL;
}

static void forget(struct region *r)
{
	memset(r, 0, sizeof(*r));
}

static void op_raw_ioctl(struct worker *w)
{
	unsigned char buf[64];
	unsigned long cmd;
	void *arg;
	int fd = w->fds[below(&w->rng, MAX_FDS)];

	if (fd < 0)
		return;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = rnd(&w->rng);
	cmd = below(&w->rng, 2) ? SFORK_IOC_CREATE : (unsigned long)rnd(&w->rng);
	if (below(&w->rng, 4) == 0)
		cmd = _IOC(below(&w->rng, 4), SFORK_IOC_MAGIC, below(&w->rng, 4), below(&w->rng, 64));
	switch (below(&w->rng, 4)) {
	case 0:
		arg = NULL;
		break;
	case 1:
		arg = (void *)(uintptr_t)rnd(&w->rng);
		break;
	default:
		arg = buf;
	}
	/* A raw CREATE may map a region this worker cannot track: unmap it. */
	if (ioctl(fd, cmd, arg) == 0 && cmd == SFORK_IOC_CREATE && arg == buf) {
		struct sfork_create *c = (void *)buf;

		munmap((void *)(uintptr_t)c->addr, c->size);
	}
}

static void op_open_close(struct worker *w)
{
	int *fd = &w->fds[below(&w->rng, MAX_FDS)];

	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	} else {
		*fd = open(SFORK_DEVICE, O_RDWR | O_CLOEXEC);
	}
}

static void op_mmap_dev(struct worker *w)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE,
		PROT_WRITE };
	int fd = w->fds[below(&w->rng, MAX_FDS)];
	size_t len = pick_len(w);
	void *p;

	if (fd < 0)
		return;
	p = mmap(NULL, len, prots[below(&w->rng, 4)],
		 below(&w->rng, 4) ? MAP_SHARED : MAP_PRIVATE, fd,
		 (off_t)(below(&w->rng, 3) * PAGE));
	/* A region is mapped only by its ioctl: mmap must always fail. */
	if (p != MAP_FAILED) {
		fail(w, "mmap of /dev/sfork succeeded");
		munmap(p, len);
	}
}

static void child_life(struct worker *w, struct region *r, int writable);

static void op_sfork(struct worker *w)
{
	struct region *r = slot(w, 1);
	unsigned int flags = pick_flags(w);
	size_t len = pick_len(w);
	void *addr = NULL, **ap = below(&w->rng, 20) ? &addr : NULL;
	int valid;
	pid_t pid;

	if (!r)
		return;
	if (len > (64UL << 20) && below(&w->rng, 8))
		len = PAGE;
	valid = valid_flags(flags) && len && ap;
	pid = sfork(len, flags, ap);
	if (pid < 0) {
		if (valid ? errno == EINVAL : errno != EINVAL)
			fail(w, valid ? "valid sfork failed with EINVAL" :
			     "invalid sfork did not fail with EINVAL");
		return;
	}
	if (!valid)
		fail(w, "invalid sfork arguments accepted");
	if (pid == 0) {
		struct region mine = { .addr = addr, .len = len };

		child_life(w, &mine,
			   (flags & (SFORK_BIDIRECTIONAL | SFORK_CHILD_TO_PARENT)) != 0);
		_exit(failed);
	}
	r->addr = addr;
	r->len = (len + PAGE - 1) & ~(PAGE - 1);
	r->writable = (flags & (SFORK_BIDIRECTIONAL | SFORK_PARENT_TO_CHILD)) != 0;
	if (below(&w->rng, 3) == 0)
		kill(pid, SIGKILL);
}

static void op_touch(struct worker *w, struct region *r)
{
	char *p = r->addr + below(&w->rng, r->len);
	int store = below(&w->rng, 2), ret = try_access(p, store);

	/* A plain fork's child lacks the pages MADV_DONTFORK covered. */
	if (ret == SEGV_MAPERR && r->dontfork && w->in_child)
		return;
	char what[600], maps[256];

	if (store && !r->writable && ret != SEGV_ACCERR) {
		snprintf(what, sizeof(what), "store to a read-only side: %s (si_code %d) at %p, region %p+%zu, in %s",
			 ret ? "wrong fault" : "succeeded", ret, p, r->addr, r->len,
			 w->in_child ? "child" : "parent");
		fail(w, what);
	} else if (ret && (r->writable || !store)) {
		maps_line(p, maps, sizeof(maps));
		snprintf(what, sizeof(what), "%s faulted (si_code %d) at %p, region %p+%zu %s, in %s; maps: %s",
			 store ? "store" : "load", ret, p, r->addr, r->len,
			 r->writable ? "rw" : "ro", w->in_child ? "child" : "parent", maps);
		fail(w, what);
	}
}

static void op_mprotect(struct worker *w, struct region *r)
{
	size_t off = below(&w->rng, r->len / PAGE) * PAGE;
	int prot = below(&w->rng, 2) ? PROT_READ | PROT_WRITE : PROT_READ;

	if (mprotect(r->addr + off, PAGE, prot) == 0 && (prot & PROT_WRITE) &&
	    !r->writable)
		fail(w, "mprotect(PROT_WRITE) on a read-only side succeeded");
	/* Leave the page readable again so the oracle stays simple. */
	mprotect(r->addr + off, PAGE, r->writable ? PROT_READ | PROT_WRITE : PROT_READ);
}

static void op_madvise(struct worker *w, struct region *r)
{
	static const int advice[] = { MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
		MADV_WILLNEED, MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK,
		MADV_DOFORK, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE,
		MADV_NOHUGEPAGE, MADV_DONTDUMP, MADV_DODUMP, MADV_WIPEONFORK,
		MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, 22 /* POPULATE_READ */,
		23 /* POPULATE_WRITE */, 25 /* COLLAPSE */ };
	size_t off = below(&w->rng, r->len / PAGE) * PAGE;
	int adv = advice[below(&w->rng, sizeof(advice) / sizeof(*advice))];

	/* Data retention under each advice is sfork07's job; here: no crash. */
	if (madvise(r->addr + off, PAGE, adv) == 0 && adv == MADV_DONTFORK)
		r->dontfork = 1;
}

/*
 * File operations on a region's descriptor.  None may change the region's
 * size or data, and none may map a read-only side writable.
 */
static void op_region_fd(struct worker *w, struct region *r)
{
	static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE,
		PROT_WRITE };
	char buf[4] = "fuzz", path[64];
	int fd, fd2, prot, mflags;
	size_t len;
	void *p;

	fd = sfork_region_fd(r->addr, below(&w->rng, 2) ? O_CLOEXEC : 0);
	if (fd < 0)
		return;	/* armed, or the address was moved or unmapped */

	switch (below(&w->rng, 6)) {
	case 0:
		if (fcntl(fd, F_ADD_SEALS, (int)below(&w->rng, 32)) == 0)
			fail(w, "F_ADD_SEALS on a region's descriptor succeeded");
		if (fcntl(fd, F_GET_SEALS) != -1)
			fail(w, "F_GET_SEALS on a region's descriptor succeeded");
		break;
	case 1:
		if (ftruncate(fd, (off_t)below(&w->rng, 4) * PAGE) == 0)
			fail(w, "ftruncate of a region's descriptor succeeded");
		break;
	case 2:
		if (fallocate(fd, below(&w->rng, 2) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : 0,
			      0, (off_t)r->len) == 0)
			fail(w, "fallocate on a region's descriptor succeeded");
		break;
	case 3:
		if (pwrite(fd, buf, sizeof(buf), 0) > 0)
			fail(w, "write to a region's descriptor succeeded");
		break;
	case 4:
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fd2 = open(path, below(&w->rng, 2) ? O_RDWR : O_RDONLY);
		if (fd2 >= 0) {
			p = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
			if (p != MAP_FAILED) {
				fail(w, "a reopened region descriptor mapped writable");
				munmap(p, r->len);
			}
			close(fd2);
		}
		break;
	default:
		prot = prots[below(&w->rng, 4)];
		mflags = below(&w->rng, 4) ? MAP_SHARED : MAP_PRIVATE;
		len = below(&w->rng, 8) ? r->len : pick_len(w);
		p = mmap(NULL, len, prot, mflags, fd, 0);
		if (p == MAP_FAILED)
			break;
		if ((prot & PROT_WRITE) && mflags == MAP_SHARED && !r->writable)
			fail(w, "a read-only side's descriptor mapped writable");
		else if ((prot & PROT_WRITE) && mflags == MAP_SHARED &&
			 try_access(p, 1))
			fail(w, "store through a writable side's new mapping faulted");
		munmap(p, len);
	}
	close(fd);
}

static void op_unmap_or_move(struct worker *w, struct region *r)
{
	size_t pages = r->len / PAGE;
	void *p;

	switch (below(&w->rng, 4)) {
	case 0:
		munmap(r->addr, r->len);
		forget(r);
		break;
	case 1:
		/* Unmap the tail: what stays is still the same side. */
		if (pages > 1) {
			size_t keep = (below(&w->rng, pages - 1) + 1) * PAGE;

			munmap(r->addr + keep, r->len - keep);
			r->len = keep;
		}
		break;
	case 2:
		/* Growing is refused (VM_DONTEXPAND): the region stays. */
		p = mremap(r->addr, r->len, r->len + PAGE, MREMAP_MAYMOVE);
		if (p != MAP_FAILED)
			fail(w, "mremap grew a region");
		break;
	default:
		/* Move it onto a reserved range. */
		p = mmap(NULL, r->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		/*
		 * A failed MREMAP_FIXED may already have unmapped the target,
		 * and another thread may have mapped something there since:
		 * leave the (PROT_NONE, free) reservation rather than risk
		 * unmapping someone else's region.
		 */
		if (mremap(r->addr, r->len, r->len, MREMAP_MAYMOVE | MREMAP_FIXED, p) == p)
			r->addr = p;
	}
}

static void op_plain_fork(struct worker *w)
{
	struct region *r = slot(w, 0);
	pid_t pid = fork();

	if (pid == 0) {
		/* A plain fork inherits the forking side's view. */
		if (r)
			child_life(w, r, r->writable);
		_exit(failed);
	}
	if (pid > 0 && below(&w->rng, 2))
		kill(pid, SIGKILL);
}

static void reap(struct worker *w)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (WIFEXITED(status) && WEXITSTATUS(status))
			fail(w, "a child saw an oracle failure");
}

static void child_life(struct worker *w, struct region *r, int writable)
{
	int n = below(&w->rng, 16);

	w->in_child = 1;
	r->writable = writable;
	while (n--) {
		if (below(&w->rng, 4) == 0)
			op_mprotect(w, r);
		else
			op_touch(w, r);
	}
}

static void one_op(struct worker *w)
{
	struct region *r = slot(w, 0);
	int op = below(&w->rng, 16);

	if (verbose > 1)
		fprintf(stderr, "worker %d op %ld: %d%s\n", w->id, w->done, op,
			r ? (r->writable ? " rw" : " ro") : "");
	switch (op) {
	case 0:
		op_open_close(w);
		break;
	case 1:
		op_raw_ioctl(w);
		break;
	case 2:
		op_mmap_dev(w);
		break;
	case 3:
	case 4:
		op_sfork(w);
		break;
	case 5:
		if (r)
			op_mprotect(w, r);
		break;
	case 6:
		if (r)
			op_madvise(w, r);
		break;
	case 7:
		if (r)
			op_unmap_or_move(w, r);
		break;
	case 8:
		op_plain_fork(w);
		break;
	case 9:
		if (r)
			op_region_fd(w, r);
		break;
	default:
		if (r)
			op_touch(w, r);
	}
	reap(w);
}

static void *run_thread(void *arg)
{
	struct worker *w = arg;

	for (w->done = 0; w->done < w->ops && !failed; w->done++) {
		one_op(w);
		if (verbose && w->done % 10000 == 0)
			fprintf(stderr, "worker %d: %ld ops\n", w->id, w->done);
	}
	return NULL;
}

/*
 * Threads of one process share its regions; to keep the oracle exact each
 * thread works on its own region table, so a thread's munmap never pulls a
 * region from under another thread's table.
 */
static int run_process(unsigned long seed, int proc, int threads, long ops)
{
	struct worker *ws = calloc(threads, sizeof(*ws));
	pthread_t *tids = calloc(threads, sizeof(*tids));
	int i, j;

	if (!ws || !tids)
		return 2;
	probe_install();
	for (i = 0; i < threads; i++) {
		ws[i].seed = seed;
		ws[i].id = proc * 100 + i;
		ws[i].rng.s = (seed + 1) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(ws[i].id + 1) << 32;
		ws[i].ops = ops;
		for (j = 0; j < MAX_FDS; j++)
			ws[i].fds[j] = -1;
	}
	if (threads == 1) {
		run_thread(&ws[0]);
	} else {
		for (i = 0; i < threads; i++)
			pthread_create(&tids[i], NULL, run_thread, &ws[i]);
		for (i = 0; i < threads; i++)
			pthread_join(tids[i], NULL);
	}
	while (wait(NULL) > 0)
		;
	return failed;
}

int main(int argc, char **argv)
{
	unsigned long seed = 1;
	long ops = 10000;
	int procs = 2, threads = 2, opt, i, status, ret = 0;

	while ((opt = getopt(argc, argv, "s:n:p:t:v")) != -1) {
		switch (opt) {
		case 's':
			seed = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			ops = strtol(optarg, NULL, 0);
			break;
		case 'p':
			procs = atoi(optarg);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'v':
			verbose++;
			break;
		default:
			fprintf(stderr, "usage: %s [-s seed] [-n ops] [-p procs] [-t threads] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	if (procs < 1 || threads < 1 || ops < 0) {
		fprintf(stderr, "sfork-fuzz: -p and -t must be >= 1, -n >= 0\n");
		return 2;
	}
	ops /= (long)procs * threads;
	printf("sfork-fuzz: seed=%lu procs=%d threads=%d ops/thread=%ld\n",
	       seed, procs, threads, ops);
	fflush(stdout);
	for (i = 0; i < procs; i++)
		if (fork() == 0)
			_exit(run_process(seed, i, threads, ops));
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			ret = 1;
	printf("sfork-fuzz: %ld operations, %s\n", ops * procs * threads,
	       ret ? "FAILED (see lines above; rerun with this seed, -p 1 -t 1 to replay)" :
	       "no oracle failure");
	return ret;
}
