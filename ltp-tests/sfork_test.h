/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copyright (c) 2026 sfork developers
 *
 * sfork_test.h - helpers shared by the sfork LTP tests (sforkNN.c).
 *
 * Only LTP API (tst_test.h) and <sfork.h> are used, so the tests build the
 * same in ltp-tests/ and inside an LTP tree.  Everything is static inline.
 * Checks return 0 when what they check holds, else report TFAIL and
 * return 1.
 *
 * Matrix options (HACKING.md): -s SIZE (K/M/G suffixes; default 2 pages),
 * -d bi|p2c|c2p (default bi), -a lazy|eager|auto (default auto).  Each test
 * lists those it takes (the ones its scenarios and runtest lines pass) in
 * its own .options, since LTP's metadata parser reads literal initializers
 * only; one that takes none gets the defaults:
 *
 *   .options = (struct tst_option[]) {
 *           {"s:", &sfork_str_size, "Region size ..."},
 *           {"d:", &sfork_str_dir, "Direction ..."},
 *           {"a:", &sfork_str_alloc, "Allocation ..."},
 *           {}
 *   },
 *
 * Setup: sfork_test_setup() (TCONF without the module; parses -s -d -a into
 * sfork_size, sfork_flags = direction | allocation flag, sfork_page,
 * sfork_region_size = sfork_size rounded up to pages),
 * sfork_test_setup_dirs(SFORK_DIRS_ALL or SFORK_DIRS_READONLY) (also the
 * directions the test runs, sfork_dirs[]: without -d bi, p2c and c2p or
 * only the two with a read-only side; as a .setup: sfork_setup_all_dirs,
 * sfork_setup_readonly_dirs), sfork_region_at_least(pages, why),
 * sfork_shared_alloc(len) (a zeroed MAP_SHARED block for results passed
 * between the test's processes; sfork_test_cleanup as .cleanup unmaps it).
 *
 * Running: sfork_for_each_dir(fn) calls fn(flags) for each of sfork_dirs[]
 * (flags = direction | -a), sfork_for_each_dir_case(n, what, fn) calls
 * fn(n, flags) for case n of a .test; sfork_run_sides() runs a reader and
 * a writer on a region's two sides, sfork_run_sides_each_dir() that for
 * each of sfork_dirs[]; SAFE_SFORK(); sfork_fork_loop() (a thread that
 * forks while others sfork, counting what its children see).
 *
 * Checks: sfork_check_exit0(who, status), sfork_check_killed(who, status, sig),
 * sfork_check_fill() and
 * sfork_check_pages() (data, as sfork_fill() and sfork_fill_pages() wrote it),
 * sfork_check_read_only(), sfork_check_store(), sfork_check_store_faults(),
 * sfork_check_unmapped()
 * (a side's mapping), sfork_counters_save()/sfork_check_settled()/
 * sfork_check_alive() (the module's regions_live and pages_live).
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
 *   sfork_maps_find(addr, &line)  the /proc/self/maps line of addr
 *   sfork_maps_perms(addr, perms) the "rw-s"-style perms of addr's mapping
 *   sfork_smaps_kb(addr, "Swap") a field of addr's mapping in /proc/self/smaps
 *   sfork_cg_path(file, buf, size) the path of a file of the caller's cgroup
 *   sfork_try_store(addr, val, &si)   a store that may fault: 0 when it
 *                                 succeeded, 1 when SIGSEGV was caught (si
 *                                 filled); the handler is installed for the
 *                                 call only
 *   sfork_try_load(addr, &val, &si)   the same for a load
 *   sfork_catch_faults(handler, &old_segv, &old_bus)  handler for SIGSEGV
 *                                 and SIGBUS (SA_SIGINFO)
 *   sfork_pattern(off, seed)      a byte pattern depending on offset and seed
 *   sfork_fill(p, off, len, seed) that pattern into p[0, len)
 */
#ifndef SFORK_TEST_H__
#define SFORK_TEST_H__

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <sfork.h>

#include "tst_test.h"

#define SFORK_STATS_PATH	"/sys/kernel/debug/sfork/stats"
#define SFORK_PARAMS_DIR	"/sys/module/sfork/parameters"

/* -s, -d, -a as given (the tests' .options point here) */
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

/* the words of -d and of -a, each with its flag; the default first */
struct sfork_word {
	unsigned int flag;
	const char *word;
};

static const struct sfork_word sfork_dir_words[3] = {
	{ SFORK_BIDIRECTIONAL, "bi" },
	{ SFORK_PARENT_TO_CHILD, "p2c" },
	{ SFORK_CHILD_TO_PARENT, "c2p" },
};

static const struct sfork_word sfork_alloc_words[3] = {
	{ 0, "auto" },
	{ SFORK_LAZY, "lazy" },
	{ SFORK_EAGER, "eager" },
};

/* the word of the one of words[1], words[2] that flags has, else words[0]'s */
static inline const char *sfork_word_of(unsigned int flags,
					const struct sfork_word words[3])
{
	if (flags & words[1].flag)
		return words[1].word;
	if (flags & words[2].flag)
		return words[2].word;
	return words[0].word;
}

static inline const char *sfork_dir_name(unsigned int flags)
{
	return sfork_word_of(flags, sfork_dir_words);
}

static inline const char *sfork_alloc_name(unsigned int flags)
{
	return sfork_word_of(flags, sfork_alloc_words);
}

/* "p2c/eager/8192" (static buffer) */
static inline const char *sfork_flags_desc(unsigned int flags)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "%s/%s/%zu", sfork_dir_name(flags),
		 sfork_alloc_name(flags), sfork_size);
	return buf;
}

/* the flag of -OPT S (the default's when not given); TBROK for another word */
static inline unsigned int sfork_parse_word(char opt, const char *s,
					    const struct sfork_word words[3])
{
	unsigned int i;

	if (!s)
		return words[0].flag;
	for (i = 0; i < 3; i++)
		if (!strcmp(s, words[i].word))
			return words[i].flag;
	tst_brk(TBROK, "Invalid -%c '%s' (%s|%s|%s)", opt, s, words[0].word,
		words[1].word, words[2].word);
	return 0;
}

/* TCONF unless /dev/sfork exists (the module is loaded). */
static inline void sfork_require_module(void)
{
	if (access(SFORK_DEVICE, F_OK))
		tst_brk(TCONF | TERRNO, "sfork module not loaded (%s)",
			SFORK_DEVICE);
}

/*
 * Parses -s -d -a into sfork_size/sfork_flags, checks the module.  A test
 * that takes none of them (its .options leave them out) gets the defaults.
 */
static inline void sfork_test_setup(void)
{
	long long size;
	int ret;

	sfork_page = (size_t)getpagesize();
	size = 2 * (long long)sfork_page;

	if (sfork_str_size) {
		ret = tst_parse_filesize(sfork_str_size, &size, 1, LLONG_MAX);
		if (ret)
			tst_brk(TBROK, "Invalid -s '%s': %s", sfork_str_size,
				tst_strerrno(ret));
	}

	sfork_size = (size_t)size;
	sfork_region_size = (sfork_size + sfork_page - 1) & ~(sfork_page - 1);
	sfork_flags = sfork_parse_word('d', sfork_str_dir, sfork_dir_words) |
		      sfork_parse_word('a', sfork_str_alloc, sfork_alloc_words);

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

/* which directions a test runs without -d */
#define SFORK_DIRS_ALL		0	/* bi, p2c and c2p */
#define SFORK_DIRS_READONLY	1	/* p2c and c2p (the read-only sides) */

static unsigned int sfork_dirs[3];
static unsigned int sfork_dirs_cnt;

/* sfork_test_setup(), and sfork_dirs[] as -d and which ask */
static inline void sfork_test_setup_dirs(int which)
{
	sfork_test_setup();
	if (which == SFORK_DIRS_READONLY) {
		sfork_dirs_cnt = sfork_readonly_dirs(sfork_dirs);
		return;
	}
	if (sfork_str_dir) {
		sfork_dirs[0] = sfork_flags & SFORK_DIRECTION_MASK;
		sfork_dirs_cnt = 1;
		return;
	}
	sfork_dirs[0] = SFORK_BIDIRECTIONAL;
	sfork_dirs_cnt = 1 + sfork_readonly_dirs(sfork_dirs + 1);
}

/* the flags of sfork_dirs[i]: the direction and -a */
static inline unsigned int sfork_dir_flags(unsigned int i)
{
	return sfork_dirs[i] | (sfork_flags & SFORK_ALLOC_MASK);
}

/* fn(direction | -a) for each of sfork_dirs[] */
static inline void sfork_for_each_dir(void (*fn)(unsigned int flags))
{
	unsigned int i;

	for (i = 0; i < sfork_dirs_cnt; i++)
		fn(sfork_dir_flags(i));
}

/* case n of a .test: a TINFO line "what, direction X", fn(n, flags) for each */
static inline void sfork_for_each_dir_case(unsigned int n, const char *what,
					   void (*fn)(unsigned int n,
						      unsigned int flags))
{
	unsigned int i;

	for (i = 0; i < sfork_dirs_cnt; i++) {
		tst_res(TINFO, "%s, direction %s", what,
			sfork_dir_name(sfork_dir_flags(i)));
		fn(n, sfork_dir_flags(i));
	}
}

/* .setup of a test of every direction, or of the read-only sides only */
static inline void sfork_setup_all_dirs(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);
}

static inline void sfork_setup_readonly_dirs(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_READONLY);
}

