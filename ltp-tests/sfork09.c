// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork09 - execve, munmap and exit end a side's mapping, not the region.
 *
 * Adapts LTP's munmap01 (unmapped memory faults), mem/vma/vma01 (VMAs seen
 * in /proc/PID/maps) and the execve tests (a new image has none of the old
 * mappings) to sfork.  For each direction (-d, or bi, p2c and c2p when -d
 * is not given), allocation -a and size -s (at least 4 pages):
 *
 *  0. the sfork child (after writing, if it writes) execs
 *     "cat /proc/self/maps": the new image's maps has no line of the
 *     region's file (same path or device:inode as the region's line in the
 *     sfork child before the exec); the parent still maps the region,
 *     reads the data and keeps its permission;
 *  1. the same for a fork child of the sfork parent (the parent's view,
 *     read-only with c2p);
 *  2. munmap in part and whole on both sides: the child unmaps page 1, the
 *     parent page 0 (both succeed, the unmapped page then faults with
 *     SEGV_MAPERR, the rest keeps its permission); the writer stores a new
 *     pattern over what it still maps and the other side sees it on the
 *     pages both map, and the old data on the page only it maps; then the
 *     child unmaps all: the region still lives (regions_live) while the
 *     parent maps the rest; once the parent unmaps too (both processes
 *     still alive) regions_live and pages_live are back to their values
 *     before the case;
 *  3. the child exits first: the parent still reads the data, keeps its
 *     permission (read-only stays read-only), the region still lives;
 *  4. the parent exits first (a helper process makes the sfork call and
 *     exits; the test is the child subreaper): the child still reads the
 *     data and keeps its permission.
 *
 * After every case, once both sides are gone, regions_live and pages_live
 * of /sys/kernel/debug/sfork/stats return to their values before the case
 * within 2 s.
 *
 * A module that keeps a region in the exec'd image, refuses munmap, frees
 * the pages while a side still maps them, or leaks the region or its pages
 * after the last unmap or exit fails one of these checks.
 */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_PARENT	0
#define CP_CHILD	1

#define SEED1		61
#define SEED2		62

#define MIN_PAGES	4
#define FULL_CHECK_MAX	(4UL << 20)
#define SAMPLE		64
#define MAX_PROBES	64
#define MAPS_MAX	(256 * 1024)

struct maps_id {
	char path[256];
	unsigned int dev_major, dev_minor;
	unsigned long inode;
};

static unsigned int dirs[3];
static unsigned int dirs_cnt;
static size_t region_len;
static long long base_regions, base_pages;
static char *maps_buf;

/* pages [pg0, pg1) */
static void fill(unsigned char *p, size_t pg0, size_t pg1, unsigned int seed)
{
	size_t pg, i;

	for (pg = pg0 * sfork_page; pg < pg1 * sfork_page; pg += sfork_page) {
		for (i = 0; i < sfork_page; i++) {
			if (region_len > FULL_CHECK_MAX && i == SAMPLE)
				i = sfork_page - SAMPLE;
			p[pg + i] = sfork_pattern(pg + i, seed);
		}
	}
}

static int verify(const unsigned char *p, size_t pg0, size_t pg1,
		  unsigned int seed, const char *who, const char *when)
{
	unsigned char want;
	size_t pg, i;

	for (pg = pg0 * sfork_page; pg < pg1 * sfork_page; pg += sfork_page) {
		for (i = 0; i < sfork_page; i++) {
			if (region_len > FULL_CHECK_MAX && i == SAMPLE)
				i = sfork_page - SAMPLE;
			want = sfork_pattern(pg + i, seed);
			if (p[pg + i] != want) {
				tst_res(TFAIL, "%s, %s: byte %zu is 0x%02x, expected 0x%02x",
					who, when, pg + i, p[pg + i], want);
				return 1;
			}
		}
	}
	return 0;
}

