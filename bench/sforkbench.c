// SPDX-License-Identifier: GPL-2.0-only
/*
 * sforkbench: the in-guest half of the sfork benchmarks.
 *
 * Runs a plan given on the command line (workloads x variants x sizes x
 * repetitions), interleaving the variants of one workload so that their
 * ratios are measured under the same conditions, and prints one JSON
 * document between marker lines on stdout.  The host side (bench/driver.py)
 * parses it; nothing here needs anything but a busybox guest.
 *
 * Times come from clock_gettime(CLOCK_MONOTONIC).  Beside every time the
 * program records the kernel counters that explain it: minor faults and
 * context switches from getrusage() for the parent and its children, and
 * sfork's own debugfs counters (faults, pages_live) when present.
 *
 * Usage: sforkbench [options] ITEM...
 *   ITEM := WORKLOAD:VARIANTS:SIZES[:REPS]
 *   VARIANTS := all | v1,v2,...      SIZES := 4K,1M,1G,... (ignored by
 *   publish/pingpong, which use one page)
 * Run with -h for the options, -l for the catalogue.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <sfork.h>

#define MARK_BEGIN "@@SFORKBENCH-JSON-BEGIN@@"
#define MARK_END "@@SFORKBENCH-JSON-END@@"
#define SCHEMA "sforkbench/1"
#define STATS_PATH "/sys/kernel/debug/sfork/stats"
#define PARAM_DIR "/sys/module/sfork/parameters/"

/* ------------------------------------------------------------------ */
/* Catalogue                                                           */

enum vid {
	V_SFORK_LAZY, V_SFORK_EAGER, V_SFORK_AUTO, V_SHM_ANON, V_SYSV_SHM,
	V_POSIX_SHM, V_MEMFD, V_FILE, V_PRIVATE, V_PRIVATE_THP, V_FORK,
	V_MEMSET, V_POPULATE, V_PIPE, V_SOCKETPAIR, V_COUNT
};

static const char *const vname[V_COUNT] = {
	"sfork_lazy", "sfork_eager", "sfork_auto", "shm_anon", "sysv_shm",
	"posix_shm", "memfd", "file", "private", "private_thp", "fork",
	"memset", "populate", "pipe", "socketpair",
};

enum wid {
	W_ABUNDANT, W_SPARSE, W_RANDOM, W_MULTILEVEL, W_LATENCY, W_FAULT,
	W_ZEROFILL, W_TEARDOWN, W_PUBLISH, W_PINGPONG, W_PUBLISH_SPIN,
	W_PINGPONG_SPIN, W_BULK, W_COUNT
};

#define B(v) (1U << (v))
#define VS_SFORK (B(V_SFORK_LAZY) | B(V_SFORK_EAGER) | B(V_SFORK_AUTO))
#define VS_SHM (B(V_SHM_ANON) | B(V_SYSV_SHM) | B(V_POSIX_SHM) | \
		B(V_MEMFD) | B(V_FILE))
#define VS_REGION (VS_SFORK | VS_SHM)
#define VS_CHANNEL (VS_REGION | B(V_PIPE) | B(V_SOCKETPAIR))

struct wdesc {
	const char *name;
	unsigned int variants;	/* default ("all") variant set */
	const char *unit;	/* unit of "value" */
	const char *what;
};

static const struct wdesc wdesc[W_COUNT] = {
	[W_ABUNDANT] = { "abundant", VS_REGION, "ns",
		"create+fork, parent and child write every page, wait, destroy" },
	[W_SPARSE] = { "sparse", VS_REGION, "ns",
		"create+fork, parent and child write 3 pages each, wait, destroy" },
	[W_RANDOM] = { "random", VS_REGION, "ns",
		"create+fork, each side writes a random quarter of the pages" },
	[W_MULTILEVEL] = { "multilevel", VS_REGION, "ns",
		"child forks twice more: 5 processes each write a random quarter" },
	[W_LATENCY] = { "latency", VS_REGION | B(V_FORK), "ns",
		"one create+fork+child exit+wait+destroy cycle" },
	[W_FAULT] = { "fault", VS_REGION | B(V_PRIVATE) | B(V_PRIVATE_THP),
		"ns/page", "parent's first write to every page, per page" },
	[W_ZEROFILL] = { "zerofill", B(V_SFORK_EAGER) | B(V_SFORK_LAZY) |
		B(V_MEMSET) | B(V_POPULATE), "ns",
		"sfork call until it returns in the parent; memset of a faulted buffer; mmap(MAP_POPULATE)" },
	[W_TEARDOWN] = { "teardown", VS_REGION | B(V_PRIVATE), "ns",
		"destroying a region whose every page the parent wrote, child gone" },
	[W_PUBLISH] = { "publish", VS_CHANNEL, "ns",
		"parent->child one-way latency, blocking receiver (futex / read)" },
	[W_PINGPONG] = { "pingpong", VS_CHANNEL, "ns",
		"round trip, blocking (futex wait/wake, read/write)" },
	[W_PUBLISH_SPIN] = { "publish_spin", VS_CHANNEL, "ns",
		"parent->child one-way latency, receiver polls for spin_ns first" },
	[W_PINGPONG_SPIN] = { "pingpong_spin", VS_CHANNEL, "ns",
		"round trip, both sides poll for spin_ns before sleeping" },
	[W_BULK] = { "bulk", VS_CHANNEL, "ns",
		"parent streams SIZE bytes to the child (ring in the region, or pipe/socket)" },
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

#define MAX_ITEMS 64
#define MAX_SIZES 32

struct item {
	int w;
	unsigned int variants;
	int nsizes;
	size_t sizes[MAX_SIZES];
	int reps;
};

static struct {
	int reps, warmup, msgs;
	uint64_t spin_ns;
	size_t ring, chunk;
	const char *file_dir;
	unsigned int timeout_s;
	bool verify_all;
	const char *profile_funcs;
	const char *profile_filter;
	int profile_depth;
	size_t profile_buf_kb;
	int nitems;
	struct item items[MAX_ITEMS];
} cfg = {
	.reps = 5, .warmup = 1, .msgs = 500, .spin_ns = 200000,
	.ring = 1 << 20, .chunk = 64 << 10, .file_dir = "/tmp",
	.timeout_s = 600, .profile_depth = 5, .profile_buf_kb = 16384,
};

static size_t g_pg;
static unsigned int g_seq;	/* names of shm objects and files */

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static void die(const char *what)
{
	fprintf(stderr, "sforkbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return 0;
	return (size_t)v;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, tot = 0;

	if (fd < 0)
		return -1;
	while ((size_t)tot < len - 1) {
		n = read(fd, buf + tot, len - 1 - (size_t)tot);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		tot += n;
	}
	close(fd);
	buf[tot] = '\0';
	return (int)tot;
}

static int write_str(const char *path, const char *val, bool trunc)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | (trunc ? O_TRUNC : 0));
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -1 : 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Kernel counters                                                     */

struct sfstats {
	bool ok;
	long long faults, pages_live, regions_live;
};

static void read_sfstats(struct sfstats *s)
{
	char buf[4096], *line, *save = NULL;

	memset(s, 0, sizeof(*s));
	if (read_file(STATS_PATH, buf, sizeof(buf)) <= 0)
		return;
	s->ok = true;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		long long v;

		if (sscanf(line, "%63s %lld", key, &v) != 2)
			continue;
		if (!strcmp(key, "faults"))
			s->faults = v;
		else if (!strcmp(key, "pages_live"))
			s->pages_live = v;
		else if (!strcmp(key, "regions_live"))
			s->regions_live = v;
	}
}

