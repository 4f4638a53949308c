// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress: load tests of sfork(3) and the sfork module.
 *
 *   sfork-stress pairs   [-n 10000] [-c 64]  many parent/child pairs alive at once
 *   sfork-stress threads [-t 8] [-n 2000]    threads of one process sforking concurrently
 *   sfork-stress kill    [-n 500] [-c 4] [-S 64M]
 *                                            SIGKILL children (and parents) mid-fault
 *   sfork-stress oom     [-n 20] [-l 32M] [-S 64M]
 *                                            regions beyond a memory cgroup's limit
 *   sfork-stress unload  [-n 200] [-m sfork.ko]
 *                                            module unload attempts while regions live
 *   sfork-stress all                         a short run of each (CI)
 *
 * Common options: -s SEED (default 1), -v (progress), -T SECONDS (watchdog:
 * the mode fails if it runs longer; unload mode reloads the module first).
 *
 * Every mode verifies what it can see from user space (data, permissions,
 * exit statuses, errno values) and prints what it did; it exits 0 when all
 * went as the contract says, 1 otherwise (the lines above say what went
 * wrong).  Kernel-side damage (WARN, BUG, leaks) is for the harness and
 * for fuzz/leakcheck, which this program is meant to run under.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sfork.h>

#define PAGE		4096UL
#define STATS		"/sys/kernel/debug/sfork/stats"
#define CGROOT		"/sys/fs/cgroup"

/* Exit codes of the helper processes (children, episode leaders). */
enum {
	E_OK = 0,
	E_TIMEOUT = 20,		/* waited too long for the other side */
	E_MISMATCH = 21,	/* data differs from what the writer wrote */
	E_NOTZERO = 22,		/* a fresh region was not zero-filled */
	E_PARENT_GONE = 23,	/* the parent died while the child waited */
	E_WRITE_FAULTED = 30,	/* a store on a writable side faulted */
	E_RO_STORE_OK = 31,	/* a store on a read-only side went through */
	E_WRONG_SIGNAL = 32,	/* ... raised SIGBUS, not SIGSEGV */
	E_WRONG_CODE = 33,	/* ... SIGSEGV but not SEGV_ACCERR */
	E_WRONG_ADDR = 34,	/* ... si_addr is not the address stored to */
	E_RO_CHANGED = 35,	/* ... and the byte changed anyway */
	E_SFORK = 40,		/* sfork() failed */
	E_OVER_LIMIT = 41,	/* touched more than memory.max allows */
	E_CHILD_STATUS = 42,	/* a child ended in a way it must not */
	E_EAGER_OK = 43,	/* an eager region beyond the limit was created */
	E_EAGER_ERRNO = 44,	/* ... failed, but not with ENOMEM */
	E_LEFTOVER = 45,	/* a failed sfork left a child or a mapping */
};

static const char *code_name(int c)
{
	switch (c) {
	case E_TIMEOUT: return "timed out waiting for the other side";
	case E_MISMATCH: return "data mismatch";
	case E_NOTZERO: return "fresh region not zero-filled";
	case E_PARENT_GONE: return "parent died while the child waited";
	case E_WRITE_FAULTED: return "store on a writable side faulted";
	case E_RO_STORE_OK: return "store on a read-only side went through";
	case E_WRONG_SIGNAL: return "store on a read-only side raised SIGBUS, not SIGSEGV";
	case E_WRONG_CODE: return "read-only store: SIGSEGV si_code is not SEGV_ACCERR";
	case E_WRONG_ADDR: return "read-only store: si_addr is not the faulting address";
	case E_RO_CHANGED: return "read-only store faulted but changed the byte";
	case E_SFORK: return "sfork failed";
	case E_OVER_LIMIT: return "more pages touched than memory.max allows";
	case E_CHILD_STATUS: return "a child ended unexpectedly";
	case E_EAGER_OK: return "eager region beyond memory.max was created";
	case E_EAGER_ERRNO: return "eager region beyond memory.max failed, but not with ENOMEM";
	case E_LEFTOVER: return "a failed sfork left a child or a mapping behind";
	default: return "unexpected exit code";
	}
}

static const unsigned int dir_flag[3] = { SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD,
					  SFORK_CHILD_TO_PARENT };
static const char *const dir_name[3] = { "bi", "p2c", "c2p" };
static const unsigned int alloc_flag[3] = { 0, SFORK_LAZY, SFORK_EAGER };
static const char *const alloc_name[3] = { "auto", "lazy", "eager" };
enum { D_BI, D_P2C, D_C2P };

static int parent_writes(int d) { return d != D_C2P; }
static int child_writes(int d) { return d != D_P2C; }

static int verbose;
static const char *mode;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sfork-stress %s: FAIL (pid %d): %s\n", mode, getpid(), buf);
}

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void info(const char *fmt, ...)
{
	va_list ap;

	printf("sfork-stress %s: ", mode);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- randomness: seeded, per process / thread --------------------------- */

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct rng {
	uint64_t s;
};

static void rng_init(struct rng *r, uint64_t seed, uint64_t stream)
{
	r->s = mix64(seed * 0x100000001b3ULL ^ mix64(stream + 1)) | 1;
}

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

/* ---- small file helpers ------------------------------------------------- */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 1;

	if (fd < 0)
		return -1;
	/* procfs hands out a page or so per read(): read to the end. */
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0)
		return -1;
	buf[got] = 0;
	return 0;
}

/* The value of a `key value` line, or -1. */
static long read_keyed(const char *path, const char *key)
{
	char buf[32768], *p;
	size_t kl = strlen(key);

	if (read_str(path, buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '\t'))
			return strtol(p + kl + 1, NULL, 10);
	return -1;
}