/* the permission of a side on pages [pg0, pg1): ro or writable */
static int has_side_perm(unsigned char *p, size_t pg0, size_t pg1, int ro,
			 const char *who, const char *when)
{
	size_t npages = pg1 - pg0, step, i;
	volatile char *where;
	siginfo_t si;

	if (!ro) {
		where = (volatile char *)p + pg0 * sfork_page;
		if (sfork_try_store(where, *where, &si)) {
			tst_res(TFAIL, "%s, %s: store raised %s si_code %d", who,
				when, tst_strsig(si.si_signo), si.si_code);
			return 1;
		}
		return 0;
	}

	step = npages > MAX_PROBES ? npages / MAX_PROBES : 1;
	for (i = pg0; i < pg1; i += step) {
		where = (volatile char *)p + i * sfork_page;
		if (!sfork_try_store(where, 0x5a, &si)) {
			tst_res(TFAIL, "%s, %s: store to page %zu succeeded",
				who, when, i);
			return 1;
		}
		if (si.si_signo != SIGSEGV || si.si_code != SEGV_ACCERR ||
		    si.si_addr != (void *)where) {
			tst_res(TFAIL, "%s, %s: store to %p raised %s si_code %d si_addr %p, expected SIGSEGV/SEGV_ACCERR",
				who, when, (void *)where,
				tst_strsig(si.si_signo), si.si_code, si.si_addr);
			return 1;
		}
	}
	TEST(mprotect(p + pg0 * sfork_page, npages * sfork_page,
		      PROT_READ | PROT_WRITE));
	if (TST_RET != -1 || TST_ERR != EACCES) {
		tst_res(TFAIL | TTERRNO, "%s, %s: mprotect(RW) returned %ld, expected EACCES",
			who, when, TST_RET);
		return 1;
	}
	return 0;
}

static int page_unmapped(unsigned char *p, const char *who, const char *when)
{
	siginfo_t si;
	char c;

	if (!sfork_try_load((volatile char *)p, &c, &si)) {
		tst_res(TFAIL, "%s, %s: %p still readable", who, when, (void *)p);
		return 1;
	}
	if (si.si_signo != SIGSEGV || si.si_code != SEGV_MAPERR) {
		tst_res(TFAIL, "%s, %s: load from %p raised %s si_code %d, expected SEGV_MAPERR",
			who, when, (void *)p, tst_strsig(si.si_signo), si.si_code);
		return 1;
	}
	return 0;
}

static void take_baseline(void)
{
	base_regions = sfork_stat("regions_live");
	base_pages = sfork_stat("pages_live");
}

static void check_settled(const char *when)
{
	long long regions, pages;

	regions = sfork_stat_wait("regions_live", base_regions, 2000);
	pages = sfork_stat_wait("pages_live", base_pages, 2000);
	if (regions == base_regions && pages == base_pages)
		tst_res(TPASS, "%s: regions_live %lld and pages_live %lld back to their values before",
			when, regions, pages);
	else
		tst_res(TFAIL, "%s: after 2 s regions_live %lld (before %lld), pages_live %lld (before %lld)",
			when, regions, base_regions, pages, base_pages);
}

static void check_alive(const char *when)
{
	long long regions = sfork_stat("regions_live");

	if (regions == base_regions + 1)
		tst_res(TPASS, "%s: the region still lives (regions_live %lld)",
			when, regions);
	else
		tst_res(TFAIL, "%s: regions_live %lld, expected %lld",
			when, regions, base_regions + 1);
}

/* ---- cases 0 and 1: execve ---- */

/* the maps line of addr: path and device:inode */
static void region_maps_id(const void *addr, struct maps_id *id)
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long start, end, a = (unsigned long)addr;
	char line[512];

	memset(id, 0, sizeof(*id));
	if (!f)
		tst_brk(TBROK | TERRNO, "fopen(/proc/self/maps)");
	while (fgets(line, sizeof(line), f)) {
		id->path[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu %255s", &start, &end,
			   &id->dev_major, &id->dev_minor, &id->inode,
			   id->path) < 5)
			continue;
		if (a >= start && a < end) {
			fclose(f);
			return;
		}
	}
	fclose(f);
	tst_brk(TBROK, "region %p not in /proc/self/maps", addr);
}

/* the exec'd cat's output, NUL-terminated, into maps_buf */
static size_t read_exec_maps(int fd)
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
	return len;
}

