// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cgroup v2 support for tests (.needs_cgroup_ctrls, tst_cg, SAFE_CG_*).
 * Written for sfork from LTP's documented API (include/tst_cgroup.h names
 * and semantics); no LTP code is used.  Only the unified (v2) hierarchy is
 * supported; a test asking for V1 gets TCONF.
 *
 * Layout: <root>/ltp/{drain,test-<pid>}, the required controllers enabled
 * in <root>/cgroup.subtree_control and <root>/ltp/cgroup.subtree_control.
 * Everything is done by the library process: groups are made before the
 * test process starts and removed after it ended.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"

#define MAX_CTRLS	16
#define MAX_GROUPS	64
#define UNIFIED_MNT	"/tmp/cgroup_unified"

struct tst_cg_group {
	char name[NAME_MAX + 1];
	char path[PATH_MAX];
};

static struct tst_cg_group test_group, drain_group;
const struct tst_cg_group *const tst_cg = &test_group;
const struct tst_cg_group *const tst_cg_drain = &drain_group;

static char root[PATH_MAX];
static char ltp_dir[PATH_MAX];
static int mounted_root;
static const char *ctrls[MAX_CTRLS];
static unsigned int ctrls_cnt;
/* groups made with tst_cg_group_mk(), removed in reverse order at cleanup */
static struct tst_cg_group *groups[MAX_GROUPS];
static unsigned int groups_cnt;
static int initialized;

/* out = a "/" b; the components are short, a long path is truncated */
static void join(char *out, size_t size, const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la >= size)
		la = size - 1;
	memcpy(out, a, la);
	if (la + 1 < size)
		out[la++] = '/';
	if (lb > size - 1 - la)
		lb = size - 1 - la;
	memcpy(out + la, b, lb);
	out[la + lb] = '\0';
}

/* ---- small file helpers (TBROK at the caller's file:line) ---- */

/*
 * The files LTP's cgroup API knows for the core and the memory controller
 * (lib/tst_cgroup.c there): any other cgroup.* or memory.* file is TBROK,
 * as it is in LTP, so that a test that works here also works there.
 */
static const char *const known_files[] = {
	"cgroup.procs", "cgroup.controllers", "cgroup.subtree_control",
	"cgroup.clone_children", "cgroup.kill",
	"memory.current", "memory.events", "memory.low", "memory.min",
	"memory.max", "memory.stat", "memory.swappiness", "memory.swap.current",
	"memory.swap.max", "memory.kmem.usage_in_bytes",
	"memory.kmem.limit_in_bytes", NULL
};

static void check_known(const char *file, const int lineno,
			const char *file_name)
{
	const char *dot = strchr(file_name, '.');
	int i;

	if (strncmp(file_name, "cgroup.", 7) && strncmp(file_name, "memory.", 7))
		return;
	for (i = 0; known_files[i]; i++) {
		if (!strcmp(known_files[i], file_name))
			return;
	}
	tst_brk_(file, lineno, TBROK, "Did not find '%s' in '%.*s'", file_name,
		 (int)(dot - file_name), file_name);
}

static ssize_t read_file(const char *file, const int lineno, const char *dir,
			 const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	check_known(file, lineno, name);
	join(path, sizeof(path), dir, name);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		tst_brk_(file, lineno, TBROK | TERRNO, "open(%s) failed", path);
		return -1;
	}
	n = read(fd, buf, len - 1);
	if (n < 0) {
		tst_brk_(file, lineno, TBROK | TERRNO, "read(%s) failed", path);
		close(fd);
		return -1;
	}
	buf[n] = '\0';
	close(fd);
	return n;
}

/* 0 or -1 with errno; no report */
static int write_str(const char *dir, const char *name, const char *str)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd, err;

	join(path, sizeof(path), dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	n = write(fd, str, strlen(str));
	err = errno;
	close(fd);
	if (n != (ssize_t)strlen(str)) {
		errno = n < 0 ? err : EIO;
		return -1;
	}
	return 0;
}

static int has_word(const char *list, const char *word)
{
	size_t len = strlen(word);
	const char *p = list;

	while ((p = strstr(p, word))) {
		if ((p == list || p[-1] == ' ' || p[-1] == '\n') &&
		    (p[len] == ' ' || p[len] == '\n' || p[len] == '\0'))
			return 1;
		p += len;
	}
	return 0;
}

/* ---- finding the hierarchy ---- */

static int find_cgroup2(char *out, size_t size)
{
	char line[4096], mnt[PATH_MAX], fstype[64];
	const char *sep;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		return 0;

	while (fgets(line, sizeof(line), f)) {
		/* "id parent maj:min root mountpoint opts... - fstype src opts" */
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep, " - %63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		snprintf(out, size, "%s", mnt);
		fclose(f);
		return 1;
	}
	fclose(f);
	return 0;
}

