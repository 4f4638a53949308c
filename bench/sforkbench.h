/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sforkbench.h: what the pieces of sforkbench share.
 *
 * sforkbench is one static binary built from sforkbench.c (options, plan,
 * driver loop) and the sb_*.c files, each with one job.  There is no
 * global state shared between them: the driver owns one struct bench (the
 * harness: configuration, page size, watchdog, output, profiler, the
 * workloads' scratch state) and passes it to every piece that needs it.
 * The dependencies go one way:
 *
 *   sforkbench.c -> sb_catalog.c (variants, the workload table, which
 *                   names each workload's run function)
 *                -> sb_workloads.c, sb_channel.c (the workloads; the
 *                   channel ones through libsfork's <sfork_channel.h>)
 *                      -> sb_region.c (how each variant makes its region)
 *                      -> sb_result.c (a run's record, reaping the child)
 *                -> sb_json.c (the document), sb_profile.c (ftrace)
 *   everything   -> sb_watchdog.c, sb_util.c (leaves: no callbacks)
 */
#ifndef SFORKBENCH_H
#define SFORKBENCH_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#define STATS_PATH "/sys/kernel/debug/sfork/stats"

/* ------------------------------------------------------------------ */
/* Catalogue (sb_catalog.c)                                            */

/*
 * The shared-memory peers come in two classes.  Default-configured: what
 * a user gets on a stock system (Debian: shmem_enabled=never, no hugetlb
 * pool).  Tuned: the best a user with root can configure, THP for shmem
 * (shmem_enabled=advise and MADV_HUGEPAGE; sforkbench -H sets the former
 * around each of their runs) and hugetlbfs pages (a pool the driver
 * reserves with vm.nr_hugepages).
 */
enum variant {
	VAR_SFORK_LAZY, VAR_SFORK_EAGER, VAR_SFORK_AUTO, VAR_SFORK_LAZY_HUGE,
	VAR_SHM_ANON,
	VAR_SYSV_SHM, VAR_POSIX_SHM, VAR_MEMFD, VAR_FILE,
	VAR_SHM_ANON_THP, VAR_MEMFD_THP, VAR_MEMFD_HUGETLB, VAR_SYSV_HUGETLB,
	VAR_PRIVATE,
	VAR_PRIVATE_THP, VAR_FORK, VAR_MEMSET, VAR_POPULATE, VAR_PIPE,
	VAR_SOCKETPAIR, VAR_COUNT
};

enum workload {
	WL_ABUNDANT, WL_SPARSE, WL_RANDOM, WL_MULTILEVEL, WL_LATENCY, WL_FAULT,
	WL_ZEROFILL, WL_TEARDOWN, WL_PUBLISH, WL_PINGPONG, WL_PUBLISH_SPIN,
	WL_PINGPONG_SPIN, WL_BULK, WL_IDLE, WL_COUNT
};

/* A set of variants, one bit per enum variant. */
typedef unsigned int variant_set;
#define VARIANT_BIT(v) (1U << (v))
#define VS_SFORK (VARIANT_BIT(VAR_SFORK_LAZY) | VARIANT_BIT(VAR_SFORK_EAGER) | \
		  VARIANT_BIT(VAR_SFORK_AUTO))
#define VS_SHM (VARIANT_BIT(VAR_SHM_ANON) | VARIANT_BIT(VAR_SYSV_SHM) | \
		VARIANT_BIT(VAR_POSIX_SHM) | VARIANT_BIT(VAR_MEMFD) | \
		VARIANT_BIT(VAR_FILE))
#define VS_THP (VARIANT_BIT(VAR_SHM_ANON_THP) | VARIANT_BIT(VAR_MEMFD_THP))
#define VS_HUGETLB (VARIANT_BIT(VAR_MEMFD_HUGETLB) | \
		    VARIANT_BIT(VAR_SYSV_HUGETLB))
#define VS_TUNED (VS_THP | VS_HUGETLB)
/*
 * sfork_lazy_huge: SFORK_LAZY with the module's huge_pages=2 (every region
 * of 2 MiB or more gets 2 MiB pages), set around its runs only; the other
 * sfork variants run with the module's default policy.  Only the region
 * workloads run it: a one-page channel never gets a huge page.
 */
#define VS_SFORK_HUGE VARIANT_BIT(VAR_SFORK_LAZY_HUGE)
#define VS_PEERED (VS_REGION | VS_TUNED | VS_SFORK_HUGE)
#define VS_REGION (VS_SFORK | VS_SHM)
#define VS_CHANNEL (VS_REGION | VARIANT_BIT(VAR_PIPE) | \
		    VARIANT_BIT(VAR_SOCKETPAIR))

