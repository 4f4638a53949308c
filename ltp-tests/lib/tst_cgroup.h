/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control groups for tests: cgroup v2 only.  Written for sfork from LTP's
 * documented API (include/tst_cgroup.h names and semantics); the
 * implementation (tst_cgroup.c) is our own and much smaller.
 *
 * With .needs_cgroup_ctrls = (const char *const []){ "memory", NULL } the
 * library finds the cgroup2 hierarchy (mounting one under /tmp if none is
 * mounted), makes sure each controller is available (TCONF otherwise) and
 * creates <root>/ltp/test-<pid> with the controllers enabled in
 * <root>/ltp/cgroup.subtree_control (and in the root's), plus
 * <root>/ltp/drain.  tst_cg is that test group.  The test moves processes
 * into it itself: SAFE_CG_PRINTF(tst_cg, "cgroup.procs", "%d", pid).  At
 * the end processes left in the group are moved to drain, the test group
 * (and ltp/ when no other test uses it) is removed.
 */
#ifndef TST_CGROUP_H
#define TST_CGROUP_H

#include <sys/types.h>
#include <stddef.h>

enum tst_cg_ver {
	TST_CG_V1 = 1,
	TST_CG_V2 = 2,
};

struct tst_cg_opts {
	enum tst_cg_ver needs_ver;
	int test_pid;
};

/* a directory of the cgroup v2 hierarchy */
struct tst_cg_group;

extern const struct tst_cg_group *const tst_cg;
extern const struct tst_cg_group *const tst_cg_drain;

void tst_cg_require(const char *const ctrl_name,
		    const struct tst_cg_opts *const options)
	__attribute__((nonnull));
void tst_cg_init(void);
void tst_cg_cleanup(void);

/* a child group of parent, with parent's controllers enabled for it */
struct tst_cg_group *tst_cg_group_mk(const struct tst_cg_group *const parent,
				     const char *const group_name_fmt, ...)
	__attribute__((nonnull, warn_unused_result, format(printf, 2, 3)));
/* removes cg (its processes moved to drain); returns NULL */
struct tst_cg_group *tst_cg_group_rm(struct tst_cg_group *const cg)
	__attribute__((nonnull, warn_unused_result));
const char *tst_cg_group_name(const struct tst_cg_group *const cg)
	__attribute__((nonnull, warn_unused_result));

enum tst_cg_ver tst_cg_ver(const char *const file, const int lineno,
			   const struct tst_cg_group *const cg,
			   const char *const ctrl_name)
	__attribute__((nonnull, warn_unused_result));
#define TST_CG_VER(cg, ctrl_name) \
	tst_cg_ver(__FILE__, __LINE__, (cg), (ctrl_name))
#define TST_CG_VER_IS_V1(cg, ctrl_name) \
	(TST_CG_VER((cg), (ctrl_name)) == TST_CG_V1)

int safe_cg_has(const char *const file, const int lineno,
		const struct tst_cg_group *const cg,
		const char *const file_name)
	__attribute__((nonnull, warn_unused_result));
#define SAFE_CG_HAS(cg, file_name) \
	safe_cg_has(__FILE__, __LINE__, (cg), (file_name))

/* reads at most len - 1 bytes, NUL-terminates; returns the bytes read */
ssize_t safe_cg_read(const char *const file, const int lineno,
		     const struct tst_cg_group *const cg,
		     const char *const file_name, char *const out,
		     const size_t len)
	__attribute__((nonnull));
#define SAFE_CG_READ(cg, file_name, out, len) \
	safe_cg_read(__FILE__, __LINE__, (cg), (file_name), (out), (len))

void safe_cg_printf(const char *const file, const int lineno,
		    const struct tst_cg_group *const cg,
		    const char *const file_name, const char *const fmt, ...)
	__attribute__((format(printf, 5, 6), nonnull));
#define SAFE_CG_PRINTF(cg, file_name, fmt, ...) \
	safe_cg_printf(__FILE__, __LINE__, (cg), (file_name), (fmt), \
		       __VA_ARGS__)
#define SAFE_CG_PRINT(cg, file_name, str) \
	safe_cg_printf(__FILE__, __LINE__, (cg), (file_name), "%s", (str))

void safe_cg_scanf(const char *const file, const int lineno,
		   const struct tst_cg_group *const cg,
		   const char *const file_name, const char *const fmt, ...)
	__attribute__((format(scanf, 5, 6), nonnull));
#define SAFE_CG_SCANF(cg, file_name, fmt, ...) \
	safe_cg_scanf(__FILE__, __LINE__, (cg), (file_name), (fmt), \
		      __VA_ARGS__)

void safe_cg_lines_scanf(const char *const file, const int lineno,
			 const struct tst_cg_group *const cg,
			 const char *const file_name, const char *const fmt,
			 ...)
	__attribute__((format(scanf, 5, 6), nonnull));
#define SAFE_CG_LINES_SCANF(cg, file_name, fmt, ...) \
	safe_cg_lines_scanf(__FILE__, __LINE__, (cg), (file_name), (fmt), \
			    __VA_ARGS__)

int safe_cg_occursin(const char *const file, const int lineno,
		     const struct tst_cg_group *const cg,
		     const char *const file_name, const char *const needle);
#define SAFE_CG_OCCURSIN(cg, file_name, needle) \
	safe_cg_occursin(__FILE__, __LINE__, (cg), (file_name), (needle))

#endif /* TST_CGROUP_H */
