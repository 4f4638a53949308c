/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sfork_test.h - helpers shared by the sfork LTP tests (sforkNN.c).
 *
 * Only LTP API (tst_test.h) and <sfork.h> are used, so the tests build the
 * same in ltp-tests/ and inside an LTP tree.  Everything is static inline.
 *
 * Matrix options (HACKING.md): -s SIZE (K/M/G suffixes; default 2 pages),
 * -d bi|p2c|c2p (default bi), -a lazy|eager|auto (default auto).
 *
 *   #include "tst_test.h"
 *   #include "sfork_test.h"
 *
 *   static void setup(void)
 *   {
 *           sfork_test_setup();     // TCONF without the module; parses -s -d -a
 *   }
 *
 *   static void run(void)
 *   {
 *           void *addr;
 *           pid_t pid = SAFE_SFORK(sfork_size, sfork_flags, &addr);
 *           if (!pid) {
 *                   ... child: side sfork_child_writes(sfork_flags) ...
 *                   exit(0);
 *           }
 *           ...
 *           SAFE_WAITPID(pid, &status, 0);
 *   }
 *
 *   static struct tst_test test = {
 *           .setup = setup,
 *           .test_all = run,
 *           .forks_child = 1,
 *           .options = sfork_test_opts,   // or { SFORK_TEST_OPTIONS, {"x:", ...}, {} }
 *   };
 *
 * After sfork_test_setup(): sfork_size (bytes as given, before rounding),
 * sfork_flags (direction | allocation flag, none for auto),
 * sfork_page (page size), sfork_region_size (sfork_size rounded up to pages).
 *
 * Other helpers:
 *   sfork_parent_writes(f) / sfork_child_writes(f) / sfork_reader_is_child(f)
 *   / sfork_reader_is_parent(f)   who may store, who is read-only
 *   sfork_dir_name(f), sfork_alloc_name(f), sfork_flags_desc(f)  for messages
 *   sfork_readonly_dirs(dirs)     p2c and c2p, or the -d given (bi: TCONF)
 *   sfork_stat("regions_live")    a /sys/kernel/debug/sfork/stats value
 *                                 (TCONF when the file is absent)
 *   sfork_stat_get(key, &val)     same, returns -1 instead of ending the test
 *   sfork_stat_wait(key, val, ms) polls until key == val; returns the last value
 *   sfork_param("max_region_bytes")   /sys/module/sfork/parameters/<name>
 *   sfork_count_maps()            lines of /proc/self/maps
 *   sfork_count_fds()             open fds (entries of /proc/self/fd)
 *   sfork_maps_perms(addr, perms) the "rw-s"-style perms of addr's mapping
 *   sfork_try_store(addr, val, &si)   a store that may fault: 0 when it
 *                                 succeeded, 1 when SIGSEGV was caught (si
 *                                 filled); the handler is installed for the
 *                                 call only
 *   sfork_try_load(addr, &val, &si)   the same for a load
 *   sfork_pattern(off, seed)      a byte pattern depending on offset and seed
 */
#ifndef SFORK_TEST_H__
#define SFORK_TEST_H__

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <sfork.h>

#include "tst_test.h"

#define SFORK_STATS_PATH	"/sys/kernel/debug/sfork/stats"
#define SFORK_PARAMS_DIR	"/sys/module/sfork/parameters"

static char *sfork_str_size, *sfork_str_dir, *sfork_str_alloc;


static size_t sfork_size;		/* -s, bytes */
static size_t sfork_region_size;	/* sfork_size rounded up to pages */
static unsigned int sfork_flags;	/* -d | -a */
static size_t sfork_page;		/* page size */

static inline int sfork_parent_writes(unsigned int flags)
{
	return !(flags & SFORK_CHILD_TO_PARENT);
}

static inline int sfork_child_writes(unsigned int flags)
{
	return !(flags & SFORK_PARENT_TO_CHILD);
}

/* p2c: the child is the read-only side */
static inline int sfork_reader_is_child(unsigned int flags)
{
	return !!(flags & SFORK_PARENT_TO_CHILD);
}

/* c2p: the parent is the read-only side */
static inline int sfork_reader_is_parent(unsigned int flags)
{
	return !!(flags & SFORK_CHILD_TO_PARENT);
}

static inline const char *sfork_dir_name(unsigned int flags)
{
	if (flags & SFORK_PARENT_TO_CHILD)
		return "p2c";
	if (flags & SFORK_CHILD_TO_PARENT)
		return "c2p";
	return "bi";
}

static inline const char *sfork_alloc_name(unsigned int flags)
{
	if (flags & SFORK_LAZY)
		return "lazy";
	if (flags & SFORK_EAGER)
		return "eager";
	return "auto";
}

/* "p2c/eager/8192" (static buffer) */
static inline const char *sfork_flags_desc(unsigned int flags)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s/%s/%zu", sfork_dir_name(flags),
		 sfork_alloc_name(flags), sfork_size);
	return buf;
}