struct usage {
	long long minflt, majflt, nvcsw, nivcsw;
};

static void get_usage(int who, struct usage *u)
{
	struct rusage ru;

	getrusage(who, &ru);
	u->minflt = ru.ru_minflt;
	u->majflt = ru.ru_majflt;
	u->nvcsw = ru.ru_nvcsw;
	u->nivcsw = ru.ru_nivcsw;
}

static void usage_sub(struct usage *d, const struct usage *a,
		      const struct usage *b)
{
	d->minflt = a->minflt - b->minflt;
	d->majflt = a->majflt - b->majflt;
	d->nvcsw = a->nvcsw - b->nvcsw;
	d->nivcsw = a->nivcsw - b->nivcsw;
}

/* What a child tells its parent through the report pipe. */
struct child_report {
	uint64_t work_ns;
	struct usage u;
	int64_t errors;
	uint64_t lat_med, lat_min, lat_p90, lat_mean;
};

/* ------------------------------------------------------------------ */
/* Watchdog: a run that hangs (e.g. a lost wake-up in a broken kernel)
 * is killed and recorded as an error instead of hanging the guest.     */

static volatile sig_atomic_t g_timeout;
static volatile pid_t g_child;

static void on_alarm(int sig)
{
	(void)sig;
	g_timeout = 1;
	if (g_child > 0)
		kill(g_child, SIGKILL);
}

static void watchdog_arm(void)
{
	g_timeout = 0;
	g_child = 0;
	alarm(cfg.timeout_s);
}

static void watchdog_disarm(void)
{
	alarm(0);
	g_child = 0;
}

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
 * Returns old when the watchdog fired.
 */
static uint32_t wait_change(_Atomic uint32_t *a, _Atomic uint32_t *waiters,
			    uint32_t old, uint64_t spin_ns)
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
		if (v != old || g_timeout)
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
/* fd helpers (pipes and sockets)                                      */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR && !g_timeout)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read exactly len bytes.  With spin_ns the fd is non-blocking and is
 * polled with read() for up to spin_ns before sleeping in poll().
 */
static int read_all(int fd, void *buf, size_t len, uint64_t spin_ns)
{
	char *p = buf;
	uint64_t t0 = spin_ns ? now_ns() : 0;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR) {
			if (g_timeout)
				return -1;
			continue;
		}
		if (errno != EAGAIN)
			return -1;
		if (now_ns() - t0 > spin_ns) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (poll(&pfd, 1, -1) < 0 && g_timeout)
				return -1;
		} else {
			cpu_relax();
		}
	}
	return 0;
}

static void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* ------------------------------------------------------------------ */
/* Regions                                                             */

struct region {
	int var;
	char *addr;
	size_t len;	/* as mapped */
	void *map;	/* for private_thp: the over-sized mapping */
	size_t maplen;
	int shmid;
	char path[128];
};

static bool is_sfork(int v)
{
	return v == V_SFORK_LAZY || v == V_SFORK_EAGER || v == V_SFORK_AUTO;
}


