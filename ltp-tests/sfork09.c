// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that execve() ends a side's mapping of an sfork region, not the
 * region: the new image maps nothing of it, the other side keeps it.
 *
 * Adapts LTP's mem/vma/vma01 (VMAs seen in /proc/PID/maps) and the execve
 * tests (a new image has none of the old mappings) to sfork.  For each
 * direction (-d, or bi, p2c and c2p when -d is not given), allocation -a
 * and size -s:
 *
 * [Algorithm]
 *
 * - the sfork child (after writing, if it writes) execs
 *   "cat /proc/self/maps": no line of the new image's maps is the region's
 *   file (same path or device:inode as the region's line in the sfork child
 *   before the exec); the parent still maps the region, the region still
 *   lives (regions_live), the parent reads the data and keeps its
 *   permission
 * - the same for a fork child of the sfork parent (the parent's view,
 *   read-only with c2p)
 * - once the parent unmapped, regions_live and pages_live of
 *   /sys/kernel/debug/sfork/stats return to their values before within 2 s
 *
 * A module that keeps a region in the exec'd image, or frees the pages or
 * the region while a side still maps them, fails here.
 */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define SEED		61
#define MAPS_MAX	(256 * 1024)

static char *maps_buf;
static struct sfork_counters before;

/* the exec'd cat's output, NUL-terminated, into maps_buf */
static void read_exec_maps(int fd)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		n = SAFE_READ(0, fd, maps_buf + len, MAPS_MAX - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == MAPS_MAX - 1)
			break;
	}
	maps_buf[len] = 0;
}

static int same_file(const struct sfork_maps_line *a,
		     const struct sfork_maps_line *b)
{
	return (b->inode && a->inode == b->inode &&
		a->dev_major == b->dev_major && a->dev_minor == b->dev_minor) ||
	       (b->path[0] && !strcmp(a->path, b->path));
}

static void check_exec_maps(const struct sfork_maps_line *region,
			    const char *who)
{
	char *line, *save = NULL;
	struct sfork_maps_line m;
	unsigned int lines = 0;
	int bad = 0;

	for (line = strtok_r(maps_buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sfork_maps_parse(line, &m))
			continue;
		lines++;
		if (same_file(&m, region)) {
			tst_res(TFAIL, "%s: exec'd image maps the region's file: %s",
				who, line);
			bad = 1;
		}
	}

	if (!lines)
		tst_res(TFAIL, "%s: no maps lines from the exec'd cat", who);
	else if (!bad)
		tst_res(TPASS, "%s: none of the %u maps lines of the exec'd image is the region (%s %02x:%02x %lu)",
			who, lines, region->path, region->dev_major,
			region->dev_minor, region->inode);
}

static void exec_cat_maps(int fds[2])
{
	SAFE_CLOSE(fds[0]);
	SAFE_DUP2(fds[1], STDOUT_FILENO);
	SAFE_CLOSE(fds[1]);
	SAFE_EXECLP("cat", "cat", "/proc/self/maps", (char *)NULL);
}

static void region_maps_line(void *addr, struct sfork_maps_line *m)
{
	if (sfork_maps_find(addr, m))
		tst_brk(TBROK, "region %p not in /proc/self/maps", addr);
}

/* n 0: the sfork child execs, 1: a fork child of the sfork parent */
static void case_exec(unsigned int n, unsigned int flags)
{
	int by_sfork_child = n == 0;
	int parent_ro = !sfork_parent_writes(flags);
	int child_writes = sfork_child_writes(flags);
	size_t npages = sfork_region_size / sfork_page;
	const char *who = by_sfork_child ? "sfork child exec'd" :
				 "fork child of the sfork parent exec'd";
	struct sfork_maps_line region;
	void *addr = NULL;
	int fds[2], status;
	pid_t pid, f = 0;

	sfork_counters_save(&before);
	SAFE_PIPE(fds);
	pid = SAFE_SFORK(sfork_region_size, flags, &addr);
	if (!pid) {
		if (child_writes)
			sfork_fill_pages(addr, 0, npages, SEED);
		if (!by_sfork_child) {
			SAFE_CLOSE(fds[0]);
			SAFE_CLOSE(fds[1]);
			exit(0);
		}
		region_maps_line(addr, &region);
		tst_res(TINFO, "sfork child maps the region as %s %02x:%02x %lu",
			region.path, region.dev_major, region.dev_minor,
			region.inode);
		exec_cat_maps(fds);
	}

	if (!by_sfork_child) {
		SAFE_WAITPID(pid, &status, 0);
		f = SAFE_FORK();
		if (!f)
			exec_cat_maps(fds);
	}

	SAFE_CLOSE(fds[1]);
	read_exec_maps(fds[0]);
	SAFE_CLOSE(fds[0]);

	SAFE_WAITPID(by_sfork_child ? pid : f, &status, 0);
	sfork_check_exit0(by_sfork_child ? "exec'd cat of the sfork child" :
			  "exec'd cat of the fork child", status);

	region_maps_line(addr, &region);
	check_exec_maps(&region, who);

	sfork_check_alive(&before, "after the exec");
	if (child_writes &&
	    !sfork_check_pages(addr, 0, npages, SEED, "parent, after the exec"))
		tst_res(TPASS, "parent reads the data the child wrote before its exec");
	if (!sfork_check_side(addr, sfork_region_size, parent_ro,
			      "parent, after the exec"))
		tst_res(TPASS, "parent keeps its permission (%s)",
			parent_ro ? "read-only" : "writable");

	SAFE_MUNMAP(addr, sfork_region_size);
	sfork_check_settled(&before, "exec, then the parent unmapped");
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, n ? "a fork child of the sfork parent execs" :
				"the sfork child execs", case_exec);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_ALL);
	maps_buf = SAFE_MALLOC(MAPS_MAX);
	sfork_stat("regions_live");
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test = run,
	.tcnt = 2,
	.forks_child = 1,
	.needs_root = 1,
	.timeout = 180,
};