static void check_exec_maps(const struct maps_id *id, const char *who)
{
	char *line, *save = NULL, path[256];
	unsigned int maj, min, lines = 0;
	unsigned long start, end, inode;
	int bad = 0;

	for (line = strtok_r(maps_buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		path[0] = 0;
		if (sscanf(line, "%lx-%lx %*s %*x %x:%x %lu %255s", &start, &end,
			   &maj, &min, &inode, path) < 5)
			continue;
		lines++;
		if ((id->inode && inode == id->inode && maj == id->dev_major &&
		     min == id->dev_minor) ||
		    (id->path[0] && !strcmp(path, id->path))) {
			tst_res(TFAIL, "%s: exec'd image maps the region's file: %s",
				who, line);
			bad = 1;
		}
	}

	if (!lines)
		tst_res(TFAIL, "%s: no maps lines from the exec'd cat", who);
	else if (!bad)
		tst_res(TPASS, "%s: none of the %u maps lines of the exec'd image is the region (%s %02x:%02x %lu)",
			who, lines, id->path, id->dev_major, id->dev_minor,
			id->inode);
}

static void exec_cat_maps(int fds[2])
{
	SAFE_CLOSE(fds[0]);
	SAFE_DUP2(fds[1], STDOUT_FILENO);
	SAFE_CLOSE(fds[1]);
	SAFE_EXECLP("cat", "cat", "/proc/self/maps", (char *)NULL);
}

static void case_exec(unsigned int flags, int by_sfork_child)
{
	int parent_ro = !sfork_parent_writes(flags);
	int child_writes = sfork_child_writes(flags);
	const char *who = by_sfork_child ? "sfork child exec'd" :
				 "fork child of the sfork parent exec'd";
	struct maps_id id;
	void *addr = NULL;
	int fds[2], status;
	pid_t pid, f = 0;

	SAFE_PIPE(fds);
	pid = SAFE_SFORK(region_len, flags, &addr);
	if (!pid) {
		if (child_writes)
			fill(addr, 0, region_len / sfork_page, SEED1);
		if (!by_sfork_child) {
			SAFE_CLOSE(fds[0]);
			SAFE_CLOSE(fds[1]);
			exit(0);
		}
		region_maps_id(addr, &id);
		tst_res(TINFO, "sfork child maps the region as %s %02x:%02x %lu",
			id.path, id.dev_major, id.dev_minor, id.inode);
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
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "%s: cat %s", who, tst_strstatus(status));

	region_maps_id(addr, &id);
	check_exec_maps(&id, who);

	check_alive("after the exec");
	if (child_writes &&
	    !verify(addr, 0, region_len / sfork_page, SEED1, "parent", "after the exec"))
		tst_res(TPASS, "parent reads the data the child wrote before its exec");
	if (!has_side_perm(addr, 0, region_len / sfork_page, parent_ro, "parent",
			   "after the exec"))
		tst_res(TPASS, "parent keeps its permission (%s)",
			parent_ro ? "read-only" : "writable");

	SAFE_MUNMAP(addr, region_len);
	check_settled("exec, then the parent unmapped");
}

/* ---- case 2: munmap in part and whole ---- */

static void case_munmap(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	int child_ro = !sfork_child_writes(flags);
	size_t npages = region_len / sfork_page;
	unsigned char *p;
	void *addr = NULL;
	int status, bad = 0;
	pid_t pid;

	pid = SAFE_SFORK(region_len, flags, &addr);
	p = addr;
	if (!pid) {
		if (!parent_ro)
			TST_CHECKPOINT_WAIT(CP_CHILD);
		else
			fill(p, 0, npages, SEED1);

		TST_EXP_PASS(munmap(p + sfork_page, sfork_page),
			     "child: munmap of page 1 of %zu", npages);
		bad |= page_unmapped(p + sfork_page, "child", "page 1 unmapped");
		bad |= has_side_perm(p, 0, 1, child_ro, "child", "page 1 unmapped");
		bad |= has_side_perm(p, 2, npages, child_ro, "child", "page 1 unmapped");
		bad |= verify(p, 0, 1, SEED1, "child", "page 1 unmapped");
		bad |= verify(p, 2, npages, SEED1, "child", "page 1 unmapped");
		if (!bad)
			tst_res(TPASS, "child: the rest keeps its data and permission (%s)",
				child_ro ? "read-only" : "writable");

		TST_CHECKPOINT_WAKE(CP_PARENT);
		TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
		/* now the parent maps pages 1.., the child 0 and 2.. */
		if (parent_ro) {
			fill(p, 0, 1, SEED2);
			fill(p, 2, npages, SEED2);
			TST_CHECKPOINT_WAKE(CP_PARENT);
			TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
		} else if (!verify(p, 0, 1, SEED1, "child", "page only the child maps") &&
			   !verify(p, 2, npages, SEED2, "child", "pages both map")) {
			tst_res(TPASS, "child: sees the parent's new stores on the pages both map, the old data on page 0");
		}

		TST_EXP_PASS(munmap(p, region_len), "child: munmap of the whole region");
		if (!page_unmapped(p, "child", "whole region unmapped") &&
		    !page_unmapped(p + region_len - sfork_page, "child",
				   "whole region unmapped"))
			tst_res(TPASS, "child: the region is gone from the child");
		TST_CHECKPOINT_WAKE(CP_PARENT);
		TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
		exit(0);
	}

	if (!parent_ro) {
		fill(p, 0, npages, SEED1);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);

	TST_EXP_PASS(munmap(p, sfork_page), "parent: munmap of page 0 of %zu", npages);
	bad |= page_unmapped(p, "parent", "page 0 unmapped");
	bad |= has_side_perm(p, 1, npages, parent_ro, "parent", "page 0 unmapped");
	bad |= verify(p, 1, npages, SEED1, "parent", "page 0 unmapped");
	if (!bad)
		tst_res(TPASS, "parent: pages 1.. keep the data (page 1 unmapped by the child too) and permission (%s)",
			parent_ro ? "read-only" : "writable");

	if (!parent_ro) {
		fill(p, 1, npages, SEED2);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	} else {
		TST_CHECKPOINT_WAKE(CP_CHILD);
		TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);
		if (!verify(p, 1, 2, SEED1, "parent", "page only the parent maps") &&
		    !verify(p, 2, npages, SEED2, "parent", "pages both map"))
			tst_res(TPASS, "parent: sees the child's new stores on the pages both map, the old data on page 1");
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	TST_CHECKPOINT_WAIT2(CP_PARENT, 60000);

	/* the child unmapped all; the parent still maps pages 1.. */
	check_alive("child unmapped the whole region, parent maps the rest");
	if (!verify(p, 1, 2, parent_ro ? SEED1 : SEED2, "parent", "after the child's munmap") &&
	    !verify(p, 2, npages, SEED2, "parent", "after the child's munmap"))
		tst_res(TPASS, "parent: data intact after the child's munmap");

	TST_EXP_PASS(munmap(p + sfork_page, region_len - sfork_page),
		     "parent: munmap of the rest");
	check_settled("both unmapped, both processes alive");

	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "child %s", tst_strstatus(status));
}