/*
 * A zeroed MAP_SHARED block that a test and its children all see (results,
 * pids, flags passed between them), mapped in .setup;
 * sfork_test_cleanup() (as the test's .cleanup) unmaps it.
 */
static void *sfork_shared_block;
static size_t sfork_shared_len;

static inline void *sfork_shared_alloc(size_t len)
{
	sfork_shared_block = SAFE_MMAP(NULL, len, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sfork_shared_len = len;
	return sfork_shared_block;
}

static inline void sfork_test_cleanup(void)
{
	if (sfork_shared_block)
		SAFE_MUNMAP(sfork_shared_block, sfork_shared_len);
}

/*
 * A thread's fork() loop, run while the test's other thread calls sfork():
 * until loop->stop, forks a child that _exit()s loop->child() (0: it saw no
 * region, 1: it saw one, as it should, else: what it saw was wrong) and
 * counts those in none, seen and bad.  Started as
 * SAFE_PTHREAD_CREATE(&thread, NULL, sfork_fork_loop, &loop).
 */
struct sfork_fork_loop {
	int (*child)(void);
	volatile int stop;
	unsigned int none, seen, bad;
};

static inline void *sfork_fork_loop(void *arg)
{
	struct sfork_fork_loop *loop = arg;
	int status;
	pid_t pid;

	while (!loop->stop) {
		pid = fork();
		if (pid < 0)
			tst_brk(TBROK | TERRNO, "fork() in the forking thread");
		if (!pid)
			_exit(loop->child());
		SAFE_WAITPID(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
			loop->bad++;
		else if (WEXITSTATUS(status))
			loop->seen++;
		else
			loop->none++;
	}
	return NULL;
}

/* sfork_region_size raised to pages when smaller (why: for the message) */
static inline void sfork_region_at_least(unsigned int pages, const char *why)
{
	if (sfork_region_size >= pages * sfork_page)
		return;
	sfork_region_size = pages * sfork_page;
	tst_res(TINFO, "region raised to %u pages (%zu bytes) %s", pages,
		sfork_region_size, why);
}

/* 0 when a child exited 0, else TFAIL "who <how it ended>" and 1 */
static inline int sfork_check_exit0(const char *who, int status)
{
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		return 0;
	tst_res(TFAIL, "%s %s", who, tst_strstatus(status));
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

static inline void sfork_run_sides_(unsigned int dir, size_t len,
				    void (*reader)(unsigned char *),
				    void (*writer)(unsigned char *),
				    int reader_unmaps)
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
	sfork_check_exit0(reader_is_child ? "reader child" : "writer child",
			  status);
	if (reader_is_child || !reader_unmaps)
		SAFE_MUNMAP(addr, len);
}

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
	sfork_run_sides_(dir, len, reader, writer, 0);
}

/* The same for a reader() that unmaps (or moves) the region itself. */
static inline void sfork_run_sides_reader_unmaps(unsigned int dir, size_t len,
						 void (*reader)(unsigned char *),
						 void (*writer)(unsigned char *))
{
	sfork_run_sides_(dir, len, reader, writer, 1);
}

/* sfork_run_sides() (or _reader_unmaps) on sfork_region_size bytes for each dir */
static inline void sfork_run_sides_each_dir(void (*reader)(unsigned char *),
					    void (*writer)(unsigned char *),
					    int reader_unmaps)
{
	unsigned int i;

	for (i = 0; i < sfork_dirs_cnt; i++)
		sfork_run_sides_(sfork_dirs[i], sfork_region_size, reader, writer,
				 reader_unmaps);
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

/* regions_live and pages_live, to compare with later */
struct sfork_counters {
	long long regions, pages;
};

static inline void sfork_counters_save(struct sfork_counters *c)
{
	c->regions = sfork_stat("regions_live");
	c->pages = sfork_stat("pages_live");
}

/* 0 when regions_live and pages_live are back to c within 2 s */
static inline int sfork_check_settled(const struct sfork_counters *c,
				      const char *when)
{
	long long regions, pages;

	regions = sfork_stat_wait("regions_live", c->regions, 2000);
	pages = sfork_stat_wait("pages_live", c->pages, 2000);
	if (regions == c->regions && pages == c->pages) {
		tst_res(TPASS, "%s: regions_live %lld and pages_live %lld back to their values before",
			when, regions, pages);
		return 0;
	}
	tst_res(TFAIL, "%s: after 2 s regions_live %lld (before %lld), pages_live %lld (before %lld)",
		when, regions, c->regions, pages, c->pages);
	return 1;
}

/* 0 when exactly one region more than at c lives */
static inline int sfork_check_alive(const struct sfork_counters *c,
				    const char *when)
{
	long long regions = sfork_stat("regions_live");

	if (regions == c->regions + 1) {
		tst_res(TPASS, "%s: the region still lives (regions_live %lld)",
			when, regions);
		return 0;
	}
	tst_res(TFAIL, "%s: regions_live %lld, expected %lld", when, regions,
		c->regions + 1);
	return 1;
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

/* one line of /proc/PID/maps */
struct sfork_maps_line {
	unsigned long start, end, inode;
	char perms[5];
	unsigned int dev_major, dev_minor;
	char path[256];		/* "" for an anonymous mapping */
};

/* 0 and *m when line is a maps line, -1 otherwise */
static inline int sfork_maps_parse(const char *line, struct sfork_maps_line *m)
{
	memset(m, 0, sizeof(*m));
	if (sscanf(line, "%lx-%lx %4s %*x %x:%x %lu %255s", &m->start, &m->end,
		   m->perms, &m->dev_major, &m->dev_minor, &m->inode,
		   m->path) < 6)
		return -1;
	return 0;
}

/* the /proc/self/maps line of the mapping holding addr; -1 if none */
static inline int sfork_maps_find(const void *addr, struct sfork_maps_line *m)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long a = (unsigned long)addr;
	char line[512];
	int ret = -1;

	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/maps) failed");
	while (fgets(line, sizeof(line), f)) {
		if (!sfork_maps_parse(line, m) && a >= m->start && a < m->end) {
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

/* perms ("rw-s"...) of the mapping holding addr into perms[5]; -1 if none */
static inline int sfork_maps_perms(const void *addr, char perms[5])
{
	struct sfork_maps_line m;

	if (sfork_maps_find(addr, &m))
		return -1;
	memcpy(perms, m.perms, 5);
	return 0;
}

/* the field ("Rss", "Swap", ...) of addr's mapping in /proc/self/smaps, in kB; -1 if none */
static inline long long sfork_smaps_kb(const void *addr, const char *field)
{
	unsigned long start, end, a = (unsigned long)addr;
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[256], fmt[64];
	long long kb = -1;
	int inside = 0;

	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/smaps)");
	snprintf(fmt, sizeof(fmt), "%s: %%lld kB", field);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			inside = a >= start && a < end;
			continue;
		}
		if (inside && sscanf(line, fmt, &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/*
 * The path of file in the cgroup v2 group the caller is in (the cgroup2
 * mount from /proc/self/mountinfo, the group from /proc/self/cgroup), for
 * the files LTP's cgroup API does not know (memory.peak, memory.reclaim).
 */
static inline void sfork_cg_path(const char *file, char *path, size_t size)
{
	char line[1024], mnt[PATH_MAX] = "", group[PATH_MAX] = "";
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/mountinfo)");
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, " - cgroup2 ") &&
		    sscanf(line, "%*d %*d %*s %*s %4095s", mnt) == 1)
			break;
		mnt[0] = '\0';
	}
	fclose(f);
	SAFE_FILE_SCANF("/proc/self/cgroup", "0::%4095s", group);
	if (!mnt[0])
		tst_brk(TBROK, "no cgroup2 mount in /proc/self/mountinfo");
	snprintf(path, size, "%s%s/%s", mnt, strcmp(group, "/") ? group : "",
		 file);
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

/* handler (SA_SIGINFO) for SIGSEGV and SIGBUS; the old actions, if asked */
static inline void sfork_catch_faults(void (*handler)(int, siginfo_t *, void *),
				      struct sigaction *old_segv,
				      struct sigaction *old_bus)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	SAFE_SIGACTION(SIGSEGV, &sa, old_segv);
	SAFE_SIGACTION(SIGBUS, &sa, old_bus);
}

static inline void sfork_fault_arm(struct sigaction *old_segv,
				   struct sigaction *old_bus)
{
	sfork_catch_faults(sfork_fault_handler, old_segv, old_bus);
}

static inline void sfork_fault_disarm(struct sigaction *old_segv,
				      struct sigaction *old_bus)
{
	SAFE_SIGACTION(SIGSEGV, old_segv, NULL);
	SAFE_SIGACTION(SIGBUS, old_bus, NULL);
}

/* *addr = *val (store) or *val = *addr; 0, or 1 when it faulted (*si) */
static inline int sfork_try_access(volatile char *addr, char *val, int store,
				   siginfo_t *si)
{
	struct sigaction old_segv, old_bus;
	volatile int faulted = 0;

	memset(&sfork_fault_info, 0, sizeof(sfork_fault_info));
	sfork_fault_arm(&old_segv, &old_bus);
	if (sigsetjmp(sfork_fault_jmp, 1) == 0) {
		if (store)
			*addr = *val;
		else
			*val = *addr;
	} else {
		faulted = 1;
	}
	sfork_fault_disarm(&old_segv, &old_bus);

	if (faulted && si)
		*si = sfork_fault_info;
	return faulted;
}

/*
 * Stores val at addr.  Returns 0 when the store completed, 1 when it raised
 * SIGSEGV or SIGBUS (*si, if not NULL, holds the signal's siginfo).
 */
static inline int sfork_try_store(volatile char *addr, char val, siginfo_t *si)
{
	return sfork_try_access(addr, &val, 1, si);
}

/* Loads *addr into *val; 0, or 1 when the load faulted (as above). */
static inline int sfork_try_load(volatile char *addr, char *val, siginfo_t *si)
{
	return sfork_try_access(addr, val, 0, si);
}

/* A byte that depends on the offset and a seed (never constant over a page). */
static inline unsigned char sfork_pattern(size_t off, unsigned int seed)
{
	return (unsigned char)((off * 131u + (off >> 12) * 7u + seed * 29u + 1u) & 0xff);
}

/* 0 when a child was killed by sig, else TFAIL "who <how it ended>" and 1 */
static inline int sfork_check_killed(const char *who, int status, int sig)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == sig)
		return 0;
	tst_res(TFAIL, "%s %s, expected killed by %s", who,
		tst_strstatus(status), tst_strsig(sig));
	return 1;
}