static long read_long(const char *path)
{
	char buf[64];

	if (read_str(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

static long stat_get(const char *key)
{
	return read_keyed(STATS, key);
}

/* Wait (up to 2 s, as the contract allows) for regions_live to reach @want. */
static long settle_regions(long want)
{
	long v = stat_get("regions_live");

	for (int i = 0; i < 40 && v != want && v >= 0; i++) {
		sleep_us(50000);
		v = stat_get("regions_live");
	}
	return v;
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; break;
	}
	return v;
}

/* Reap everything left (we are a subreaper): 0 if all went, -1 on timeout. */
static int reap_all(double timeout, long *n)
{
	double end = now_s() + timeout;
	int st;

	for (;;) {
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			if (n)
				(*n)++;
			continue;
		}
		if (p < 0 && errno == ECHILD)
			return 0;
		if (now_s() > end)
			return -1;
		sleep_us(2000);
	}
}

static void kill_all_children(void)
{
	/* Only our own descendants: we are a subreaper, orphans are ours. */
	char path[64], buf[4096];
	int me = getpid();

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", me, me);
	if (read_str(path, buf, sizeof(buf)) == 0)
		for (char *p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
			kill(atoi(p), SIGKILL);
}

/* ---- faults: probe a store, catch SIGSEGV/SIGBUS per thread ------------- */

static __thread sigjmp_buf fault_jmp;
static __thread volatile sig_atomic_t fault_armed;
static __thread volatile int fault_sig, fault_code;
static __thread void *volatile fault_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!fault_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	fault_sig = sig;
	fault_code = si->si_code;
	fault_addr = si->si_addr;
	fault_armed = 0;
	siglongjmp(fault_jmp, 1);
}

static void install_fault_handler(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/* 0 if the store went through, else the signal it raised (see fault_*). */
static int try_store(char *p, char v)
{
	fault_sig = 0;
	fault_armed = 1;
	if (sigsetjmp(fault_jmp, 1))
		return fault_sig;
	*(volatile char *)p = v;
	fault_armed = 0;
	return 0;
}

/* The contract's read-only side: SIGSEGV, SEGV_ACCERR, at the address, unchanged. */
static int check_ro_store(char *p)
{
	char before = *(volatile char *)p;
	int sig = try_store(p, (char)(before ^ 0x5a));

	if (!sig)
		return E_RO_STORE_OK;
	if (sig != SIGSEGV)
		return E_WRONG_SIGNAL;
	if (fault_code != SEGV_ACCERR)
		return E_WRONG_CODE;
	if (fault_addr != p)
		return E_WRONG_ADDR;
	if (*(volatile char *)p != before)
		return E_RO_CHANGED;
	return 0;
}

/* ---- futex flag inside a region (shared futex, contract) ----------------- */

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static void flag_set(uint32_t *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
	futex(flag, FUTEX_WAKE, INT_MAX, NULL);
}

/* Wait for *flag != 0: 0, E_TIMEOUT or E_PARENT_GONE. */
static int flag_wait(uint32_t *flag, double timeout, pid_t parent)
{
	double end = now_s() + timeout;
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		futex(flag, FUTEX_WAIT, 0, &ts);
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			break;
		if (parent && getppid() != parent)
			return E_PARENT_GONE;
		if (now_s() > end)
			return E_TIMEOUT;
	}
	return 0;
}

/* ---- the data pattern of a pair ----------------------------------------- */

/*
 * Per page one 64-bit word somewhere in [16, 2048) of the page (so every
 * page is faulted), plus a chunk of up to 1 KiB in [2048, 4088) of one page.
 * Bytes 0-15 of the region are the flag; the region's last byte is never
 * written (it checks the rounding up to a page and the zero fill).
 */
struct pattern {
	uint64_t seed;
	size_t sz, pages, coff, clen;
};

static void pat_init(struct pattern *pt, uint64_t seed, size_t sz)
{
	uint64_t h = mix64(seed ^ 0xc4c4c4c4ULL);

	pt->seed = seed;
	pt->sz = sz;
	pt->pages = sz / PAGE;
	pt->clen = 1 + h % 1024;
	pt->coff = ((h >> 16) % pt->pages) * PAGE + 2048 + (h >> 40) % (2040 - pt->clen);
}

static size_t word_off(const struct pattern *pt, size_t p)
{
	return p * PAGE + 16 + 8 * (mix64(pt->seed + p) % 254);
}

static uint64_t word_val(const struct pattern *pt, int salt, size_t p)
{
	return mix64(pt->seed ^ ((uint64_t)salt << 56) ^ (p * 0x100000001b3ULL)) | 1;
}

static uint8_t chunk_byte(const struct pattern *pt, int salt, size_t j)
{
	return (uint8_t)(mix64(pt->seed ^ (uint64_t)salt ^ (j / 8) << 8) >> (j % 8 * 8));
}

/* Offset of the first unexpected byte, or -1. */
static long pat_zero(const struct pattern *pt, const char *base)
{
	for (size_t p = 0; p < pt->pages; p++)
		if (*(volatile const uint64_t *)(base + word_off(pt, p)))
			return word_off(pt, p);
	for (size_t j = 0; j < pt->clen; j++)
		if (((volatile const char *)base)[pt->coff + j])
			return pt->coff + j;
	if (((volatile const char *)base)[pt->sz - 1])
		return pt->sz - 1;
	return -1;
}

static void pat_write(const struct pattern *pt, char *base, int salt)
{
	for (size_t p = 0; p < pt->pages; p++)
		*(volatile uint64_t *)(base + word_off(pt, p)) = word_val(pt, salt, p);
	for (size_t j = 0; j < pt->clen; j++)
		((volatile char *)base)[pt->coff + j] = chunk_byte(pt, salt, j);
}

static long pat_verify(const struct pattern *pt, const char *base, int salt)
{
	for (size_t p = 0; p < pt->pages; p++)
		if (*(volatile const uint64_t *)(base + word_off(pt, p)) != word_val(pt, salt, p))
			return word_off(pt, p);
	for (size_t j = 0; j < pt->clen; j++)
		if ((uint8_t)((volatile const char *)base)[pt->coff + j] != chunk_byte(pt, salt, j))
			return pt->coff + j;
	if (((volatile const char *)base)[pt->sz - 1])
		return pt->sz - 1;
	return -1;
}

/* ---- one sfork pair: used by pairs, unload (churn, after reload) -------- */

static int pair_child(char *base, size_t sz, int d, uint64_t ps, pid_t parent)
{
	struct pattern pt;
	long off;
	int r;

	pat_init(&pt, ps, sz);
	if (parent_writes(d)) {
		r = flag_wait((uint32_t *)base, 60, parent);
		if (r)
			return r;
		off = pat_verify(&pt, base, 1);
		if (off >= 0) {
			fprintf(stderr, "sfork-stress: child: %s region %zu bytes: parent's data wrong at offset %ld\n",
				dir_name[d], sz, off);
			return E_MISMATCH;
		}
	} else {
		off = pat_zero(&pt, base);
		if (off >= 0) {
			fprintf(stderr, "sfork-stress: child: %s region %zu bytes: byte at %ld not zero\n",
				dir_name[d], sz, off);
			return E_NOTZERO;
		}
	}
	if (child_writes(d))
		pat_write(&pt, base, 2);
	return 0;
}

struct pair_counts {
	_Atomic long sforks, bytes, active, peak;
	_Atomic long by_dir[3], by_alloc[3];
	_Atomic int failed;
};

static void peak_update(_Atomic long *peak, long v)
{
	long old = atomic_load(peak);

	while (v > old && !atomic_compare_exchange_weak(peak, &old, v))
		;
}

/*
 * sfork a region of @len bytes, exchange data through it in its direction,
 * verify, reap the child, unmap.  0, or -1 after printing why.
 */
static int one_pair(int d, int a, size_t len, uint64_t ps, struct pair_counts *pc)
{
	size_t sz = (len + PAGE - 1) & ~(PAGE - 1);
	pid_t me = getpid(), pid;
	struct pattern pt;
	void *addr = NULL;
	char *base;
	long off;
	int st;

	pid = sfork(len, dir_flag[d] | alloc_flag[a], &addr);
	if (pid < 0) {
		failf("sfork(%zu, %s|%s): %s", len, dir_name[d], alloc_name[a], strerror(errno));
		return -1;
	}
	if (pid == 0)
		_exit(pair_child(addr, sz, d, ps, me));
	base = addr;
	if (pc)
		peak_update(&pc->peak, atomic_fetch_add(&pc->active, 1) + 1);
	pat_init(&pt, ps, sz);
	if ((uintptr_t)base & (PAGE - 1)) {
		failf("region %p is not page aligned", addr);
		kill(pid, SIGKILL);
	} else if (parent_writes(d)) {
		off = pat_zero(&pt, base);
		if (off >= 0) {
			failf("%s|%s region of %zu bytes: byte at %ld not zero before any write",
			      dir_name[d], alloc_name[a], sz, off);
			kill(pid, SIGKILL);
		} else {
			pat_write(&pt, base, 1);
			flag_set((uint32_t *)base);
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pc)
		atomic_fetch_sub(&pc->active, 1);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		if (WIFSIGNALED(st))
			failf("%s|%s pair of %zu bytes (len %zu): child killed by signal %d",
			      dir_name[d], alloc_name[a], sz, len, WTERMSIG(st));
		else
			failf("%s|%s pair of %zu bytes (len %zu): child: %s",
			      dir_name[d], alloc_name[a], sz, len, code_name(WEXITSTATUS(st)));
		munmap(addr, sz);
		return -1;
	}
	if (child_writes(d)) {
		off = pat_verify(&pt, base, 2);
		if (off >= 0) {
			failf("%s|%s region of %zu bytes: child's data wrong at offset %ld",
			      dir_name[d], alloc_name[a], sz, off);
			munmap(addr, sz);
			return -1;
		}
	}
	if (munmap(addr, sz)) {
		failf("munmap of a region: %s", strerror(errno));
		return -1;
	}
	if (pc) {
		atomic_fetch_add(&pc->sforks, 1);
		atomic_fetch_add(&pc->bytes, sz);
		atomic_fetch_add(&pc->by_dir[d], 1);
		atomic_fetch_add(&pc->by_alloc[a], 1);
	}
	return 0;
}

/* 4 KiB to 1 MiB, sometimes not a page multiple. */
static size_t pick_len(struct rng *r, size_t max_pages)
{
	size_t pages = 1 + below(r, max_pages);
	size_t len = pages * PAGE;

	if (below(r, 4) == 0)
		len -= below(r, PAGE - 1);
	return len;
}

/* ---- pairs --------------------------------------------------------------- */

struct pairs_shared {
	struct pair_counts pc;
	_Atomic long ticket;
};

static int pairs_worker(struct pairs_shared *sh, int id, long n, uint64_t seed)
{
	struct rng r;

	rng_init(&r, seed, id);
	for (;;) {
		long t = atomic_fetch_add(&sh->ticket, 1);
		int d = below(&r, 3), a = below(&r, 3);
		size_t len = pick_len(&r, 256);

		if (t >= n || atomic_load(&sh->pc.failed))
			return 0;
		if (one_pair(d, a, len, mix64(seed ^ mix64(t)), &sh->pc)) {
			atomic_store(&sh->pc.failed, 1);
			return 1;
		}
	}
}

static int mode_pairs(long n, int c, uint64_t seed)
{
	struct pairs_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0 = now_s(), last = t0;
	long peak_live = -1, base_live = stat_get("regions_live"), strays = 0;
	pid_t *pids = calloc(c, sizeof(*pids));
	int workers = 0, bad = 0, st;

	if (sh == MAP_FAILED || !pids) {
		failf("mmap: %s", strerror(errno));
		return 1;
	}
	info("%ld sforks by %d workers (seed %lu)", n, c, (unsigned long)seed);
	for (int i = 0; i < c; i++) {
		pid_t p = fork();

		if (p == 0)
			_exit(pairs_worker(sh, i, n, seed));
		if (p < 0) {
			failf("fork: %s", strerror(errno));
			atomic_store(&sh->pc.failed, 1);
			break;
		}
		pids[workers++] = p;
	}
	c = workers;
	while (workers > 0) {
		pid_t p = waitpid(-1, &st, WNOHANG);
		long live;

		if (p > 0) {
			int w = 0;

			while (w < c && pids[w] != p)
				w++;
			if (w == c) {
				strays++;	/* the child of a dead worker (we are its subreaper) */
				continue;
			}
			workers--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				bad = 1;
				if (WIFSIGNALED(st))
					failf("worker %d killed by signal %d", p, WTERMSIG(st));
			}
			continue;
		}
		live = stat_get("regions_live");
		if (live > peak_live)
			peak_live = live;
		if (verbose && now_s() - last > 10) {
			last = now_s();
			info("... %ld sforks, %ld pairs live", atomic_load(&sh->pc.sforks),
			     atomic_load(&sh->pc.active));
		}
		sleep_us(20000);
	}
	if (reap_all(30, &strays))
		bad = 1;
	if (atomic_load(&sh->pc.failed))
		bad = 1;
	if (!bad && atomic_load(&sh->pc.sforks) != n) {
		failf("%ld sforks done, %ld asked", atomic_load(&sh->pc.sforks), n);
		bad = 1;
	}
	info("%ld sforks (bi %ld, p2c %ld, c2p %ld; auto %ld, lazy %ld, eager %ld), %.1f MiB of regions, "
	     "up to %ld pairs at once (regions_live peak %ld above %ld), %.1f s: %s",
	     atomic_load(&sh->pc.sforks), atomic_load(&sh->pc.by_dir[0]),
	     atomic_load(&sh->pc.by_dir[1]), atomic_load(&sh->pc.by_dir[2]),
	     atomic_load(&sh->pc.by_alloc[0]), atomic_load(&sh->pc.by_alloc[1]),
	     atomic_load(&sh->pc.by_alloc[2]), atomic_load(&sh->pc.bytes) / 1048576.0,
	     atomic_load(&sh->pc.peak), peak_live < 0 ? -1 : peak_live - base_live, base_live,
	     now_s() - t0, bad ? "FAILED" : "ok");
	munmap(sh, sizeof(*sh));
	free(pids);
	return bad;
}

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
		if (try_store(probe, 1))
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
			if (try_store(base + sz - 1, 0)) {
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

static int mode_threads(int nthreads, long n, uint64_t seed)
{
	struct thr *ts = calloc(nthreads, sizeof(*ts));
	long done = 0, roc = 0, rop = 0;
	double t0 = now_s();
	int bad = 0;

	if (!ts)
		return 1;
	info("%ld sforks by %d threads of one process (seed %lu)", n, nthreads,
	     (unsigned long)seed);
	install_fault_handler();
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

static size_t kword_off(long p)
{
	return p * PAGE + 8 * (p % 511);
}

static uint64_t kval(uint64_t seed, long p)
{
	return mix64(seed + p) | 1;
}

static int touch_pages(char *base, long npages, int writes, uint64_t seed, _Atomic long *progress)
{
	for (long p = 0; p < npages; p++) {
		volatile uint64_t *w = (volatile uint64_t *)(base + kword_off(p));

		if (writes)
			*w = kval(seed, p);
		else if (*w)
			return E_NOTZERO;
		atomic_store_explicit(progress, p + 1, memory_order_release);
	}
	return 0;
}

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

static int mode_kill(long n, int c, size_t size, uint64_t seed)
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

/* ---- oom ----------------------------------------------------------------- */

struct oomsh {
	_Atomic long progress;
	_Atomic int ready;	/* the non-toucher has pre-faulted its pages */
};

static void wait_ready(struct oomsh *sh)
{
	double end = now_s() + 60;

	while (!atomic_load(&sh->ready) && now_s() < end)
		sleep_us(1000);
}

static char cg_dir[128];

static long cg_read(const char *file, const char *key)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cg_dir, file);
	return key ? read_keyed(path, key) : read_long(path);
}