/* ---- case 3: the child exits first ---- */

static void case_child_exits_first(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	size_t npages = region_len / sfork_page;
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(region_len, flags, &addr);
	if (!pid) {
		if (parent_ro)
			fill(addr, 0, npages, SEED1);
		else
			TST_CHECKPOINT_WAIT(CP_CHILD);
		if (!verify(addr, 0, npages, SEED1, "child", "before exiting"))
			tst_res(TPASS, "child: sees the data before exiting");
		exit(0);	/* the mapping goes with the exit */
	}

	if (!parent_ro) {
		fill(addr, 0, npages, SEED1);
		TST_CHECKPOINT_WAKE(CP_CHILD);
	}
	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "child %s", tst_strstatus(status));

	check_alive("child exited first");
	if (!verify(addr, 0, npages, SEED1, "parent", "after the child's exit") &&
	    !has_side_perm(addr, 0, npages, parent_ro, "parent", "after the child's exit"))
		tst_res(TPASS, "parent (survivor): data intact, still %s",
			parent_ro ? "read-only" : "writable");
	if (!parent_ro) {
		fill(addr, 0, npages, SEED2);
		if (!verify(addr, 0, npages, SEED2, "parent", "own stores after the child's exit"))
			tst_res(TPASS, "parent (survivor): still stores and reads back");
	}

	SAFE_MUNMAP(addr, region_len);
	check_settled("child exited, parent unmapped");
}

/* ---- case 4: the parent exits first ---- */

