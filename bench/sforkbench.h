/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sforkbench.h: what the pieces of sforkbench share.
 *
 * sforkbench is one static binary built from sforkbench.c (options, plan,
 * driver loop) and the sb_*.c files, each with one job.  This header holds
 * the catalogue, the configuration, the records the pieces pass to each
 * other and the functions each piece offers the others; everything else
 * stays static in its file.
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
/* Catalogue                                                           */

enum vid {
	V_SFORK_LAZY, V_SFORK_EAGER, V_SFORK_AUTO, V_SHM_ANON, V_SYSV_SHM,
	V_POSIX_SHM, V_MEMFD, V_FILE, V_PRIVATE, V_PRIVATE_THP, V_FORK,
	V_MEMSET, V_POPULATE, V_PIPE, V_SOCKETPAIR, V_COUNT
};

extern const char *const vname[V_COUNT];

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

extern const struct wdesc wdesc[W_COUNT];

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
	int nitems;
	struct item items[MAX_ITEMS];
};

extern struct config cfg;
extern size_t g_pg;

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
/* Kernel counters                                                     */

struct sfstats {
	bool ok;
	long long faults, pages_live, regions_live;
};

struct usage {
	long long minflt, majflt, nvcsw, nivcsw;
};

/* What a child tells its parent through the report pipe. */
struct child_report {
	uint64_t work_ns;
	struct usage u;
	int64_t errors;
	uint64_t lat_med, lat_min, lat_p90, lat_mean;
};

/* ------------------------------------------------------------------ */
/* Watchdog (sforkbench.c): set when a run overstays its time          */

extern volatile sig_atomic_t g_timeout;
extern volatile pid_t g_child;

/* ------------------------------------------------------------------ */
/* Regions and page lists                                              */

struct region {
	int var;
	char *addr;
	size_t len;	/* as mapped */
	void *map;	/* for private_thp: the over-sized mapping */
	size_t maplen;
	int shmid;
	char path[128];
};

static inline bool is_sfork(int v)
{
	return v == V_SFORK_LAZY || v == V_SFORK_EAGER || v == V_SFORK_AUTO;
}

#define NSLOTS 5	/* parent + 4 processes of the multilevel tree */

/* Page lists of one repetition, the same for every variant. */
struct lists {
	size_t npages;
	size_t n[NSLOTS];
	uint32_t *idx[NSLOTS];
	uint32_t *perm;
};

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

/* ------------------------------------------------------------------ */
/* What each piece offers                                              */

/* sb_util.c */
int read_file(const char *path, char *buf, size_t len);
void rstrip(char *s);
void read_sfstats(struct sfstats *s);
void get_usage(int who, struct usage *u);
void usage_sub(struct usage *d, const struct usage *a, const struct usage *b);
int write_all(int fd, const void *buf, size_t len);
int read_all(int fd, void *buf, size_t len, uint64_t spin_ns);
void child_send(int fd, struct child_report *cr, uint64_t t0, const struct usage *u0);
void close_child_end(int *fd);
int reap(pid_t pid, struct result *r);

/* sb_json.c */
void json_str(FILE *f, const char *s);
void result_init(struct result *r);
void fail(struct result *r, const char *what, int e);
void emit_result(int w, int v, size_t size, int rep, bool warm, const struct result *r);
void emit_env(FILE *f);
void emit_config(FILE *f, bool profiling);
void emit_catalog(FILE *f);

/* sb_region.c */
pid_t region_fork(struct region *r, int var, size_t len, unsigned int dir);
int region_destroy(struct region *r);

/* sb_workloads.c */
void lists_free(struct lists *l);
void lists_make(struct lists *l, int w, size_t npages, int rep);
void run_region(int w, int v, size_t size, const struct lists *l, bool verify,
		struct result *r);
void run_latency(int v, size_t size, struct result *r);
void membuf_release(void);
void run_zerofill(int v, size_t size, struct result *r);

/* sb_channel.c */
void run_channel(int w, int v, size_t size, struct result *r);

/* sb_profile.c */
int tr(const char *file, const char *val, bool trunc);
int profile_setup(void);
void profile_emit(FILE *f);

#endif /* SFORKBENCH_H */