static int enter_cgroup(void)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg_dir);
	return write_str(path, "0");
}

/* Pre-fault a few pages of the first 2 MiB, so that checking them later needs no memory. */
static void prefault(const char *base)
{
	for (long p = 0; p < 512; p += 64)
		(void)*(volatile const uint64_t *)(base + kword_off(p));
}

static int check_prefaulted(const char *base, uint64_t seed, long done)
{
	for (long p = 0; p < 512 && p < done; p += 64)
		if (*(volatile const uint64_t *)(base + kword_off(p)) != kval(seed, p))
			return E_MISMATCH;
	return 0;
}

/* Lazy region beyond the limit, touched by the child: the child must die. */
static int oom_child_touches(struct oomsh *sh, size_t big, size_t limit, int d, uint64_t seed)
{
	long npages = big / PAGE, done;
	void *addr = NULL;
	pid_t c;
	int st;

	if (enter_cgroup())
		return E_SFORK;
	c = sfork(big, dir_flag[d] | SFORK_LAZY, &addr);
	if (c < 0)
		return E_SFORK;
	if (c == 0) {
		wait_ready(sh);
		_exit(touch_pages(addr, npages, 1, seed, &sh->progress));
	}
	prefault(addr);
	atomic_store(&sh->ready, 1);
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	done = atomic_load(&sh->progress);
	if (WIFEXITED(st))
		return E_OVER_LIMIT;	/* it touched all of it */
	if (!WIFSIGNALED(st) || (WTERMSIG(st) != SIGKILL && WTERMSIG(st) != SIGBUS))
		return E_CHILD_STATUS;
	if ((size_t)done * PAGE > limit)
		return E_OVER_LIMIT;
	return check_prefaulted(addr, seed, done);
}