static void case_parent_exits_first(unsigned int flags)
{
	int parent_ro = !sfork_parent_writes(flags);
	int child_ro = !sfork_child_writes(flags);
	size_t npages = region_len / sfork_page;
	pid_t helper, pid, ppid;
	void *addr = NULL;
	int fds[2], status, i;

	SAFE_PIPE(fds);
	helper = SAFE_FORK();
	if (!helper) {
		SAFE_CLOSE(fds[0]);
		pid = SAFE_SFORK(region_len, flags, &addr);
		if (!pid) {
			SAFE_CLOSE(fds[1]);
			ppid = getppid();
			if (parent_ro) {
				fill(addr, 0, npages, SEED1);
				TST_CHECKPOINT_WAKE(CP_PARENT);
			}
			TST_CHECKPOINT_WAIT(CP_CHILD);
			for (i = 0; i < 500 && getppid() == ppid; i++)
				usleep(10000);
			if (getppid() == ppid)
				tst_brk(TBROK, "the sfork parent did not exit");

			check_alive("sfork parent exited first");
			if (!verify(addr, 0, npages, SEED1, "child", "after the parent's exit") &&
			    !has_side_perm(addr, 0, npages, child_ro, "child",
					   "after the parent's exit"))
				tst_res(TPASS, "child (survivor): data intact, still %s",
					child_ro ? "read-only" : "writable");
			if (!child_ro) {
				fill(addr, 0, npages, SEED2);
				if (!verify(addr, 0, npages, SEED2, "child",
					    "own stores after the parent's exit"))
					tst_res(TPASS, "child (survivor): still stores and reads back");
			}
			exit(0);
		}

		if (parent_ro)
			TST_CHECKPOINT_WAIT(CP_PARENT);
		else
			fill(addr, 0, npages, SEED1);
		if (!verify(addr, 0, npages, SEED1, "sfork parent", "before exiting"))
			tst_res(TPASS, "sfork parent: sees the data before exiting");
		SAFE_WRITE(SAFE_WRITE_ALL, fds[1], &pid, sizeof(pid));
		TST_CHECKPOINT_WAKE(CP_CHILD);
		exit(0);
	}

	SAFE_CLOSE(fds[1]);
	SAFE_READ(1, fds[0], &pid, sizeof(pid));
	SAFE_CLOSE(fds[0]);
	SAFE_WAITPID(helper, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "sfork parent %s", tst_strstatus(status));
	/* reparented to us (child subreaper) when the helper exited */
	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		tst_res(TFAIL, "sfork child %s", tst_strstatus(status));

	check_settled("parent exited, then the child");
}

static const char *const case_names[] = {
	"the sfork child execs",
	"a fork child of the sfork parent execs",
	"munmap in part and whole on both sides",
	"the child exits first",
	"the parent exits first",
};

static void run(unsigned int n)
{
	unsigned int i, flags;

	for (i = 0; i < dirs_cnt; i++) {
		flags = dirs[i] | (sfork_flags & SFORK_ALLOC_MASK);
		tst_res(TINFO, "%s, direction %s", case_names[n],
			sfork_dir_name(flags));
		take_baseline();
		switch (n) {
		case 0:
		case 1:
			case_exec(flags, n == 0);
			break;
		case 2:
			case_munmap(flags);
			break;
		case 3:
			case_child_exits_first(flags);
			break;
		case 4:
			case_parent_exits_first(flags);
			break;
		}
	}
}

static void setup(void)
{
	sfork_test_setup();

	region_len = sfork_region_size;
	if (region_len < MIN_PAGES * sfork_page) {
		region_len = MIN_PAGES * sfork_page;
		tst_res(TINFO, "region raised to %d pages for the partial unmaps",
			MIN_PAGES);
	}

	if (!sfork_str_dir) {
		dirs[dirs_cnt++] = SFORK_BIDIRECTIONAL;
		dirs[dirs_cnt++] = SFORK_PARENT_TO_CHILD;
		dirs[dirs_cnt++] = SFORK_CHILD_TO_PARENT;
	} else {
		dirs[dirs_cnt++] = sfork_flags & SFORK_DIRECTION_MASK;
	}

	maps_buf = SAFE_MALLOC(MAPS_MAX);
	/* case 4: the orphaned sfork child becomes our child */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		tst_brk(TBROK | TERRNO, "prctl(PR_SET_CHILD_SUBREAPER)");
	sfork_stat("regions_live");
}

static struct tst_test test = {
	.setup = setup,
	.test = run,
	.tcnt = ARRAY_SIZE(case_names),
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.timeout = 180,
};