/* Map a mapping of fd (or anonymous) shared; closes fd. */
static char *map_shared_fd(int fd, size_t len)
{
	void *p;

	if (ftruncate(fd, (off_t)len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

/* Create the (non-sfork) region in the calling process. */
static int region_create(struct region *r, int var, size_t len)
{
	int fd, e;
	void *p;

	memset(r, 0, sizeof(*r));
	r->var = var;
	r->len = len;
	r->shmid = -1;
	switch (var) {
	case V_FORK:
		return 0;
	case V_SHM_ANON:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		r->addr = p;
		return 0;
	case V_SYSV_SHM:
		r->shmid = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
		if (r->shmid < 0)
			return -1;
		p = shmat(r->shmid, NULL, 0);
		if (p == (void *)-1) {
			e = errno;
			shmctl(r->shmid, IPC_RMID, NULL);
			errno = e;
			return -1;
		}
		r->addr = p;
		return 0;
	case V_POSIX_SHM:
		snprintf(r->path, sizeof(r->path), "/sforkbench.%d.%u",
			 (int)getpid(), g_seq++);
		fd = shm_open(r->path, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0)
			return -1;
		r->addr = map_shared_fd(fd, len);
		if (!r->addr) {
			e = errno;
			shm_unlink(r->path);
			errno = e;
			return -1;
		}
		return 0;
	case V_MEMFD:
		fd = memfd_create("sforkbench", MFD_CLOEXEC);
		if (fd < 0)
			return -1;
		r->addr = map_shared_fd(fd, len);
		return r->addr ? 0 : -1;
	case V_FILE:
		snprintf(r->path, sizeof(r->path), "%s/sforkbench.%d.%u",
			 cfg.file_dir, (int)getpid(), g_seq++);
		fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -1;
		r->addr = map_shared_fd(fd, len);
		if (!r->addr) {
			e = errno;
			unlink(r->path);
			errno = e;
			return -1;
		}
		return 0;
	case V_PRIVATE:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		madvise(p, len, MADV_NOHUGEPAGE);
		r->addr = p;
		return 0;
	case V_PRIVATE_THP: {
		size_t huge = 2UL << 20, off;

		r->maplen = len + huge;
		p = mmap(NULL, r->maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		r->map = p;
		off = (huge - ((uintptr_t)p & (huge - 1))) & (huge - 1);
		r->addr = (char *)p + off;
		madvise(r->addr, len, MADV_HUGEPAGE);
		return 0;
	}
	default:
		errno = EINVAL;
		return -1;
	}
}

/*
 * Create the region and fork.  Returns the child's pid in the parent, 0
 * in the child, -1 with errno on failure (nothing left behind).
 */
static pid_t region_fork(struct region *r, int var, size_t len,
			 unsigned int dir)
{
	pid_t pid;
	int e;

	if (is_sfork(var)) {
		unsigned int fl = dir;
		void *a = NULL;

		memset(r, 0, sizeof(*r));
		r->var = var;
		r->len = len;
		r->shmid = -1;
		if (var == V_SFORK_LAZY)
			fl |= SFORK_LAZY;
		else if (var == V_SFORK_EAGER)
			fl |= SFORK_EAGER;
		pid = sfork(len, fl, &a);
		if (pid >= 0)
			r->addr = a;
		return pid;
	}
	if (region_create(r, var, len) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		e = errno;
		/* Caller destroys nothing on failure. */
		if (r->addr && r->var != V_SYSV_SHM && r->var != V_PRIVATE_THP)
			munmap(r->addr, r->len);
		if (r->var == V_PRIVATE_THP)
			munmap(r->map, r->maplen);
		if (r->var == V_SYSV_SHM) {
			shmdt(r->addr);
			shmctl(r->shmid, IPC_RMID, NULL);
		}
		if (r->var == V_POSIX_SHM)
			shm_unlink(r->path);
		if (r->var == V_FILE)
			unlink(r->path);
		errno = e;
	}
	return pid;
}

static int region_destroy(struct region *r)
{
	int ret = 0;

	switch (r->var) {
	case V_FORK:
		break;
	case V_SYSV_SHM:
		ret |= shmdt(r->addr);
		ret |= shmctl(r->shmid, IPC_RMID, NULL);
		break;
	case V_PRIVATE_THP:
		ret |= munmap(r->map, r->maplen);
		break;
	default:
		ret |= munmap(r->addr, r->len);
		if (r->var == V_POSIX_SHM)
			ret |= shm_unlink(r->path);
		else if (r->var == V_FILE)
			ret |= unlink(r->path);
	}
	r->addr = NULL;
	return ret;
}

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

#define NSLOTS 5	/* parent + 4 processes of the multilevel tree */

/* Page lists of one repetition, the same for every variant. */
struct lists {
	size_t npages;
	size_t n[NSLOTS];
	uint32_t *idx[NSLOTS];
	uint32_t *perm;
};

static void lists_free(struct lists *l)
{
	for (int s = 0; s < NSLOTS; s++)
		free(l->idx[s]);
	free(l->perm);
	memset(l, 0, sizeof(*l));
}

static void lists_make(struct lists *l, int w, size_t npages, int rep)
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
/* Results                                                             */

struct result {
	bool ok;
	char err[160];
	double value;
	/* phases, ns; -1 = not applicable */
	int64_t setup, parent, wait, teardown, total, child, settle;
	struct usage up, uc;		/* parent self, children (deltas) */
	struct child_report cr;
	bool have_cr;
	struct sfstats s0, s1, s2;	/* before, after work, after destroy */
	int64_t verify_errors;
	int inner;			/* cycles averaged (latency) */
	double extra_bytes;		/* bytes moved (bulk) */
};

static void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->ok = true;
	r->setup = r->parent = r->wait = r->teardown = r->total = r->child =
		r->settle = -1;
	r->inner = 1;
}

static void fail(struct result *r, const char *what, int e)
{
	if (!r->ok)
		return;
	r->ok = false;
	snprintf(r->err, sizeof(r->err), "%s: %s", what,
		 e ? strerror(e) : "failed");
}

static void emit_usage(FILE *f, const char *k, const struct usage *u)
{
	fprintf(f, "\"%s\":{\"minflt\":%lld,\"majflt\":%lld,\"nvcsw\":%lld,"
		"\"nivcsw\":%lld}", k, u->minflt, u->majflt, u->nvcsw,
		u->nivcsw);
}

static bool g_first_result = true;

static void emit_result(int w, int v, size_t size, int rep, bool warm,
			const struct result *r)
{
	FILE *f = stdout;

	fputs(g_first_result ? "\n" : ",\n", f);
	g_first_result = false;
	fprintf(f, "{\"workload\":\"%s\",\"variant\":\"%s\",\"size\":%zu,"
		"\"rep\":%d,\"warmup\":%s,\"ok\":%s,\"error\":",
		wdesc[w].name, vname[v], size, rep, warm ? "true" : "false",
		r->ok ? "true" : "false");
	if (r->ok)
		fputs("null", f);
	else
		json_str(f, r->err);
	fprintf(f, ",\"value\":%.3f,\"unit\":\"%s\",\"inner\":%d",
		r->ok ? r->value : 0.0, wdesc[w].unit, r->inner);
	fprintf(f, ",\"ns\":{\"setup\":%" PRId64 ",\"parent\":%" PRId64
		",\"wait\":%" PRId64 ",\"teardown\":%" PRId64 ",\"total\":%"
		PRId64 ",\"child\":%" PRId64 ",\"settle\":%" PRId64 "}",
		r->setup, r->parent, r->wait, r->teardown, r->total,
		r->have_cr ? (int64_t)r->cr.work_ns : -1, r->settle);
	fputs(",\"counters\":{", f);
	emit_usage(f, "self", &r->up);
	fputc(',', f);
	emit_usage(f, "children", &r->uc);
	if (r->have_cr) {
		fputc(',', f);
		emit_usage(f, "child_self", &r->cr.u);
	}
	if (r->s0.ok && r->s1.ok) {
		fprintf(f, ",\"sfork_faults\":%lld,\"sfork_pages_live\":%lld,"
			"\"sfork_pages_live_before\":%lld",
			r->s1.faults - r->s0.faults, r->s1.pages_live,
			r->s0.pages_live);
		if (r->s2.ok)
			fprintf(f, ",\"sfork_pages_live_after\":%lld,"
				"\"sfork_regions_live_after\":%lld",
				r->s2.pages_live, r->s2.regions_live);
	}
	fputc('}', f);
	fprintf(f, ",\"verify_errors\":%" PRId64, r->verify_errors);
	if (r->have_cr && r->cr.lat_med)
		fprintf(f, ",\"latency\":{\"median\":%" PRIu64 ",\"min\":%"
			PRIu64 ",\"p90\":%" PRIu64 ",\"mean\":%" PRIu64 "}",
			r->cr.lat_med, r->cr.lat_min, r->cr.lat_p90,
			r->cr.lat_mean);
	if (r->extra_bytes > 0)
		fprintf(f, ",\"bytes\":%.0f", r->extra_bytes);
	fputc('}', f);
	fflush(f);
}

/* ------------------------------------------------------------------ */
/* Child side helpers                                                  */

static void child_send(int fd, struct child_report *cr, uint64_t t0,
		       const struct usage *u0)
{
	struct usage u1;

	cr->work_ns = now_ns() - t0;
	get_usage(RUSAGE_SELF, &u1);
	usage_sub(&cr->u, &u1, u0);
	if (write_all(fd, cr, sizeof(*cr)) < 0)
		_exit(3);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void lat_summary(struct child_report *cr, uint64_t *lat, size_t n)
{
	uint64_t sum = 0;

	if (!n)
		return;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += lat[i];
	cr->lat_min = lat[0];
	cr->lat_med = lat[n / 2];
	cr->lat_p90 = lat[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
	cr->lat_mean = sum / n;
}

static void close_child_end(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Wait for pid; returns 0 if it exited with status 0. */
static int reap(pid_t pid, struct result *r)
{
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fail(r, "waitpid", errno);
			return -1;
		}
	}
	if (g_timeout) {
		fail(r, "watchdog timeout", 0);
		return -1;
	}
	if (WIFSIGNALED(st)) {
		char msg[64];

		snprintf(msg, sizeof(msg), "child killed by signal %d",
			 WTERMSIG(st));
		fail(r, msg, 0);
		return -1;
	}
	if (WEXITSTATUS(st)) {
		char msg[64];

		snprintf(msg, sizeof(msg), "child exit status %d",
			 WEXITSTATUS(st));
		fail(r, msg, 0);
		return -1;
	}
	return 0;
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

static void run_region(int w, int v, size_t size, const struct lists *l,
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
static void run_latency(int v, size_t size, struct result *r)
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

static void membuf_release(void)
{
	if (g_membuf)
		munmap(g_membuf, g_membuf_len);
	g_membuf = NULL;
	g_membuf_len = 0;
}

static void run_zerofill(int v, size_t size, struct result *r)
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

static void chan_child(int w, int v, char *base, int mfd, int bfd, int ackfd,
		       int repfd, size_t size)
{
	bool spin = w == W_PUBLISH_SPIN || w == W_PINGPONG_SPIN;
	uint64_t spin_ns = spin ? cfg.spin_ns : 0;
	bool fdchan = v == V_PIPE || v == V_SOCKETPAIR;
	struct ctl *c = (struct ctl *)base;
	struct child_report cr;
	struct usage u0;
	uint64_t t0, *lat = NULL;
	size_t n = (size_t)cfg.msgs;
	char *dst = NULL;

	memset(&cr, 0, sizeof(cr));
	if (w == W_PUBLISH || w == W_PUBLISH_SPIN) {
		lat = calloc(n, sizeof(*lat));
		if (!lat)
			_exit(5);
		memset(lat, 0, n * sizeof(*lat));
	}
	if (w == W_BULK) {
		dst = malloc(cfg.chunk);
		if (!dst)
			_exit(5);
		memset(dst, 0, cfg.chunk);
	}
	if (fdchan && spin)
		set_nonblock(mfd);
	get_usage(RUSAGE_SELF, &u0);
	if (write_all(ackfd, "r", 1) < 0)
		_exit(6);
	t0 = now_ns();

	switch (w) {
	case W_PUBLISH:
	case W_PUBLISH_SPIN: {
		uint32_t last = 0;

		for (size_t i = 0; i < n; i++) {
			uint64_t ts;

			if (fdchan) {
				if (read_all(mfd, &ts, sizeof(ts), spin_ns) < 0)
					_exit(7);
			} else {
				uint32_t s;

				spin_for_change(&c->a, last, spin_ns);
				while ((s = atomic_load(&c->a)) == last)
					futex_wait(&c->a, last);
				last = s;
				ts = atomic_load(&c->t_send);
			}
			lat[i] = now_ns() - ts;
			if (write_all(ackfd, "a", 1) < 0)
				_exit(6);
		}
		lat_summary(&cr, lat, n);
		break;
	}
	case W_PINGPONG:
	case W_PINGPONG_SPIN:
		for (uint32_t i = 1; i <= n; i++) {
			if (fdchan) {
				uint32_t x;

				if (read_all(mfd, &x, sizeof(x), spin_ns) < 0)
					_exit(7);
				if (x != i)
					cr.errors++;
				if (write_all(bfd, &x, sizeof(x)) < 0)
					_exit(7);
			} else {
				uint32_t x = wait_change(&c->a, &c->a_w, i - 1,
							 spin_ns);

				if (x != i)
					cr.errors++;
				post(&c->b, &c->b_w, i);
			}
		}
		break;
	case W_BULK: {
		size_t nch = size / cfg.chunk, nslots = cfg.ring / cfg.chunk;
		char *ring = base + g_pg;

		for (size_t k = 0; k < nch; k++) {
			if (fdchan) {
				if (read_all(mfd, dst, cfg.chunk, 0) < 0)
					_exit(7);
			} else {
				uint32_t h = atomic_load(&c->a);

				while (h == (uint32_t)k)
					h = wait_change(&c->a, &c->a_w, h,
							cfg.spin_ns);
				memcpy(dst, ring + (k % nslots) * cfg.chunk,
				       cfg.chunk);
				post(&c->b, &c->b_w, (uint32_t)(k + 1));
			}
			if (*(uint64_t *)dst != k)
				cr.errors++;
		}
		break;
	}
	default:
		break;
	}
	child_send(repfd, &cr, t0, &u0);
	_exit(0);
}

static void run_channel(int w, int v, size_t size, struct result *r)
{
	bool spin = w == W_PUBLISH_SPIN || w == W_PINGPONG_SPIN;
	uint64_t spin_ns = spin ? cfg.spin_ns : 0;
	bool fdchan = v == V_PIPE || v == V_SOCKETPAIR;
	int ack[2] = { -1, -1 }, rep[2] = { -1, -1 };
	int m[2] = { -1, -1 }, b[2] = { -1, -1 };
	int pm = -1, pb = -1, cm = -1, cb = -1;	/* parent/child ends */
	struct usage us0, us1, uc0, uc1;
	struct region reg;
	struct ctl *c = NULL;
	size_t n = (size_t)cfg.msgs, rlen;
	char *src = NULL, x;
	uint64_t t0, t1, t2, t5, t6;
	pid_t pid;

	memset(&reg, 0, sizeof(reg));
	reg.var = V_FORK;
	if (w == W_BULK) {
		rlen = g_pg + cfg.ring;
		src = malloc(cfg.chunk);
		if (!src) {
			fail(r, "malloc", errno);
			return;
		}
		memset(src, 0x5a, cfg.chunk);
		r->extra_bytes = (double)(size / cfg.chunk * cfg.chunk);
	} else {
		rlen = g_pg;
	}
	if (pipe2(ack, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		fail(r, "pipe", errno);
		goto out;
	}
	if (v == V_PIPE) {
		if (pipe2(m, O_CLOEXEC) < 0 || pipe2(b, O_CLOEXEC) < 0) {
			fail(r, "pipe", errno);
			goto out;
		}
		if (w == W_BULK)	/* same buffering as the ring */
			fcntl(m[1], F_SETPIPE_SZ, (int)cfg.ring);
		pm = m[1]; cm = m[0]; pb = b[0]; cb = b[1];
	} else if (v == V_SOCKETPAIR) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m) < 0) {
			fail(r, "socketpair", errno);
			goto out;
		}
		pm = pb = m[0];
		cm = cb = m[1];
	}

	read_sfstats(&r->s0);
	get_usage(RUSAGE_SELF, &us0);
	get_usage(RUSAGE_CHILDREN, &uc0);
	t0 = now_ns();
	pid = region_fork(&reg, fdchan ? V_FORK : v, rlen,
			  (w == W_PUBLISH || w == W_PUBLISH_SPIN) ?
			  SFORK_PARENT_TO_CHILD : SFORK_BIDIRECTIONAL);
	if (pid < 0) {
		fail(r, is_sfork(v) ? "sfork" : "create/fork", errno);
		goto out;
	}
	if (pid == 0)
		chan_child(w, v, reg.addr, cm, cb, ack[1], rep[1], size);
	g_child = pid;
	t1 = now_ns();
	/* Drop the child's ends: a dead child then reads as EOF, not a hang. */
	close_child_end(&ack[1]);
	close_child_end(&rep[1]);
	if (v == V_PIPE) {
		close_child_end(&m[0]);
		close_child_end(&b[1]);
	} else if (v == V_SOCKETPAIR) {
		close_child_end(&m[1]);
	}
	c = (struct ctl *)reg.addr;
	if (fdchan && spin)
		set_nonblock(pb);
	if (read_all(ack[0], &x, 1, 0) < 0) {
		fail(r, "child start", errno);
		goto reap;
	}

	t2 = now_ns();
	switch (w) {
	case W_PUBLISH:
	case W_PUBLISH_SPIN:
		for (uint32_t i = 1; i <= n; i++) {
			uint64_t ts = now_ns();

			if (fdchan) {
				if (write_all(pm, &ts, sizeof(ts)) < 0)
					break;
			} else {
				atomic_store(&c->t_send, ts);
				atomic_store(&c->a, i);
				futex_wake(&c->a, 1);
			}
			if (read_all(ack[0], &x, 1, 0) < 0)
				break;
		}
		break;
	case W_PINGPONG:
	case W_PINGPONG_SPIN:
		for (uint32_t i = 1; i <= n && !g_timeout; i++) {
			if (fdchan) {
				uint32_t y;

				if (write_all(pm, &i, sizeof(i)) < 0 ||
				    read_all(pb, &y, sizeof(y), spin_ns) < 0)
					break;
			} else {
				post(&c->a, &c->a_w, i);
				while (atomic_load(&c->b) != i && !g_timeout)
					wait_change(&c->b, &c->b_w, i - 1,
						    spin_ns);
			}
		}
		break;
	case W_BULK: {
		size_t nch = size / cfg.chunk, nslots = cfg.ring / cfg.chunk;
		char *ring = reg.addr ? reg.addr + g_pg : NULL;

		for (size_t k = 0; k < nch && !g_timeout; k++) {
			*(uint64_t *)src = k;
			if (fdchan) {
				if (write_all(pm, src, cfg.chunk) < 0)
					break;
				continue;
			}
			uint32_t t = atomic_load(&c->b);

			while ((uint32_t)k - t >= nslots && !g_timeout)
				t = wait_change(&c->b, &c->b_w, t, cfg.spin_ns);
			memcpy(ring + (k % nslots) * cfg.chunk, src, cfg.chunk);
			post(&c->a, &c->a_w, (uint32_t)(k + 1));
		}
		break;
	}
	default:
		break;
	}
	/* done when the child's report arrives (it has consumed all) */
	if (read_all(rep[0], &r->cr, sizeof(r->cr), 0) < 0)
		fail(r, "child report", errno);
	else
		r->have_cr = true;
	r->parent = (int64_t)(now_ns() - t2);
reap:
	reap(pid, r);
	get_usage(RUSAGE_SELF, &us1);
	get_usage(RUSAGE_CHILDREN, &uc1);
	read_sfstats(&r->s1);
	usage_sub(&r->up, &us1, &us0);
	usage_sub(&r->uc, &uc1, &uc0);
	t5 = now_ns();
	if (region_destroy(&reg) < 0)
		fail(r, "destroy", errno);
	t6 = now_ns();
	read_sfstats(&r->s2);
	r->setup = (int64_t)(t1 - t0);
	r->teardown = (int64_t)(t6 - t5);
	if (r->have_cr && r->cr.errors) {
		r->verify_errors = r->cr.errors;
		fail(r, "verify: channel delivered wrong data", 0);
	}
	if (w == W_PUBLISH || w == W_PUBLISH_SPIN)
		r->value = (double)r->cr.lat_med;
	else if (w == W_BULK)
		r->value = (double)r->parent;
	else
		r->value = (double)r->parent / (double)(n ? n : 1);
out:
	free(src);
	for (int i = 0; i < 2; i++) {
		if (ack[i] >= 0) close(ack[i]);
		if (rep[i] >= 0) close(rep[i]);
		if (m[i] >= 0) close(m[i]);
		if (b[i] >= 0) close(b[i]);
	}
}

/* ------------------------------------------------------------------ */
/* ftrace function_graph profile (TCG has no PMU)                      */

static char g_tracefs[64];

struct pent {
	char name[80];
	int depth;
	long long calls;
	double us, child_us;
};

#define PHASH 8192
static struct pent *g_prof;
static long long g_prof_lines;
static uint64_t g_prof_setup_ns, g_prof_collect_ns;

static int tr(const char *file, const char *val, bool trunc)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", g_tracefs, file);
	return write_str(path, val, trunc);
}

static int profile_setup(void)
{
	char buf[64], path[160];
	uint64_t t0 = now_ns();

	if (access("/sys/kernel/tracing/trace", F_OK) == 0)
		strcpy(g_tracefs, "/sys/kernel/tracing");
	else if (access("/sys/kernel/debug/tracing/trace", F_OK) == 0)
		strcpy(g_tracefs, "/sys/kernel/debug/tracing");
	else
		return -1;
	tr("tracing_on", "0", true);
	tr("current_tracer", "nop", true);
	snprintf(buf, sizeof(buf), "%zu", cfg.profile_buf_kb);
	tr("buffer_size_kb", buf, true);
	/* set_graph_function takes one glob per write */
	{
		char *dup = strdup(cfg.profile_funcs), *s, *save = NULL;

		tr("set_graph_function", "", true);
		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tr("set_graph_function", s, false) < 0)
				fprintf(stderr, "sforkbench: cannot graph %s\n", s);
		free(dup);
	}
	/*
	 * set_ftrace_filter limits which functions are hooked at all: with
	 * every kernel function hooked, TCG runs the kernel tens of times
	 * slower.  The graph then shows only the filtered functions.
	 */
	tr("set_ftrace_filter", "", true);
	if (cfg.profile_filter) {
		char *dup = strdup(cfg.profile_filter), *s, *save = NULL;

		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tr("set_ftrace_filter", s, false) < 0)
				fprintf(stderr, "sforkbench: no function matches %s\n", s);
		free(dup);
	}
	snprintf(buf, sizeof(buf), "%d", cfg.profile_depth);
	tr("max_graph_depth", buf, true);
	tr("options/funcgraph-tail", "1", true);
	tr("options/funcgraph-irqs", "0", true);
	tr("options/funcgraph-proc", "0", true);
	tr("options/funcgraph-abstime", "0", true);
	tr("options/funcgraph-overhead", "1", true);
	tr("options/funcgraph-duration", "1", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	write_str(path, "", true);
	if (tr("current_tracer", "function_graph", true) < 0)
		return -1;
	g_prof_setup_ns = now_ns() - t0;
	g_prof = calloc(PHASH, sizeof(*g_prof));
	return g_prof ? 0 : -1;
}

static struct pent *prof_get(const char *name, int depth)
{
	unsigned int h = 5381;

	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (unsigned int i = 0; i < PHASH; i++) {
		struct pent *e = &g_prof[(h + i) % PHASH];

		if (!e->name[0]) {
			snprintf(e->name, sizeof(e->name), "%s", name);
			e->depth = depth;
		}
		if (!strcmp(e->name, name)) {
			if (depth < e->depth)
				e->depth = depth;
			return e;
		}
	}
	return NULL;
}

/* Names of the open functions per CPU, by depth (from the indentation). */
#define PCPUS 64
#define PDEPTH 32
static char g_open[PCPUS][PDEPTH][80];

static void prof_add(int cpu, const char *name, int depth, double us)
{
	struct pent *e = prof_get(name, depth);

	if (!e)
		return;
	e->calls++;
	e->us += us;
	/* charge the time to the caller's children, for self time */
	if (depth > 0 && depth <= PDEPTH && cpu >= 0 && cpu < PCPUS &&
	    g_open[cpu][depth - 1][0]) {
		struct pent *parent = prof_get(g_open[cpu][depth - 1], depth - 1);

		if (parent && parent != e)
			parent->child_us += us;
	}
}

/* One line of function_graph output (funcgraph-tail, -cpu, -duration). */
static void prof_line(char *line)
{
	char *bar = strchr(line, '|'), *p, *txt, name[80];
	double us = -1;
	int sp = 0, depth, cpu;

	if (line[0] == '#' || !bar)
		return;
	*bar = '\0';
	cpu = atoi(line);
	p = strchr(line, ')');
	p = p ? p + 1 : line;
	while (*p && strchr(" +!#*@$", *p))
		p++;
	if (*p >= '0' && *p <= '9') {
		char *end;

		us = strtod(p, &end);
		if (strncmp(end, " us", 3) != 0)
			us = -1;
	}
	txt = bar + 1;
	while (*txt == ' ') {
		txt++;
		sp++;
	}
	depth = (sp - 2) / 2;
	if (depth < 0)
		depth = 0;
	rstrip(txt);
	if (txt[0] == '}') {
		char *a = strstr(txt, "/* "), *z;

		if (!a)
			return;
		a += 3;
		z = strstr(a, " */");
		if (!z)
			return;
		*z = '\0';
		snprintf(name, sizeof(name), "%s", a);
	} else {
		size_t n = strlen(txt);

		if (n > 4 && !strcmp(txt + n - 4, "() {")) {
			/* an opening line: remember who is open at this depth */
			txt[n - 4] = '\0';
			if (cpu >= 0 && cpu < PCPUS && depth < PDEPTH)
				snprintf(g_open[cpu][depth], sizeof(g_open[0][0]),
					 "%s", txt);
			return;
		}
		if (n < 3 || strcmp(txt + n - 3, "();"))
			return;
		txt[n - 3] = '\0';
		snprintf(name, sizeof(name), "%s", txt);
	}
	if (us < 0)
		return;
	g_prof_lines++;
	prof_add(cpu, name, depth, us);
}

static int cmp_pent(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;

	return x->us < y->us ? 1 : x->us > y->us ? -1 : 0;
}

static void profile_emit(FILE *f)
{
	char path[160], line[1024];
	long long overrun = 0;
	FILE *t;
	int n = 0;
	uint64_t t0 = now_ns();

	tr("tracing_on", "0", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	t = fopen(path, "r");
	if (t) {
		while (fgets(line, sizeof(line), t))
			prof_line(line);
		fclose(t);
	}
	for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN); cpu++) {
		char buf[2048], *o;

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%ld/stats",
			 g_tracefs, cpu);
		if (read_file(path, buf, sizeof(buf)) > 0 &&
		    (o = strstr(buf, "overrun:")))
			overrun += atoll(o + 8);
	}
	tr("current_tracer", "nop", true);
	tr("set_graph_function", "", true);
	tr("set_ftrace_filter", "", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	write_str(path, "", true);
	g_prof_collect_ns = now_ns() - t0;

	qsort(g_prof, PHASH, sizeof(*g_prof), cmp_pent);
	fputs(",\n\"profile\":{\"tracer\":\"function_graph\",\"graph_functions\":", f);
	json_str(f, cfg.profile_funcs);
	fputs(",\"filter\":", f);
	if (cfg.profile_filter)
		json_str(f, cfg.profile_filter);
	else
		fputs("null", f);
	fprintf(f, ",\"max_depth\":%d,\"lines\":%lld,\"overrun\":%lld,"
		"\"setup_ns\":%" PRIu64 ",\"collect_ns\":%" PRIu64 ","
		"\"functions\":[", cfg.profile_depth, g_prof_lines, overrun,
		g_prof_setup_ns, g_prof_collect_ns);
	for (int i = 0; i < PHASH && n < 120; i++) {
		if (!g_prof[i].name[0])
			continue;
		fprintf(f, "%s{\"name\":", n ? "," : "");
		json_str(f, g_prof[i].name);
		fprintf(f, ",\"depth\":%d,\"calls\":%lld,\"total_us\":%.3f,"
			"\"self_us\":%.3f}", g_prof[i].depth, g_prof[i].calls,
			g_prof[i].us, g_prof[i].us > g_prof[i].child_us ?
			g_prof[i].us - g_prof[i].child_us : 0.0);
		n++;
	}
	fputs("]}", f);
	free(g_prof);
	g_prof = NULL;
}

/* ------------------------------------------------------------------ */
/* Driver loop                                                         */

static void run_one(int w, int v, size_t size, int rep, bool warm,
		    const struct lists *l)
{
	struct result r;

	result_init(&r);
	watchdog_arm();
	switch (w) {
	case W_LATENCY:
		run_latency(v, size, &r);
		break;
	case W_ZEROFILL:
		run_zerofill(v, size, &r);
		break;
	case W_PUBLISH: case W_PINGPONG: case W_PUBLISH_SPIN:
	case W_PINGPONG_SPIN: case W_BULK:
		run_channel(w, v, size, &r);
		break;
	default:
		run_region(w, v, size, l, warm || cfg.verify_all, &r);
	}
	watchdog_disarm();
	emit_result(w, v, size, rep, warm, &r);
}

static void run_item(const struct item *it, bool profiling)
{
	int vs[V_COUNT], nv = 0;
	struct lists l;

	memset(&l, 0, sizeof(l));
	for (int v = 0; v < V_COUNT; v++)
		if (it->variants & B(v))
			vs[nv++] = v;
	for (int si = 0; si < it->nsizes; si++) {
		size_t size = it->sizes[si];

		if (it->w == W_PUBLISH || it->w == W_PINGPONG ||
		    it->w == W_PUBLISH_SPIN || it->w == W_PINGPONG_SPIN)
			size = g_pg;
		size = (size + g_pg - 1) / g_pg * g_pg;
		if (it->w == W_BULK && size < cfg.chunk)
			size = cfg.chunk;
		for (int rep = -cfg.warmup; rep < it->reps; rep++) {
			bool warm = rep < 0;

			lists_make(&l, it->w, size / g_pg, rep);
			if (profiling && rep == 0)
				tr("tracing_on", "1", true);
			/* interleave, rotating the order between reps */
			for (int j = 0; j < nv; j++) {
				int v = vs[(j + (rep < 0 ? 0 : rep)) % nv];

				run_one(it->w, v, size, rep, warm, &l);
			}
		}
		if (profiling)
			tr("tracing_on", "0", true);
		membuf_release();
	}
	lists_free(&l);
}

/* ------------------------------------------------------------------ */
/* Environment and output                                              */

static void emit_param(FILE *f, const char *name, bool comma)
{
	char path[160], buf[128];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	fprintf(f, "%s\"%s\":", comma ? "," : "", name);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		rstrip(buf);
		json_str(f, buf);
	} else {
		fputs("null", f);
	}
}