/* Lazy region beyond the limit, touched by the parent: the parent must die, the child sees its data. */
static int oom_parent_touches(struct oomsh *sh, size_t big, int d, uint64_t seed)
{
	long npages = big / PAGE;
	double end;
	void *addr = NULL;
	pid_t me = getpid(), c;

	if (enter_cgroup())
		return E_SFORK;
	c = sfork(big, dir_flag[d] | SFORK_LAZY, &addr);
	if (c < 0)
		return E_SFORK;
	if (c == 0) {
		prefault(addr);
		atomic_store(&sh->ready, 1);
		end = now_s() + 120;
		while (getppid() == me) {
			if (now_s() > end)
				_exit(E_TIMEOUT);
			sleep_us(2000);
		}
		_exit(check_prefaulted(addr, seed, atomic_load(&sh->progress)));
	}
	wait_ready(sh);
	touch_pages(addr, npages, 1, seed, &sh->progress);
	kill(c, SIGKILL);
	return E_OVER_LIMIT;
}

/* Eager region beyond the limit: ENOMEM, and nothing left behind. */
static int oom_eager(size_t big, int d)
{
	void *addr = NULL;
	char maps[65536];
	int err;

	if (enter_cgroup())
		return E_SFORK;
	if (sfork(big, dir_flag[d] | SFORK_EAGER, &addr) == 0)
		_exit(0);
	err = errno;
	if (addr || err == 0) {
		while (wait(NULL) > 0)
			;
		return E_EAGER_OK;
	}
	if (err != ENOMEM)
		return E_EAGER_ERRNO;
	if (waitpid(-1, NULL, WNOHANG) >= 0 || errno != ECHILD)
		return E_LEFTOVER;
	if (read_str("/proc/self/maps", maps, sizeof(maps)) == 0 && strstr(maps, SFORK_DEVICE))
		return E_LEFTOVER;
	return 0;
}