static void find_root(void)
{
	if (root[0])
		return;

	if (find_cgroup2(root, sizeof(root)))
		return;

	if (mkdir(UNIFIED_MNT, 0777) && errno != EEXIST)
		tst_brk(TCONF | TERRNO, "No cgroup2 mounted and mkdir(%s) failed",
			UNIFIED_MNT);
	if (mount("cgroup2", UNIFIED_MNT, "cgroup2", 0, NULL)) {
		rmdir(UNIFIED_MNT);
		tst_brk(TCONF | TERRNO, "No cgroup2 mounted and mounting one failed");
	}
	mounted_root = 1;
	snprintf(root, sizeof(root), "%s", UNIFIED_MNT);
	tst_res(TINFO, "Mounted cgroup2 at %s", root);
}

void tst_cg_require(const char *const ctrl_name,
		    const struct tst_cg_opts *const options)
{
	char buf[1024];

	if (options->needs_ver == TST_CG_V1)
		tst_brk(TCONF, "V1 '%s' controller required, but only cgroup v2 is supported",
			ctrl_name);

	find_root();

	read_file(__FILE__, __LINE__, root, "cgroup.controllers", buf,
		  sizeof(buf));
	if (!has_word(buf, ctrl_name))
		tst_brk(TCONF, "'%s' controller required, but not available",
			ctrl_name);

	if (ctrls_cnt >= MAX_CTRLS)
		tst_brk(TBROK, "Too many cgroup controllers");
	ctrls[ctrls_cnt++] = ctrl_name;
}

/* Enables every required controller for dir's children. */
static void enable_ctrls(const char *dir)
{
	char buf[1024], cmd[128];
	unsigned int i;

	read_file(__FILE__, __LINE__, dir, "cgroup.subtree_control", buf,
		  sizeof(buf));

	for (i = 0; i < ctrls_cnt; i++) {
		if (has_word(buf, ctrls[i]))
			continue;
		snprintf(cmd, sizeof(cmd), "+%s", ctrls[i]);
		if (write_str(dir, "cgroup.subtree_control", cmd))
			tst_brk(TBROK | TERRNO,
				"Enabling '%s' in %s/cgroup.subtree_control failed",
				ctrls[i], dir);
	}
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0777) && errno != EEXIST)
		tst_brk(TBROK | TERRNO, "mkdir(%s) failed", path);
}

void tst_cg_init(void)
{
	if (!ctrls_cnt)
		tst_brk(TBROK, "tst_cg_require() must be called first");

	enable_ctrls(root);

	join(ltp_dir, sizeof(ltp_dir), root, "ltp");
	make_dir(ltp_dir);
	enable_ctrls(ltp_dir);

	snprintf(drain_group.name, sizeof(drain_group.name), "drain");
	join(drain_group.path, sizeof(drain_group.path), ltp_dir, "drain");
	make_dir(drain_group.path);

	snprintf(test_group.name, sizeof(test_group.name), "test-%d",
		 (int)getpid());
	join(test_group.path, sizeof(test_group.path), ltp_dir,
	     test_group.name);
	if (mkdir(test_group.path, 0777))
		tst_brk(TBROK | TERRNO, "mkdir(%s) failed", test_group.path);

	initialized = 1;
}

/* ---- removal ---- */

/* Moves every process of cg to the drain group. */
static void drain_procs(const struct tst_cg_group *cg)
{
	char buf[8192], *p, *end;
	char path[PATH_MAX];
	long pid;
	int fd;

	join(path, sizeof(path), cg->path, "cgroup.procs");
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return;
	buf[0] = '\0';
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		buf[sizeof(buf) - 1] = '\0';
	close(fd);

	for (p = buf; *p; p = end) {
		pid = strtol(p, &end, 10);
		if (end == p)
			break;
		snprintf(path, sizeof(path), "%ld", pid);
		write_str(drain_group.path, "cgroup.procs", path);
	}
}

/* rmdir, retried for a second while dying processes leave the group */
static int remove_group_dir(const char *path)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (!rmdir(path) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			break;
		usleep(10000);
	}
	return -1;
}

static int drain_is_empty(const char *procs_path)
{
	char c;
	int fd = open(procs_path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, &c, 1);
	close(fd);
	return n == 0;
}

/* Runs in the library process at exit: reports problems, never tst_brk()s. */
void tst_cg_cleanup(void)
{
	char buf[PATH_MAX];

	if (!initialized)
		goto unmount;

	while (groups_cnt) {
		struct tst_cg_group *g = groups[--groups_cnt];

		drain_procs(g);
		if (remove_group_dir(g->path))
			tst_res(TWARN | TERRNO, "rmdir(%s) failed", g->path);
		free(g);
	}

	drain_procs(&test_group);
	if (remove_group_dir(test_group.path))
		tst_res(TWARN | TERRNO, "rmdir(%s) failed", test_group.path);

	/* drain and ltp/ go when nothing else uses them */
	join(buf, sizeof(buf), drain_group.path, "cgroup.procs");
	if (drain_is_empty(buf))
		rmdir(drain_group.path);
	rmdir(ltp_dir);
	initialized = 0;

unmount:
	if (mounted_root) {
		if (umount(root))
			tst_res(TWARN | TERRNO, "umount(%s) failed", root);
		rmdir(root);
		mounted_root = 0;
	}
}