static void emit_file_str(FILE *f, const char *key, const char *path)
{
	char buf[1024];

	fprintf(f, ",\"%s\":", key);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		rstrip(buf);
		json_str(f, buf);
	} else {
		fputs("null", f);
	}
}

static void emit_env(FILE *f)
{
	struct utsname u;
	struct timespec res;
	char buf[8192], *p;
	long long memkb = -1;

	uname(&u);
	clock_getres(CLOCK_MONOTONIC, &res);
	fputs("\"env\":{\"kernel\":", f);
	json_str(f, u.release);
	fputs(",\"kernel_version\":", f);
	json_str(f, u.version);
	fputs(",\"machine\":", f);
	json_str(f, u.machine);
	fprintf(f, ",\"cpus_online\":%ld,\"page_size\":%zu,"
		"\"clock_res_ns\":%ld", sysconf(_SC_NPROCESSORS_ONLN), g_pg,
		res.tv_nsec);
	if (read_file("/proc/meminfo", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "MemTotal:")))
		memkb = atoll(p + 9);
	fprintf(f, ",\"mem_total_kb\":%lld", memkb);
	fputs(",\"cpu_model\":", f);
	if (read_file("/proc/cpuinfo", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "model name"))) {
		char *e = strchr(p, '\n'), *c = strchr(p, ':');

		if (e)
			*e = '\0';
		json_str(f, c ? c + 2 : p);
	} else {
		fputs("null", f);
	}
	emit_file_str(f, "cmdline", "/proc/cmdline");
	emit_file_str(f, "thp_enabled",
		      "/sys/kernel/mm/transparent_hugepage/enabled");
	emit_file_str(f, "thp_shmem_enabled",
		      "/sys/kernel/mm/transparent_hugepage/shmem_enabled");
	fprintf(f, ",\"sfork_device\":%s,\"sfork_stats\":%s",
		access(SFORK_DEVICE, F_OK) == 0 ? "true" : "false",
		access(STATS_PATH, R_OK) == 0 ? "true" : "false");
	fputs(",\"sfork_params\":{", f);
	emit_param(f, "eager_threshold", false);
	emit_param(f, "max_region_bytes", true);
	fputs("}}", f);
}