/* Regions within the limit work as anywhere else. */
static int oom_fits(size_t len, int alloc, uint64_t seed)
{
	if (enter_cgroup())
		return E_SFORK;
	return one_pair(D_BI, alloc == SFORK_EAGER ? 2 : 1, len, seed, NULL) ? E_MISMATCH : 0;
}

/* Run @what in a new process that moves itself into the cgroup; its exit status. */
#define IN_CGROUP(st, what) do {					\
		pid_t _p = fork();					\
		if (_p == 0)						\
			_exit(what);					\
		while (waitpid(_p, &(st), 0) < 0 && errno == EINTR)	\
			;						\
	} while (0)

static int mode_oom(long n, size_t limit, size_t big, uint64_t seed)
{
	struct oomsh *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char buf[512], path[256];
	long ooms0 = 0, vm0 = 0, ooms, vm, peak = -1, kills_child = 0, kills_parent = 0, sigbus = 0,
	     enomem = 0, orphans = 0, maxpages = 0, minpages = LONG_MAX;
	int added_memory = 0, bad = 0, st;
	double t0 = now_s();

	if (sh == MAP_FAILED)
		return 1;
	if (read_keyed("/proc/vmstat", "oom_kill") < 0) {
		failf("/proc/vmstat has no oom_kill (a kernel without CONFIG_VM_EVENT_COUNTERS): "
		      "nothing would show an OOM kill outside the cgroup");
		return 1;
	}
	if (read_str(CGROOT "/cgroup.controllers", buf, sizeof(buf)) || !strstr(buf, "memory")) {
		failf("no cgroup2 memory controller at " CGROOT);
		return 1;
	}
	if (read_str(CGROOT "/cgroup.subtree_control", buf, sizeof(buf)) == 0 &&
	    !strstr(buf, "memory")) {
		if (write_str(CGROOT "/cgroup.subtree_control", "+memory")) {
			failf("enabling memory in " CGROOT "/cgroup.subtree_control: %s",
			      strerror(errno));
			return 1;
		}
		added_memory = 1;
	}
	snprintf(cg_dir, sizeof(cg_dir), CGROOT "/sfork-stress-%d", getpid());
	if (mkdir(cg_dir, 0755)) {
		failf("mkdir %s: %s", cg_dir, strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/memory.max", cg_dir);
	snprintf(buf, sizeof(buf), "%zu", limit);
	if (write_str(path, buf)) {
		failf("%s: %s", path, strerror(errno));
		bad = 1;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg_dir);
	write_str(path, "0");	/* absent without swap accounting: fine */
	info("%ld rounds in %s (memory.max %zu MiB): lazy regions of %zu MiB touched, eager ones "
	     "asked for (seed %lu)", n, cg_dir, limit >> 20, big >> 20, (unsigned long)seed);
	ooms0 = cg_read("memory.events", "oom_kill");
	vm0 = read_keyed("/proc/vmstat", "oom_kill");

	IN_CGROUP(st, oom_fits(limit / 2, SFORK_LAZY, seed));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failf("a lazy region of half memory.max in the cgroup: status 0x%x", st);
		bad = 1;
	}
	IN_CGROUP(st, oom_fits(limit / 4, SFORK_EAGER, seed + 1));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		failf("an eager region of a quarter of memory.max in the cgroup: status 0x%x", st);
		bad = 1;
	}
	if (cg_read("memory.events", "oom_kill") != ooms0) {
		failf("regions within memory.max caused an OOM kill");
		bad = 1;
	}

	for (long i = 0; i < n && !bad; i++) {
		int child_touches = i % 2 == 0;
		int d = child_touches ? (i % 4 ? D_C2P : D_BI) : (i % 4 == 1 ? D_P2C : D_BI);
		long before = cg_read("memory.events", "oom_kill"), got;
		uint64_t s = mix64(seed ^ i);

		atomic_store(&sh->progress, 0);
		atomic_store(&sh->ready, 0);
		if (child_touches) {
			IN_CGROUP(st, oom_child_touches(sh, big, limit, d, s));
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("round %ld: the child touching a %s region: parent status 0x%x: %s",
				      i, dir_name[d], st,
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "parent killed");
				bad = 1;
			}
			kills_child++;
		} else {
			IN_CGROUP(st, oom_parent_touches(sh, big, d, s));
			if (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS)
				sigbus++;
			else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
				failf("round %ld: the parent touching a %s region was not killed: status 0x%x%s%s",
				      i, dir_name[d], st, WIFEXITED(st) ? ": " : "",
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "");
				bad = 1;
			}
			kills_parent++;
		}
		got = atomic_load(&sh->progress);
		if (got > maxpages)
			maxpages = got;
		if (got < minpages)
			minpages = got;
		if ((size_t)got * PAGE > limit) {
			failf("round %ld: %ld pages touched, beyond memory.max", i, got);
			bad = 1;
		}
		/* The orphaned child of a killed parent is ours to reap. */
		while ((waitpid(-1, &st, 0)) > 0) {
			orphans++;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("round %ld: the child of the killed parent: status 0x%x%s%s", i,
				      st, WIFEXITED(st) ? ": " : "",
				      WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "");
				bad = 1;
			}
		}
		if (cg_read("memory.events", "oom_kill") <= before) {
			failf("round %ld: no OOM kill in the cgroup", i);
			bad = 1;
		}

		before = cg_read("memory.events", "oom_kill");
		IN_CGROUP(st, oom_eager(big, d));
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failf("round %ld: eager %s region of %zu MiB: status 0x%x: %s", i, dir_name[d],
			      big >> 20, st, WIFEXITED(st) ? code_name(WEXITSTATUS(st)) : "killed");
			bad = 1;
		} else {
			enomem++;
		}
		if (cg_read("memory.events", "oom_kill") != before) {
			failf("round %ld: an eager sfork beyond memory.max caused an OOM kill", i);
			bad = 1;
		}
		if (verbose)
			info("... round %ld: %ld pages before the kill", i, got);
	}
	peak = cg_read("memory.peak", NULL);