/* ---- groups ---- */

struct tst_cg_group *tst_cg_group_mk(const struct tst_cg_group *const parent,
				     const char *const group_name_fmt, ...)
{
	struct tst_cg_group *g;
	va_list va;

	if (groups_cnt >= MAX_GROUPS)
		tst_brk(TBROK, "Too many cgroups");

	g = SAFE_CALLOC(1, sizeof(*g));
	va_start(va, group_name_fmt);
	vsnprintf(g->name, sizeof(g->name), group_name_fmt, va);
	va_end(va);
	join(g->path, sizeof(g->path), parent->path, g->name);

	enable_ctrls(parent->path);
	if (mkdir(g->path, 0777))
		tst_brk(TBROK | TERRNO, "mkdir(%s) failed", g->path);

	groups[groups_cnt++] = g;
	return g;
}

struct tst_cg_group *tst_cg_group_rm(struct tst_cg_group *const cg)
{
	unsigned int i;

	drain_procs(cg);
	if (remove_group_dir(cg->path))
		tst_brk(TBROK | TERRNO, "rmdir(%s) failed", cg->path);

	for (i = 0; i < groups_cnt; i++) {
		if (groups[i] == cg) {
			groups[i] = groups[--groups_cnt];
			break;
		}
	}
	free(cg);
	return NULL;
}

const char *tst_cg_group_name(const struct tst_cg_group *const cg)
{
	return cg->name;
}

enum tst_cg_ver tst_cg_ver(const char *const file, const int lineno,
			   const struct tst_cg_group *const cg,
			   const char *const ctrl_name)
{
	(void)cg;

	if (!root[0])
		tst_brk_(file, lineno, TBROK, "'%s' controller was not required",
			 ctrl_name);
	return TST_CG_V2;
}

/* ---- SAFE_CG_* ---- */

int safe_cg_has(const char *const file, const int lineno,
		const struct tst_cg_group *const cg,
		const char *const file_name)
{
	char path[PATH_MAX];

	check_known(file, lineno, file_name);
	join(path, sizeof(path), cg->path, file_name);
	return access(path, F_OK) == 0;
}

ssize_t safe_cg_read(const char *const file, const int lineno,
		     const struct tst_cg_group *const cg,
		     const char *const file_name, char *const out,
		     const size_t len)
{
	return read_file(file, lineno, cg->path, file_name, out, len);
}

void safe_cg_printf(const char *const file, const int lineno,
		    const struct tst_cg_group *const cg,
		    const char *const file_name, const char *const fmt, ...)
{
	char buf[1024];
	va_list va;

	check_known(file, lineno, file_name);
	va_start(va, fmt);
	vsnprintf(buf, sizeof(buf), fmt, va);
	va_end(va);

	if (write_str(cg->path, file_name, buf))
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "write(%s/%s, '%s') failed", cg->path, file_name, buf);
}

/* Number of assignments a scanf format makes (%% and %*... excluded). */
static int conversions(const char *fmt)
{
	int n = 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%')
			continue;
		if (!*++fmt)
			break;
		if (*fmt != '%' && *fmt != '*')
			n++;
	}
	return n;
}

void safe_cg_scanf(const char *const file, const int lineno,
		   const struct tst_cg_group *const cg,
		   const char *const file_name, const char *const fmt, ...)
{
	int expected = conversions(fmt), got;
	char buf[4096];
	va_list va;

	read_file(file, lineno, cg->path, file_name, buf, sizeof(buf));

	va_start(va, fmt);
	got = vsscanf(buf, fmt, va);
	va_end(va);

	if (got != expected)
		tst_brk_(file, lineno, TBROK,
			 "'%s/%s': vsscanf('%s', '%s', ...): Less conversions than expected: %d != %d",
			 cg->path, file_name, buf, fmt, got, expected);
}

void safe_cg_lines_scanf(const char *const file, const int lineno,
			 const struct tst_cg_group *const cg,
			 const char *const file_name, const char *const fmt,
			 ...)
{
	int expected = conversions(fmt), got = 0;
	char buf[8192], *line, *save = NULL;
	va_list va;

	read_file(file, lineno, cg->path, file_name, buf, sizeof(buf));

	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		va_start(va, fmt);
		got = vsscanf(line, fmt, va);
		va_end(va);
		if (got == expected)
			return;
	}

	tst_brk_(file, lineno, TBROK,
		 "'%s/%s': no line matched '%s' (%d conversions expected)",
		 cg->path, file_name, fmt, expected);
}

int safe_cg_occursin(const char *const file, const int lineno,
		     const struct tst_cg_group *const cg,
		     const char *const file_name, const char *const needle)
{
	char buf[8192];

	read_file(file, lineno, cg->path, file_name, buf, sizeof(buf));
	return strstr(buf, needle) != NULL;
}