static void emit_config(FILE *f, bool profiling)
{
	fprintf(f, ",\n\"config\":{\"reps\":%d,\"warmup\":%d,\"msgs\":%d,"
		"\"spin_ns\":%" PRIu64 ",\"ring\":%zu,\"chunk\":%zu,"
		"\"timeout_s\":%u,\"verify_all\":%s,\"profiling\":%s,"
		"\"file_dir\":", cfg.reps, cfg.warmup, cfg.msgs, cfg.spin_ns,
		cfg.ring, cfg.chunk, cfg.timeout_s,
		cfg.verify_all ? "true" : "false",
		profiling ? "true" : "false");
	json_str(f, cfg.file_dir);
	fputs(",\"items\":[", f);
	for (int i = 0; i < cfg.nitems; i++) {
		const struct item *it = &cfg.items[i];
		bool first = true;

		fprintf(f, "%s{\"workload\":\"%s\",\"reps\":%d,\"variants\":[",
			i ? "," : "", wdesc[it->w].name, it->reps);
		for (int v = 0; v < V_COUNT; v++)
			if (it->variants & B(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",", vname[v]);
				first = false;
			}
		fputs("],\"sizes\":[", f);
		for (int s = 0; s < it->nsizes; s++)
			fprintf(f, "%s%zu", s ? "," : "", it->sizes[s]);
		fputs("]}", f);
	}
	fputs("]}", f);
}