/* ---- data ---- */

/* above this region size, data checks sample SFORK_SAMPLE bytes per page end */
#define SFORK_FULL_CHECK_MAX	(4UL << 20)
#define SFORK_SAMPLE		64

/*
 * The next offset of a page-aligned range to write or check after k: every
 * byte, or with sample in a region above SFORK_FULL_CHECK_MAX the first and
 * last SFORK_SAMPLE bytes of each page.
 */
static inline size_t sfork_next_off(size_t k, int sample)
{
	k++;
	if (sample && sfork_region_size > SFORK_FULL_CHECK_MAX &&
	    k % sfork_page == SFORK_SAMPLE)
		k += sfork_page - 2 * SFORK_SAMPLE;
	return k;
}

/* p[k] = sfork_pattern(off + k, seed) for k in [0, len) (sample: above) */
static inline void sfork_fill_sample(unsigned char *p, size_t off, size_t len,
				     unsigned int seed, int sample)
{
	size_t k;

	for (k = 0; k < len; k = sfork_next_off(k, sample))
		p[k] = sfork_pattern(off + k, seed);
}

static inline void sfork_fill(unsigned char *p, size_t off, size_t len,
			      unsigned int seed)
{
	sfork_fill_sample(p, off, len, seed, 0);
}

/*
 * 0 when p[0, len) holds what sfork_fill(p, off, len, seed) wrote (seed 0:
 * zeroes), else TFAIL "<what>: region byte N (at P) is X, expected Y".
 */