out:
	kill_all_children();
	if (reap_all(60, NULL)) {
		failf("processes left in the cgroup after 60 s");
		bad = 1;
	}
	ooms = cg_read("memory.events", "oom_kill");
	vm = read_keyed("/proc/vmstat", "oom_kill");
	/* We never entered the cgroup; if we did, this moves us out. */
	write_str(CGROOT "/cgroup.procs", "0");
	for (int i = 0; rmdir(cg_dir) && i < 100; i++)
		sleep_us(50000);
	if (access(cg_dir, F_OK) == 0) {
		failf("rmdir %s: %s", cg_dir, strerror(errno));
		bad = 1;
	}
	if (added_memory)
		write_str(CGROOT "/cgroup.subtree_control", "-memory");
	if (!bad && ooms - ooms0 != vm - vm0) {
		failf("%ld OOM kills in the guest, %ld of them in the cgroup", vm - vm0, ooms - ooms0);
		bad = 1;
	}
	if (peak > (long)limit + (long)(64 * PAGE)) {
		failf("memory.peak %ld above memory.max %zu", peak, limit);
		bad = 1;
	}
	info("%ld rounds: %ld touching children and %ld touching parents killed (%ld by SIGBUS), "
	     "after %ld-%ld pages (limit %zu); %ld OOM kills, all in the cgroup (vmstat +%ld); "
	     "%ld eager regions refused with ENOMEM; %ld orphans reaped; memory.peak %ld; "
	     "cgroup removed; %.1f s: %s",
	     n, kills_child, kills_parent, sigbus, minpages == LONG_MAX ? 0 : minpages, maxpages,
	     limit / PAGE, ooms - ooms0, vm - vm0, enomem, orphans, peak, now_s() - t0,
	     bad ? "FAILED" : "ok");
	munmap(sh, sizeof(*sh));
	return bad;
}

/* ---- unload -------------------------------------------------------------- */

static char ko_path[512];
static char ko_params[256];

/* Load the module again if it is gone.  Async-signal-safe. */
static int ensure_loaded(void)
{
	int fd, r;

	if (access("/sys/module/sfork", F_OK) == 0)
		return 0;
	fd = open(ko_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = syscall(SYS_finit_module, fd, ko_params, 0);
	close(fd);
	return r && errno != EEXIST ? -1 : 0;
}

static void on_fatal(int sig)
{
	static const char msg[] = "sfork-stress unload: interrupted; loading sfork again\n";

	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(128 + sig);
	ensure_loaded();
	_exit(128 + sig);
}

/* The vermagic of a .ko must be this kernel's, or we would unload for nothing. */
static int ko_matches(const char *path)
{
	struct utsname u;
	struct stat sb;
	char *buf, *v;
	size_t rl;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ok = 0;

	if (fd < 0 || fstat(fd, &sb) || uname(&u) || sb.st_size < 64) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	buf = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (buf == MAP_FAILED)
		return 0;
	rl = strlen(u.release);
	v = memmem(buf, sb.st_size, "vermagic=", 9);
	if (v && (size_t)(v - buf) + 10 + rl < (size_t)sb.st_size)
		ok = !memcmp(v + 9, u.release, rl) && v[9 + rl] == ' ';
	munmap(buf, sb.st_size);
	return ok;
}

static int find_module(const char *opt)
{
	char cands[6][512], exe[512];
	struct utsname u;
	int k = 0;
	ssize_t n;

	uname(&u);
	if (opt)
		snprintf(cands[k++], 512, "%s", opt);
	if (getenv("SFORK_KO"))
		snprintf(cands[k++], 512, "%s", getenv("SFORK_KO"));
	snprintf(cands[k++], 512, "/lib/modules/%s/extra/sfork.ko", u.release);
	snprintf(cands[k++], 512, "/lib/modules/%s/updates/dkms/sfork.ko", u.release);
	snprintf(cands[k++], 512, "/lib/modules/sfork.ko");
	/* vng runs the host's tree: fuzz/bin/sfork-stress -> kmod/sfork.ko */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		snprintf(cands[k++], 512, "%.*s/../../kmod/sfork.ko",
			 (int)(strrchr(exe, '/') - exe), exe);
	}
	for (int i = 0; i < k; i++) {
		if (access(cands[i], R_OK))
			continue;
		if (!ko_matches(cands[i])) {
			info("skipping %s: not built for this kernel", cands[i]);
			continue;
		}
		memcpy(ko_path, cands[i], sizeof(ko_path));
		return 0;
	}
	return -1;
}