static inline unsigned int sfork_parse_dir(const char *s)
{
	if (!s || !strcmp(s, "bi"))
		return SFORK_BIDIRECTIONAL;
	if (!strcmp(s, "p2c"))
		return SFORK_PARENT_TO_CHILD;
	if (!strcmp(s, "c2p"))
		return SFORK_CHILD_TO_PARENT;
	tst_brk(TBROK, "Invalid -d '%s' (bi|p2c|c2p)", s);
	return 0;
}

static inline unsigned int sfork_parse_alloc(const char *s)
{
	if (!s || !strcmp(s, "auto"))
		return 0;
	if (!strcmp(s, "lazy"))
		return SFORK_LAZY;
	if (!strcmp(s, "eager"))
		return SFORK_EAGER;
	tst_brk(TBROK, "Invalid -a '%s' (lazy|eager|auto)", s);
	return 0;
}

/* TCONF unless /dev/sfork exists (the module is loaded). */
static inline void sfork_require_module(void)
{
	if (access(SFORK_DEVICE, F_OK))
		tst_brk(TCONF | TERRNO, "sfork module not loaded (%s)",
			SFORK_DEVICE);
}

/* Parses -s -d -a into sfork_size/sfork_flags, checks the module. */
static inline void sfork_test_setup(void)
{
	long long size;
	int ret;

	sfork_page = (size_t)getpagesize();
	size = 2 * (long long)sfork_page;

	ret = tst_parse_filesize(sfork_str_size, &size, 1, LLONG_MAX);
	if (ret)
		tst_brk(TBROK, "Invalid -s '%s': %s", sfork_str_size,
			tst_strerrno(ret));

	sfork_size = (size_t)size;
	sfork_region_size = (sfork_size + sfork_page - 1) & ~(sfork_page - 1);
	sfork_flags = sfork_parse_dir(sfork_str_dir) |
		      sfork_parse_alloc(sfork_str_alloc);

	sfork_require_module();

	tst_res(TINFO, "sfork matrix point: direction %s, allocation %s, size %zu",
		sfork_dir_name(sfork_flags), sfork_alloc_name(sfork_flags),
		sfork_size);
}

/*
 * The directions that have a read-only side, as -d asks: both (p2c, c2p)
 * without -d, the one given otherwise; -d bi has none (TCONF).  Returns how
 * many were written to dirs[2].
 */
static inline unsigned int sfork_readonly_dirs(unsigned int dirs[2])
{
	if (!sfork_str_dir) {
		dirs[0] = SFORK_PARENT_TO_CHILD;
		dirs[1] = SFORK_CHILD_TO_PARENT;
		return 2;
	}
	if (sfork_flags & SFORK_BIDIRECTIONAL)
		tst_brk(TCONF, "-d bi has no read-only side");
	dirs[0] = sfork_flags & SFORK_DIRECTION_MASK;
	return 1;
}

/* sfork() or TBROK | TERRNO at the caller's line */
#define SAFE_SFORK(len, flags, addrp) \
	({ \
		pid_t sfork_pid__ = sfork((len), (flags), (addrp)); \
		if (sfork_pid__ < 0) \
			tst_brk(TBROK | TERRNO, "sfork(%zu, 0x%x) failed", \
				(size_t)(len), (unsigned int)(flags)); \
		sfork_pid__; \
	})

/*
 * One region of @len with the read-only side of direction @dir (the
 * allocation from -a): @reader runs on the read-only side and @writer on
 * the other, in whichever of parent and child they are; then the child is
 * reaped (TFAIL unless it exited 0) and the region unmapped.
 */
static inline void sfork_run_sides(unsigned int dir, size_t len,
				   void (*reader)(unsigned char *),
				   void (*writer)(unsigned char *))
{
	unsigned int flags = dir | (sfork_flags & SFORK_ALLOC_MASK);
	int reader_is_child = sfork_reader_is_child(flags);
	void *addr = NULL;
	int status;
	pid_t pid;

	tst_res(TINFO, "direction %s: the %s is read-only, %zu bytes",
		sfork_dir_name(flags), reader_is_child ? "child" : "parent", len);

	pid = SAFE_SFORK(len, flags, &addr);
	if (!pid) {
		(reader_is_child ? reader : writer)(addr);
		exit(0);
	}
	(reader_is_child ? writer : reader)(addr);

	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "%s child %s", reader_is_child ? "reader" : "writer",
			tst_strstatus(status));
	SAFE_MUNMAP(addr, len);
}

/* ---- module counters and parameters ---- */