static void emit_catalog(FILE *f)
{
	fputs("\"catalog\":{\"variants\":[", f);
	for (int v = 0; v < V_COUNT; v++)
		fprintf(f, "%s\"%s\"", v ? "," : "", vname[v]);
	fputs("],\"workloads\":{", f);
	for (int w = 0; w < W_COUNT; w++) {
		bool first = true;

		fprintf(f, "%s\"%s\":{\"unit\":\"%s\",\"what\":", w ? "," : "",
			wdesc[w].name, wdesc[w].unit);
		json_str(f, wdesc[w].what);
		fputs(",\"variants\":[", f);
		for (int v = 0; v < V_COUNT; v++)
			if (wdesc[w].variants & B(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",", vname[v]);
				first = false;
			}
		fputs("]}", f);
	}
	fputs("}}", f);
}

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static int parse_item(const char *arg, struct item *it)
{
	char *dup = strdup(arg), *save = NULL, *f[4] = { 0 }, *s, *p;
	int nf = 0;

	memset(it, 0, sizeof(*it));
	for (s = strtok_r(dup, ":", &save); s && nf < 4;
	     s = strtok_r(NULL, ":", &save))
		f[nf++] = s;
	if (nf < 2) {
		fprintf(stderr, "sforkbench: bad item '%s'\n", arg);
		goto bad;
	}
	it->w = -1;
	for (int w = 0; w < W_COUNT; w++)
		if (!strcmp(f[0], wdesc[w].name))
			it->w = w;
	if (it->w < 0) {
		fprintf(stderr, "sforkbench: unknown workload '%s'\n", f[0]);
		goto bad;
	}
	if (!strcmp(f[1], "all")) {
		it->variants = wdesc[it->w].variants;
	} else {
		char *save2 = NULL;

		for (p = strtok_r(f[1], ",", &save2); p;
		     p = strtok_r(NULL, ",", &save2)) {
			int v = lookup(p, vname, V_COUNT);

			if (v < 0 || !(wdesc[it->w].variants & B(v))) {
				fprintf(stderr, "sforkbench: variant '%s' not "
					"valid for %s\n", p, f[0]);
				goto bad;
			}
			it->variants |= B(v);
		}
	}
	if (nf >= 3) {
		char *save3 = NULL;

		for (p = strtok_r(f[2], ",", &save3); p && it->nsizes < MAX_SIZES;
		     p = strtok_r(NULL, ",", &save3)) {
			size_t z = parse_size(p);

			if (!z) {
				fprintf(stderr, "sforkbench: bad size '%s'\n", p);
				goto bad;
			}
			it->sizes[it->nsizes++] = z;
		}
	} else {
		it->sizes[it->nsizes++] = g_pg;
	}
	it->reps = nf >= 4 ? atoi(f[3]) : cfg.reps;
	if (it->reps < 1)
		it->reps = 1;
	free(dup);
	return 0;
bad:
	free(dup);
	return -1;
}