extern const char *const variant_names[VAR_COUNT];
extern const char *const variant_class[VAR_COUNT];

/* hugetlbfs regions are whole huge pages (the default size, 2 MiB here) */
#define HUGETLB_SIZE (2UL << 20)

struct bench;
struct lists;
struct result;

/* How a workload sizes its runs. */
enum sizing {
	SIZE_AS_GIVEN,		/* the item's sizes, rounded up to pages */
	SIZE_ONE_PAGE,		/* always one page, whatever the item says */
	SIZE_AT_LEAST_CHUNK,	/* at least one bulk chunk */
};

/* One workload: what it is and the function that runs one repetition. */
struct workload_desc {
	const char *name;
	variant_set variants;	/* default ("all") variant set */
	const char *unit;	/* unit of "value" */
	const char *what;
	enum sizing sizing;
	void (*run)(struct bench *b, enum workload w, enum variant v,
		    size_t size, const struct lists *l, bool verify,
		    struct result *r);
};

extern const struct workload_desc workloads[WL_COUNT];

static inline bool is_sfork(enum variant v)
{
	return v == VAR_SFORK_LAZY || v == VAR_SFORK_EAGER ||
	       v == VAR_SFORK_AUTO || v == VAR_SFORK_LAZY_HUGE;
}

/* ------------------------------------------------------------------ */
/* Configuration (options and plan, sforkbench.c)                      */

#define MAX_ITEMS 64
#define MAX_SIZES 32

struct item {
	enum workload w;
	variant_set variants;
	int nsizes;
	size_t sizes[MAX_SIZES];
	int reps;
};

struct config {
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
	const char *thp_shmem;	/* -H: shmem_enabled for VS_THP runs */
	long chan_spin_ns;	/* -W: libsfork channels' spin window, -1 default */
	unsigned int idle_ms;	/* -I: idle workload's wait */
	int nitems;
	struct item items[MAX_ITEMS];
};

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

/* ------------------------------------------------------------------ */
/* Watchdog (sb_watchdog.c): a run that overstays its time is killed   */

struct watchdog {
	volatile sig_atomic_t fired;	/* the run's time is up */
	volatile pid_t child;		/* killed when it fires */
};

void watchdog_install(struct watchdog *dog);
void watchdog_arm(struct watchdog *dog, unsigned int seconds);
void watchdog_watch(struct watchdog *dog, pid_t child);
void watchdog_disarm(struct watchdog *dog);

/* ------------------------------------------------------------------ */
/* Kernel counters and plumbing (sb_util.c)                            */

struct sfork_stats {
	bool ok;
	long long faults, pages_live, regions_live;
};

struct usage {
	long long minflt, majflt, nvcsw, nivcsw;
};

/* What a child tells its parent through the report pipe. */
struct child_report {
	uint64_t work_ns;
	struct usage usage;
	int64_t errors;
	uint64_t lat_med, lat_min, lat_p90, lat_mean;
	uint64_t cpu_ns, waited_ns;	/* idle: CPU used while waiting */
};

int read_file(const char *path, char *buf, size_t len);
long long meminfo_kb(const char *text, const char *key);
int region_memory_kb(long long *mem_kb);
void mapped_huge_kb(long long *shmem_pmd_kb, long long *hugetlb_kb);
int sysfs_write(const char *path, const char *val);
void rstrip(char *s);
void read_sfork_stats(struct sfork_stats *s);
void get_usage(int who, struct usage *u);
void usage_sub(struct usage *d, const struct usage *a, const struct usage *b);
/* Exact fd transfers; they give up when *stop is set (the watchdog). */
int write_all(int fd, const void *buf, size_t len, const volatile sig_atomic_t *stop);
int read_all(int fd, void *buf, size_t len, uint64_t spin_ns,
	     const volatile sig_atomic_t *stop);