static void save_params(void)
{
	static const char *const names[] = { "eager_threshold", "max_region_bytes" };
	char path[128], val[64];
	size_t off = 0;

	ko_params[0] = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
		snprintf(path, sizeof(path), "/sys/module/sfork/parameters/%s", names[i]);
		if (read_str(path, val, sizeof(val)))
			continue;
		val[strcspn(val, "\n")] = 0;
		off += snprintf(ko_params + off, sizeof(ko_params) - off, "%s%s=%s",
				off ? " " : "", names[i], val);
	}
}

static int mode_unload(long n, const char *mopt, uint64_t seed, int watchdog)
{
	long ebusy = 0, eagain = 0, churn_pairs = 0, own_pairs = 0, tries = 0, refmin = LONG_MAX,
	     refmax = 0;
	struct pairs_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int hp[2], bad = 0, st, unloaded = 0;
	pid_t holder = -1, churn[2] = { -1, -1 };
	double t0 = now_s(), end;
	void *addr = NULL;
	struct rng r;

	if (sh == MAP_FAILED)
		return 1;
	if (access("/sys/module/sfork", F_OK)) {
		failf("sfork is not loaded");
		return 1;
	}
	if (find_module(mopt)) {
		failf("no sfork.ko for this kernel (tried -m, $SFORK_KO, /lib/modules/$(uname -r)/extra, "
		      ".../updates/dkms, /lib/modules, ../../kmod next to this program): not unloading");
		return 1;
	}
	save_params();
	signal(SIGTERM, on_fatal);
	signal(SIGINT, on_fatal);
	signal(SIGHUP, on_fatal);
	signal(SIGALRM, on_fatal);
	alarm(watchdog);
	rng_init(&r, seed, 4242);
	info("%ld unload attempts while a region lives; reload from %s with \"%s\"", n, ko_path,
	     ko_params);

	/* One region held by a child the whole time. */
	if (pipe(hp)) {
		failf("pipe: %s", strerror(errno));
		return 1;
	}
	holder = sfork(PAGE, SFORK_BIDIRECTIONAL, &addr);
	if (holder == 0) {
		char c;

		close(hp[1]);
		while (read(hp[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(hp[0]);
	if (holder < 0) {
		failf("sfork of the held region: %s", strerror(errno));
		bad = 1;
		goto out;
	}
	munmap(addr, PAGE);	/* only the child holds it now */

	/* Regions that come and go meanwhile. */
	for (int i = 0; i < 2; i++) {
		churn[i] = fork();
		if (churn[i] == 0) {
			struct rng cr;

			rng_init(&cr, seed, 5000 + i);
			while (!atomic_load(&sh->pc.failed) && !atomic_load(&sh->ticket))
				if (one_pair(below(&cr, 3), below(&cr, 3), pick_len(&cr, 64), rnd(&cr),
					     &sh->pc)) {
					atomic_store(&sh->pc.failed, 1);
					_exit(1);
				}
			_exit(0);
		}
	}

	for (long i = 0; i < n && !bad; i++) {
		long ref = read_long("/sys/module/sfork/refcnt");

		if (ref >= 0 && ref < refmin)
			refmin = ref;
		if (ref > refmax)
			refmax = ref;
		if (syscall(SYS_delete_module, "sfork", O_NONBLOCK) == 0) {
			failf("attempt %ld: delete_module succeeded while a region exists (refcnt was %ld)",
			      i, ref);
			unloaded = 1;
			bad = 1;
			break;
		}
		if (errno == EBUSY) {
			ebusy++;
		} else if (errno == EAGAIN) {
			eagain++;
		} else {
			failf("attempt %ld: delete_module: %s (want EBUSY or EAGAIN)", i, strerror(errno));
			bad = 1;
		}
		if (i % 8 == 0) {
			if (one_pair(below(&r, 3), below(&r, 3), pick_len(&r, 64), rnd(&r), NULL))
				bad = 1;
			own_pairs++;
		}
		sleep_us(below(&r, 3000));
	}

out:
	/* Everything goes away. */
	atomic_store(&sh->ticket, 1);
	for (int i = 0; i < 2; i++)
		if (churn[i] > 0) {
			waitpid(churn[i], &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failf("churn worker %d: status 0x%x", i, st);
				bad = 1;
			}
		}
	churn_pairs = atomic_load(&sh->pc.sforks);
	close(hp[1]);
	if (holder > 0) {
		waitpid(holder, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failf("the holder of the region: status 0x%x", st);
			bad = 1;
		}
	}
	if (bad)
		kill_all_children();
	reap_all(30, NULL);
	munmap(sh, sizeof(*sh));

	if (!unloaded) {
		long live = settle_regions(0);

		if (live > 0) {
			failf("regions_live is %ld with every process gone", live);
			bad = 1;
		}
		/* One last unload must succeed (give the contract's 2 s for files to close). */
		end = now_s() + 2;
		do {
			tries++;
			if (syscall(SYS_delete_module, "sfork", O_NONBLOCK) == 0) {
				unloaded = 1;
				break;
			}
			sleep_us(20000);
		} while (now_s() < end);
		if (!unloaded) {
			failf("rmmod with no region left: %s after %ld tries (refcnt %ld)", strerror(errno),
			      tries, read_long("/sys/module/sfork/refcnt"));
			bad = 1;
		}
	}
	if (unloaded) {
		/* Gone: no device, sfork() says ENOSYS, then load it again. */
		if (access("/sys/module/sfork", F_OK) == 0 || access(SFORK_DEVICE, F_OK) == 0) {
			failf("after the unload /sys/module/sfork or " SFORK_DEVICE " is still there");
			bad = 1;
		}
		errno = 0;
		addr = NULL;
		if (sfork(PAGE, SFORK_BIDIRECTIONAL, &addr) == 0)
			_exit(0);
		if (errno != ENOSYS) {
			failf("sfork without the module: %s, want ENOSYS", strerror(errno));
			while (wait(NULL) > 0)
				;
			bad = 1;
		}
		if (ensure_loaded()) {
			failf("reloading %s: %s", ko_path, strerror(errno));
			return 1;
		}
		/* sfork works again, in every direction. */
		for (int d = 0; d < 3; d++)
			for (int a = 0; a < 3; a++)
				if (one_pair(d, a, PAGE * (1 + d + a * 40), seed + d * 3 + a, NULL))
					bad = 1;
		if (stat_get("regions_live") != 0 && settle_regions(0) != 0) {
			failf("after the reload regions_live is %ld", stat_get("regions_live"));
			bad = 1;
		}
	}
	if (ensure_loaded()) {
		failf("the module is not loaded and %s does not load: %s", ko_path, strerror(errno));
		bad = 1;
	}
	alarm(0);
	info("%ld unload attempts refused while a region lived (%ld EBUSY, %ld EAGAIN; module refcnt "
	     "%ld-%ld), %ld pairs meanwhile (%ld by churn workers); final unload %s after %ld "
	     "tries, reloaded, sfork works; %.1f s: %s",
	     ebusy + eagain, ebusy, eagain, refmin == LONG_MAX ? -1 : refmin, refmax,
	     churn_pairs + own_pairs, churn_pairs, unloaded ? "succeeded" : "FAILED", tries,
	     now_s() - t0, bad ? "FAILED" : "ok");
	return bad;
}

/* ---- main ---------------------------------------------------------------- */

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: sfork-stress pairs   [-n 10000] [-c 64]\n"
		"       sfork-stress threads [-t 8] [-n 2000]\n"
		"       sfork-stress kill    [-n 500] [-c 4] [-S 64M]\n"
		"       sfork-stress oom     [-n 20] [-l 32M] [-S 64M]\n"
		"       sfork-stress unload  [-n 200] [-m PATH/sfork.ko]\n"
		"       sfork-stress all\n"
		"common: -s SEED, -v, -T WATCHDOG_SECONDS\n");
	exit(2);
}

static int run_mode(const char *m, long n, int c, int t, size_t size, size_t limit,
		    const char *mopt, uint64_t seed, int watchdog)
{
	int r;

	mode = m;
	if (!strcmp(m, "pairs"))
		r = mode_pairs(n ? n : 10000, c ? c : 64, seed);
	else if (!strcmp(m, "threads"))
		r = mode_threads(t ? t : 8, n ? n : 2000, seed);
	else if (!strcmp(m, "kill"))
		r = mode_kill(n ? n : 500, c ? c : 4, size ? size : 64 << 20, seed);
	else if (!strcmp(m, "oom"))
		r = mode_oom(n ? n : 20, limit ? limit : 32 << 20, size ? size : 64 << 20, seed);
	else if (!strcmp(m, "unload"))
		r = mode_unload(n ? n : 200, mopt, seed, watchdog ? watchdog : 600);
	else
		usage();
	return r;
}

int main(int argc, char **argv)
{
	long n = 0;
	int c = 0, t = 0, opt, watchdog = 0, r;
	size_t size = 0, limit = 0;
	const char *m, *mopt = NULL;
	uint64_t seed = 1;
	double t0 = now_s();

	if (argc < 2)
		usage();
	m = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "n:c:t:s:S:l:m:T:v")) != -1) {
		switch (opt) {
		case 'n': n = strtol(optarg, NULL, 0); break;
		case 'c': c = atoi(optarg); break;
		case 't': t = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'S': size = parse_size(optarg); break;
		case 'l': limit = parse_size(optarg); break;
		case 'm': mopt = optarg; break;
		case 'T': watchdog = atoi(optarg); break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc || n < 0 || c < 0 || t < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Orphans (children of killed parents) come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (watchdog && strcmp(m, "unload")) {
		signal(SIGALRM, SIG_DFL);
		alarm(watchdog);
	}

	if (strcmp(m, "all")) {
		r = run_mode(m, n, c, t, size, limit, mopt, seed, watchdog);
	} else {
		/* The short run CI does: a few minutes of TCG time in all. */
		int fails = 0;

		fails += run_mode("pairs", 3000, 64, 0, 0, 0, mopt, seed, 0);
		fails += run_mode("threads", 800, 0, 8, 0, 0, mopt, seed, 0);
		fails += run_mode("kill", 100, 4, 0, 64 << 20, 0, mopt, seed, 0);
		fails += run_mode("oom", 6, 0, 0, 0, 0, mopt, seed, 0);
		fails += run_mode("unload", 60, 0, 0, 0, 0, mopt, seed, 300);
		mode = "all";
		info("%d of 5 modes failed, %.1f s", fails, now_s() - t0);
		r = fails != 0;
	}
	return r;
}