static inline int sfork_check_fill_sample(const unsigned char *p, size_t off,
					  size_t len, unsigned int seed,
					  int sample, const char *what)
{
	unsigned char want;
	size_t k;

	for (k = 0; k < len; k = sfork_next_off(k, sample)) {
		want = seed ? sfork_pattern(off + k, seed) : 0;
		if (p[k] != want) {
			tst_res(TFAIL, "%s: region byte %zu (at %p) is 0x%02x, expected 0x%02x",
				what, off + k, (const void *)(p + k), p[k], want);
			return 1;
		}
	}
	return 0;
}

static inline int sfork_check_fill(const unsigned char *p, size_t off,
				   size_t len, unsigned int seed,
				   const char *what)
{
	return sfork_check_fill_sample(p, off, len, seed, 0, what);
}

/* pages [pg0, pg1) of the region at p, sampled above 4 MiB */
static inline void sfork_fill_pages(unsigned char *p, size_t pg0, size_t pg1,
				    unsigned int seed)
{
	sfork_fill_sample(p + pg0 * sfork_page, pg0 * sfork_page,
			  (pg1 - pg0) * sfork_page, seed, 1);
}

static inline int sfork_check_pages(const unsigned char *p, size_t pg0,
				    size_t pg1, unsigned int seed,
				    const char *what)
{
	return sfork_check_fill_sample(p + pg0 * sfork_page, pg0 * sfork_page,
				       (pg1 - pg0) * sfork_page, seed, 1, what);
}

