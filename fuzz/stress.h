/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * stress.h: what the sfork-stress modes share.  sfork-stress.c has the
 * command line, stress-util.c the helpers, stress-data.c the data patterns,
 * and each mode its own stress-MODE.c.
 */
#ifndef SFORK_STRESS_H
#define SFORK_STRESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
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

#include "probe.h"
#include "rng.h"

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


enum { D_BI, D_P2C, D_C2P };
extern const unsigned int dir_flag[3], alloc_flag[3];
extern const char *const dir_name[3], *const alloc_name[3];

static inline int parent_writes(int d) { return d != D_C2P; }
static inline int child_writes(int d) { return d != D_P2C; }

/* -v, and the mode that messages name */
extern int verbose;
extern const char *mode;

/* stress-util.c */
const char *code_name(int c);
void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
double now_s(void);
void sleep_us(long us);
int write_str(const char *path, const char *s);
int read_str(const char *path, char *buf, size_t len);
long read_keyed(const char *path, const char *key);
long read_long(const char *path);
long stat_get(const char *key);
long settle_regions(long want);
size_t parse_size(const char *s);
int reap_all(double timeout, long *n);
void kill_all_children(void);
int check_ro_store(char *p);
void flag_set(uint32_t *flag);
int flag_wait(uint32_t *flag, double timeout, pid_t parent);

/* stress-data.c */
struct pair_counts {
	_Atomic long sforks, bytes, active, peak;
	_Atomic long by_dir[3], by_alloc[3];
	_Atomic int failed;
};

struct pairs_shared {
	struct pair_counts pc;
	_Atomic long ticket;
};

int one_pair(int d, int a, size_t len, uint64_t ps, struct pair_counts *pc);
size_t pick_len(struct rng *r, size_t max_pages);
size_t kword_off(long p);
uint64_t kval(uint64_t seed, long p);
int touch_pages(char *base, long npages, int writes, uint64_t seed, _Atomic long *progress);

/* the modes */
int mode_pairs(long n, int c, uint64_t seed);
int mode_threads(int nthreads, long n, uint64_t seed);
int mode_kill(long n, int c, size_t size, uint64_t seed);
int mode_oom(long n, size_t limit, size_t big, uint64_t seed);
int mode_unload(long n, const char *mopt, uint64_t seed, int watchdog);

#endif