static void usage_exit(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: sforkbench [options] WORKLOAD:VARIANTS:SIZES[:REPS]...\n"
		"  -r N      repetitions per variant and size (default 5)\n"
		"  -w N      warm-up runs per variant and size (default 1)\n"
		"  -n N      messages / round trips per channel run (500)\n"
		"  -S NS     spin window of the *_spin workloads and bulk (200000)\n"
		"  -R BYTES  bulk ring size (1M)   -C BYTES  bulk chunk (64K)\n"
		"  -f DIR    directory of the 'file' variant (/tmp)\n"
		"  -T SEC    watchdog per run (600)\n"
		"  -V        verify contents in every run (default: warm-up)\n"
		"  -P FUNCS  capture a function_graph profile of the measured\n"
		"            runs, graphing FUNCS (comma list of globs)\n"
		"  -F GLOBS  hook only these functions (set_ftrace_filter)\n"
		"  -D N      max_graph_depth of the profile (5)\n"
		"  -B KB     trace buffer per CPU (16384)\n"
		"  -l        print the catalogue as JSON and exit\n");
	exit(code);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	uint64_t t_start;
	int opt;
	bool profiling = false;

	g_pg = (size_t)sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "r:w:n:S:R:C:f:T:VP:F:D:B:lh")) != -1) {
		switch (opt) {
		case 'r': cfg.reps = atoi(optarg); break;
		case 'w': cfg.warmup = atoi(optarg); break;
		case 'n': cfg.msgs = atoi(optarg); break;
		case 'S': cfg.spin_ns = strtoull(optarg, NULL, 0); break;
		case 'R': cfg.ring = parse_size(optarg); break;
		case 'C': cfg.chunk = parse_size(optarg); break;
		case 'f': cfg.file_dir = optarg; break;
		case 'T': cfg.timeout_s = (unsigned int)atoi(optarg); break;
		case 'V': cfg.verify_all = true; break;
		case 'P': cfg.profile_funcs = optarg; break;
		case 'F': cfg.profile_filter = optarg; break;
		case 'D': cfg.profile_depth = atoi(optarg); break;
		case 'B': cfg.profile_buf_kb = parse_size(optarg); break;
		case 'l':
			fputs("{", stdout);
			emit_catalog(stdout);
			fputs("}\n", stdout);
			return 0;
		case 'h': usage_exit(0); break;
		default: usage_exit(1);
		}
	}
	if (cfg.msgs < 1 || cfg.warmup < 0 || !cfg.chunk || !cfg.ring ||
	    cfg.ring % cfg.chunk || cfg.chunk % 8 || cfg.ring / cfg.chunk < 1)
		usage_exit(1);
	for (; optind < argc; optind++) {
		if (cfg.nitems == MAX_ITEMS)
			usage_exit(1);
		if (parse_item(argv[optind], &cfg.items[cfg.nitems++]) < 0)
			usage_exit(1);
	}
	if (!cfg.nitems)
		usage_exit(1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt waits */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cfg.profile_funcs) {
		if (profile_setup() < 0)
			fprintf(stderr, "sforkbench: tracefs unavailable, no profile\n");
		else
			profiling = true;
	}

	t_start = now_ns();
	printf("%s\n{\"schema\":\"%s\",\n", MARK_BEGIN, SCHEMA);
	emit_env(stdout);
	emit_config(stdout, profiling);
	fputs(",\n", stdout);
	emit_catalog(stdout);
	fputs(",\n\"results\":[", stdout);
	fflush(stdout);
	for (int i = 0; i < cfg.nitems; i++)
		run_item(&cfg.items[i], profiling);
	fputs("\n]", stdout);
	if (profiling)
		profile_emit(stdout);
	printf(",\n\"elapsed_ns\":%" PRIu64 "}\n%s\n", now_ns() - t_start,
	       MARK_END);
	fflush(stdout);
	return 0;
}