/* ---- a side's mapping ---- */

/* 0 when a store at p raises SIGSEGV / SEGV_ACCERR at p (a read-only page) */
static inline int sfork_check_store_faults(unsigned char *p, const char *what)
{
	siginfo_t si;

	if (!sfork_try_store((volatile char *)p, 0x5a, &si)) {
		tst_res(TFAIL, "%s: store to %p succeeded", what, (void *)p);
		return 1;
	}
	if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR ||
	    si.si_addr != (void *)p) {
		tst_res(TFAIL, "%s: store to %p raised %s si_code %d si_addr %p, expected SIGSEGV/SEGV_ACCERR at the store",
			what, (void *)p, tst_strsig(si.si_signo), si.si_code,
			si.si_addr);
		return 1;
	}
	return 0;
}

/* stores to at most this many pages of a read-only range are tried */
#define SFORK_MAX_PROBES	64

/*
 * 0 when [p, p + len) is read-only: a store to each of up to
 * SFORK_MAX_PROBES pages raises SIGSEGV / SEGV_ACCERR at its address and
 * mprotect(PROT_READ | PROT_WRITE) of the range fails with EACCES.
 */
static inline int sfork_check_read_only(unsigned char *p, size_t len,
					const char *what)
{
	size_t npages = len / sfork_page, step, i;

	step = npages > SFORK_MAX_PROBES ? npages / SFORK_MAX_PROBES : 1;
	for (i = 0; i < npages; i += step)
		if (sfork_check_store_faults(p + i * sfork_page + (i % 3) * 8,
					     what))
			return 1;

	TST_EXP_FAIL_SILENT(mprotect(p, len, PROT_READ | PROT_WRITE), EACCES,
			    "%s: mprotect(%p, %zu, RW)", what, (void *)p, len);
	return !TST_PASS;
}