void child_send(int fd, struct child_report *report, uint64_t t0,
		const struct usage *u0);
void close_child_end(int *fd);

/* ------------------------------------------------------------------ */
/* Regions and page lists                                              */

struct region {
	enum variant var;
	char *addr;
	size_t len;	/* as mapped */
	void *map;	/* for private_thp: the over-sized mapping */
	size_t maplen;
	int shmid;
	char path[128];
};

#define NSLOTS 5	/* parent + 4 processes of the multilevel tree */

/* Page lists of one repetition, the same for every variant. */
struct lists {
	size_t npages;
	size_t n[NSLOTS];
	uint32_t *idx[NSLOTS];
	uint32_t *perm;
};

/* sb_region.c */
pid_t region_fork(struct bench *b, struct region *r, enum variant v,
		  size_t len, unsigned int dir);
int region_destroy(struct region *r);

/* ------------------------------------------------------------------ */
/* A run's record (sb_result.c)                                        */

struct result {
	bool ok;
	const char *tuning;		/* what was set for the run, or NULL */
	char err[160];
	double value;
	/* phases, ns; -1 = not applicable */
	int64_t setup, parent, wait, teardown, total, child, settle;
	struct usage self_usage, children_usage;	/* deltas */
	struct child_report child_report;
	bool have_child_report;
	struct sfork_stats stats_before, stats_after_work, stats_after_destroy;
	int64_t verify_errors;
	int inner;			/* cycles averaged (latency) */
	/* the region's memory after the work (/proc/meminfo, smaps_rollup) */
	bool have_mem;
	long long mem_kb, shmem_pmd_kb, hugetlb_kb;
	double extra_bytes;		/* bytes moved (bulk) */
	int64_t idle_ns;		/* idle: how long the receiver waited */
};

void result_init(struct result *r);
void result_fail(struct result *r, const char *what, int e);
/* Wait for pid; 0 if it exited with status 0, else the result is failed. */
int result_reap(struct result *r, pid_t pid, const struct watchdog *dog);

/* ------------------------------------------------------------------ */
/* The document (sb_json.c)                                            */

struct json_out {
	FILE *f;
	bool first_result;
};

void json_str(FILE *f, const char *s);
void json_result(struct json_out *o, enum workload w, enum variant v,
		 size_t size, int rep, bool warm, const struct result *r);
void json_env(FILE *f, size_t page_size);
void json_config(FILE *f, const struct config *cfg, bool profiling);
void json_catalog(FILE *f);

/* ------------------------------------------------------------------ */
/* Profile (sb_profile.c)                                              */

struct profiler;

struct profiler *profiler_start(const struct config *cfg);
int profiler_tracing(struct profiler *p, bool on);
void profiler_finish(struct profiler *p, FILE *f);

/* ------------------------------------------------------------------ */
/* The harness                                                         */

/* zerofill's memset buffer, kept faulted in across the runs of a size */
struct membuf {
	char *addr;
	size_t len;
};

struct bench {
	struct config cfg;
	char thp_shmem_was[32];		/* shmem_enabled to restore */
	char huge_pages_was[16];	/* sfork's huge_pages, "" if absent */
	size_t page_size;
	struct watchdog dog;
	struct json_out out;
	struct profiler *prof;		/* NULL: no profile */
	unsigned int seq;		/* names of shm objects and files */
	struct membuf membuf;
};

/* sb_workloads.c */
void lists_free(struct lists *l);
void lists_make(struct lists *l, enum workload w, size_t npages, int rep);
void membuf_release(struct membuf *m);
void run_region(struct bench *b, enum workload w, enum variant v, size_t size,
		const struct lists *l, bool verify, struct result *r);
void run_latency(struct bench *b, enum workload w, enum variant v,
		 size_t size, const struct lists *l, bool verify,
		 struct result *r);
void run_zerofill(struct bench *b, enum workload w, enum variant v,
		  size_t size, const struct lists *l, bool verify,
		  struct result *r);

/* sb_channel.c */
void run_channel(struct bench *b, enum workload w, enum variant v,
		 size_t size, const struct lists *l, bool verify,
		 struct result *r);

#endif /* SFORKBENCH_H */