/* 0 and *val, or -1 when the file or the key is absent */
static inline int sfork_stat_get(const char *key, long long *val)
{
	char name[64];
	long long v;
	FILE *f = fopen(SFORK_STATS_PATH, "r");
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld", name, &v) == 2) {
		if (!strcmp(name, key)) {
			*val = v;
			found = 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

/* a stats value; TCONF without debugfs stats, TBROK for an unknown key */
static inline long long sfork_stat(const char *key)
{
	long long v = -1;

	if (access(SFORK_STATS_PATH, R_OK))
		tst_brk(TCONF | TERRNO, "%s not readable (debugfs?)",
			SFORK_STATS_PATH);
	if (sfork_stat_get(key, &v))
		tst_brk(TBROK, "no '%s' in %s", key, SFORK_STATS_PATH);
	return v;
}

/* Polls key until it equals val or timeout_ms passed; returns last value. */
static inline long long sfork_stat_wait(const char *key, long long val,
					unsigned int timeout_ms)
{
	unsigned int waited = 0;
	long long v;

	for (;;) {
		v = sfork_stat(key);
		if (v == val || waited >= timeout_ms)
			return v;
		usleep(10000);
		waited += 10;
	}
}

/* /sys/module/sfork/parameters/<name> as a number (TCONF when absent) */
static inline unsigned long long sfork_param(const char *name)
{
	char path[256];
	unsigned long long v = 0;

	snprintf(path, sizeof(path), SFORK_PARAMS_DIR "/%s", name);
	if (access(path, R_OK))
		tst_brk(TCONF | TERRNO, "%s not readable", path);
	SAFE_FILE_SCANF(path, "%llu", &v);
	return v;
}

/* ---- process state ---- */

static inline int sfork_count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	int c, lines = 0;

	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/maps) failed");
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

/* open file descriptors, not counting the one used to list them */
static inline int sfork_count_fds(void)
{
	DIR *d = SAFE_OPENDIR("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while ((e = SAFE_READDIR(d))) {
		if (e->d_name[0] != '.')
			n++;
	}
	SAFE_CLOSEDIR(d);
	return n - 1;
}

/* perms ("rw-s"...) of the mapping holding addr into perms[5]; -1 if none */
static inline int sfork_maps_perms(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long start, end, a = (unsigned long)addr;
	char line[512], p[5];
	int ret = -1;

	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/maps) failed");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &start, &end, p) != 3)
			continue;
		if (a >= start && a < end) {
			memcpy(perms, p, 5);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* ---- accesses that may fault ---- */

static sigjmp_buf sfork_fault_jmp;
static siginfo_t sfork_fault_info;

static inline void sfork_fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	sfork_fault_info = *si;
	siglongjmp(sfork_fault_jmp, 1);
}

static inline void sfork_fault_arm(struct sigaction *old_segv,
				   struct sigaction *old_bus)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sfork_fault_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	SAFE_SIGACTION(SIGSEGV, &sa, old_segv);
	SAFE_SIGACTION(SIGBUS, &sa, old_bus);
}

static inline void sfork_fault_disarm(struct sigaction *old_segv,
				      struct sigaction *old_bus)
{
	SAFE_SIGACTION(SIGSEGV, old_segv, NULL);
	SAFE_SIGACTION(SIGBUS, old_bus, NULL);
}

/*
 * Stores val at addr.  Returns 0 when the store completed, 1 when it raised
 * SIGSEGV or SIGBUS (*si, if not NULL, holds the signal's siginfo).
 */
static inline int sfork_try_store(volatile char *addr, char val, siginfo_t *si)
{
	struct sigaction old_segv, old_bus;
	volatile int faulted = 0;

	memset(&sfork_fault_info, 0, sizeof(sfork_fault_info));
	sfork_fault_arm(&old_segv, &old_bus);
	if (sigsetjmp(sfork_fault_jmp, 1) == 0)
		*addr = val;
	else
		faulted = 1;
	sfork_fault_disarm(&old_segv, &old_bus);

	if (faulted && si)
		*si = sfork_fault_info;
	return faulted;
}

/* Loads *addr into *val; 0, or 1 when the load faulted (as above). */
static inline int sfork_try_load(volatile char *addr, char *val, siginfo_t *si)
{
	struct sigaction old_segv, old_bus;
	volatile int faulted = 0;

	memset(&sfork_fault_info, 0, sizeof(sfork_fault_info));
	sfork_fault_arm(&old_segv, &old_bus);
	if (sigsetjmp(sfork_fault_jmp, 1) == 0)
		*val = *addr;
	else
		faulted = 1;
	sfork_fault_disarm(&old_segv, &old_bus);

	if (faulted && si)
		*si = sfork_fault_info;
	return faulted;
}

/* A byte that depends on the offset and a seed (never constant over a page). */
static inline unsigned char sfork_pattern(size_t off, unsigned int seed)
{
	return (unsigned char)((off * 131u + (off >> 12) * 7u + seed * 29u + 1u) & 0xff);
}

#endif /* SFORK_TEST_H__ */