/* 0 when storing val at p succeeds */
static inline int sfork_check_store(unsigned char *p, unsigned char val,
				    const char *what)
{
	siginfo_t si;

	if (!sfork_try_store((volatile char *)p, (char)val, &si))
		return 0;
	tst_res(TFAIL, "%s: store to %p raised %s si_code %d", what, (void *)p,
		tst_strsig(si.si_signo), si.si_code);
	return 1;
}

/* 0 when [p, p + len) is read-only (ro) or a store to p succeeds (!ro) */
static inline int sfork_check_side(unsigned char *p, size_t len, int ro,
				   const char *what)
{
	return ro ? sfork_check_read_only(p, len, what) :
		    sfork_check_store(p, *p, what);
}

/* 0 when a load from p raises SIGSEGV / SEGV_MAPERR (nothing mapped) */
static inline int sfork_check_unmapped(unsigned char *p, const char *what)
{
	siginfo_t si;
	char c;

	if (!sfork_try_load((volatile char *)p, &c, &si)) {
		tst_res(TFAIL, "%s: %p still readable", what, (void *)p);
		return 1;
	}
	if (si.si_signo != SIGSEGV || si.si_code != SEGV_MAPERR) {
		tst_res(TFAIL, "%s: load from %p raised %s si_code %d, expected SEGV_MAPERR",
			what, (void *)p, tst_strsig(si.si_signo), si.si_code);
		return 1;
	}
	return 0;
}

#endif /* SFORK_TEST_H__ */
