// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Every error of the contract's table, and nothing created.
 *
 * Adapts LTP's argument-error tests of mmap (mmap08: bad arguments give
 * -1 and errno) and fork (fork05/fork14 style: a failing fork leaves no
 * child) to sfork.  Each row runs in a fresh child of the test so that its
 * counts start clean and a crash is a failure, not a broken test:
 *
 *  EINVAL  len == 0; unknown flag bits; no direction; two or three
 *          directions; SFORK_LAZY|SFORK_EAGER; addr == NULL
 *  EFAULT  addr pointing to a read-only page, to an unmapped page, to a
 *          non-canonical address
 *  ENOMEM  len = max_region_bytes + 1 and + 1 page (the module parameter),
 *          SIZE_MAX, SIZE_MAX - page + 2 (does not round up), 2^63
 *  EAGAIN  the fork itself fails (RLIMIT_NPROC 0 as user nobody); this row
 *          is TCONF when /dev/sfork is not read-write for others
 *
 * and after each: sfork() returned -1 with that errno, waitpid(-1, WNOHANG)
 * fails with ECHILD (no child), the number of lines of /proc/self/maps and
 * of open file descriptors is unchanged, and, while the caller is still
 * alive, debugfs regions_live is back to its value before the call (within
 * the contract's 2 seconds; skipped with TINFO without debugfs).  A crash
 * of the caller (e.g. libsfork storing to a bad addr itself) is TFAIL.  Size, direction
 * and allocation options are used for the valid parts of each call.
 */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define NOBODY		65534
#define ADDR_MAGIC	((void *)0x5f5f5f5fUL)

enum addr_kind {
	ADDR_OK,	/* a writable void * */
	ADDR_NULL,
	ADDR_RO,	/* a read-only page */
	ADDR_UNMAPPED,	/* a page that was unmapped */
	ADDR_NONCANON,	/* a non-canonical address */
};

struct tcase {
	const char *desc;
	size_t len;		/* 0 means sfork_size, unless len_zero */
	int len_zero;
	unsigned int flags;	/* ~0U: the option's flags */
	enum addr_kind addr;
	int exp_errno;
	int as_nobody;		/* fork fails: EAGAIN */
	int len_from_param;	/* len = max_region_bytes + len */
};

#define OPT_FLAGS	(~0U)

static struct tcase tcases[] = {
	{"len == 0", 0, 1, OPT_FLAGS, ADDR_OK, EINVAL, 0, 0},
	{"unknown flag bit 1 << 5", 0, 0, SFORK_BIDIRECTIONAL | (1U << 5), ADDR_OK, EINVAL, 0, 0},
	{"unknown flag bit 1 << 31", 0, 0, SFORK_BIDIRECTIONAL | (1U << 31), ADDR_OK, EINVAL, 0, 0},
	{"flags == 0 (no direction)", 0, 0, 0, ADDR_OK, EINVAL, 0, 0},
	{"SFORK_LAZY only (no direction)", 0, 0, SFORK_LAZY, ADDR_OK, EINVAL, 0, 0},
	{"SFORK_EAGER only (no direction)", 0, 0, SFORK_EAGER, ADDR_OK, EINVAL, 0, 0},
	{"BIDIRECTIONAL|PARENT_TO_CHILD", 0, 0, SFORK_BIDIRECTIONAL | SFORK_PARENT_TO_CHILD, ADDR_OK, EINVAL, 0, 0},
	{"BIDIRECTIONAL|CHILD_TO_PARENT", 0, 0, SFORK_BIDIRECTIONAL | SFORK_CHILD_TO_PARENT, ADDR_OK, EINVAL, 0, 0},
	{"PARENT_TO_CHILD|CHILD_TO_PARENT", 0, 0, SFORK_PARENT_TO_CHILD | SFORK_CHILD_TO_PARENT, ADDR_OK, EINVAL, 0, 0},
	{"all three directions", 0, 0, SFORK_DIRECTION_MASK, ADDR_OK, EINVAL, 0, 0},
	{"SFORK_LAZY|SFORK_EAGER", 0, 0, SFORK_BIDIRECTIONAL | SFORK_LAZY | SFORK_EAGER, ADDR_OK, EINVAL, 0, 0},
	{"addr == NULL", 0, 0, OPT_FLAGS, ADDR_NULL, EINVAL, 0, 0},
	{"addr in a read-only page", 0, 0, OPT_FLAGS, ADDR_RO, EFAULT, 0, 0},
	{"addr in an unmapped page", 0, 0, OPT_FLAGS, ADDR_UNMAPPED, EFAULT, 0, 0},
	{"addr non-canonical", 0, 0, OPT_FLAGS, ADDR_NONCANON, EFAULT, 0, 0},
	{"len = max_region_bytes + 1", 1, 0, OPT_FLAGS, ADDR_OK, ENOMEM, 0, 1},
	{"len = max_region_bytes + 1 page", 0, 0, OPT_FLAGS, ADDR_OK, ENOMEM, 0, 2},
	{"len = SIZE_MAX", SIZE_MAX, 0, OPT_FLAGS, ADDR_OK, ENOMEM, 0, 0},
	{"len = SIZE_MAX - page + 2", 0, 0, OPT_FLAGS, ADDR_OK, ENOMEM, 0, 3},
	{"len = 2^63", (size_t)1 << 63, 0, OPT_FLAGS, ADDR_OK, ENOMEM, 0, 0},
	{"fork fails (RLIMIT_NPROC 0, user nobody)", 0, 0, OPT_FLAGS, ADDR_OK, EAGAIN, 1, 0},
};

static int have_stats;
/* the calling child's ends of its two pipes to the test process */
static int done_fd = -1, go_fd = -1;
static unsigned long long max_region;

static size_t tcase_len(const struct tcase *tc)
{
	switch (tc->len_from_param) {
	case 1:
		return (size_t)max_region + 1;
	case 2:
		return (size_t)max_region + sfork_page;
	case 3:
		return SIZE_MAX - sfork_page + 2;
	}
	if (tc->len_zero)
		return 0;
	return tc->len ? tc->len : sfork_size;
}

static void **tcase_addr(const struct tcase *tc, void **ok)
{
	char *page;

	switch (tc->addr) {
	case ADDR_OK:
		return ok;
	case ADDR_NULL:
		return NULL;
	case ADDR_RO:
		page = SAFE_MMAP(NULL, sfork_page, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return (void **)page;
	case ADDR_UNMAPPED:
		page = SAFE_MMAP(NULL, sfork_page, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		SAFE_MUNMAP(page, sfork_page);
		return (void **)page;
	case ADDR_NONCANON:
		return (void **)0x8000000000000000UL;
	}
	return ok;
}

static void become_nobody_without_fork(void)
{
	struct rlimit rl = { 0, 0 };

	SAFE_SETRLIMIT(RLIMIT_NPROC, &rl);
	SAFE_SETGID(NOBODY);
	SAFE_SETUID(NOBODY);
	/* keep /proc/self readable after the credential change */
	prctl(PR_SET_DUMPABLE, 1);
}

/*
 * Runs in a fresh child of the test: makes the call, checks what it can see
 * itself, then lets the parent (root) look at regions_live while it is
 * still alive, and exits.
 */
static void do_case(const struct tcase *tc)
{
	unsigned int flags = tc->flags == OPT_FLAGS ? sfork_flags : tc->flags;
	size_t len = tcase_len(tc);
	int maps_before, fds_before, maps_after, fds_after, status;
	void *addr = ADDR_MAGIC;
	void **addrp;
	pid_t pid;
	char c;

	if (tc->as_nobody)
		become_nobody_without_fork();

	addrp = tcase_addr(tc, &addr);
	maps_before = sfork_count_maps();
	fds_before = sfork_count_fds();

	errno = 0;
	pid = sfork(len, flags, addrp);
	if (pid == 0)
		_exit(0);	/* a child that must not exist: leave quietly */
	TST_ERR = errno;

	if (pid > 0) {
		tst_res(TFAIL, "%s: sfork(%zu, 0x%x, %p) succeeded (pid %d)",
			tc->desc, len, flags, (void *)addrp, pid);
		SAFE_WAITPID(pid, &status, 0);
	} else if (TST_ERR != tc->exp_errno) {
		tst_res(TFAIL | TTERRNO, "%s: sfork(%zu, 0x%x, %p) expected %s",
			tc->desc, len, flags, (void *)addrp,
			tst_strerrno(tc->exp_errno));
	} else {
		tst_res(TPASS | TTERRNO, "%s: sfork(%zu, 0x%x, %p)", tc->desc,
			len, flags, (void *)addrp);
	}

	if (addr != ADDR_MAGIC)
		tst_res(TINFO, "%s: *addr was set to %p", tc->desc, addr);

	TST_EXP_FAIL2(waitpid(-1, &status, WNOHANG), ECHILD,
		      "%s: waitpid(-1, WNOHANG), no child", tc->desc);

	maps_after = sfork_count_maps();
	fds_after = sfork_count_fds();
	if (maps_after == maps_before && fds_after == fds_before)
		tst_res(TPASS, "%s: no mapping or fd left (%d maps, %d fds)",
			tc->desc, maps_after, fds_after);
	else
		tst_res(TFAIL, "%s: maps %d -> %d, fds %d -> %d", tc->desc,
			maps_before, maps_after, fds_before, fds_after);

	/* tell the parent the call is over, wait until it looked */
	SAFE_WRITE(SAFE_WRITE_ALL, done_fd, "d", 1);
	SAFE_READ(0, go_fd, &c, 1);
	exit(0);
}

static void run(unsigned int n)
{
	long long live_before = 0, live_after;
	int status, done[2], go[2];
	pid_t pid;
	char c;

	if (tcases[n].as_nobody) {
		struct stat st;

		SAFE_STAT(SFORK_DEVICE, &st);
		if ((st.st_mode & (S_IROTH | S_IWOTH)) != (S_IROTH | S_IWOTH)) {
			tst_res(TCONF, "%s: %s mode %04o, user nobody cannot use it",
				tcases[n].desc, SFORK_DEVICE,
				(unsigned int)st.st_mode & 07777);
			return;
		}
	}

	if (have_stats)
		live_before = sfork_stat("regions_live");

	SAFE_PIPE(done);
	SAFE_PIPE(go);
	pid = SAFE_FORK();
	if (!pid) {
		SAFE_CLOSE(done[0]);
		SAFE_CLOSE(go[1]);
		done_fd = done[1];
		go_fd = go[0];
		do_case(&tcases[n]);
	}
	SAFE_CLOSE(done[1]);
	SAFE_CLOSE(go[0]);

	/* EOF: the caller died (reported below); else it is alive and done */
	if (SAFE_READ(0, done[0], &c, 1) == 1 && have_stats) {
		live_after = sfork_stat_wait("regions_live", live_before, 2000);
		if (live_after == live_before)
			tst_res(TPASS, "%s: regions_live unchanged (%lld)",
				tcases[n].desc, live_after);
		else
			tst_res(TFAIL, "%s: regions_live %lld -> %lld",
				tcases[n].desc, live_before, live_after);
	}
	SAFE_CLOSE(go[1]);	/* lets the caller go */
	SAFE_CLOSE(done[0]);

	SAFE_WAITPID(pid, &status, 0);
	if (WIFSIGNALED(status))
		tst_res(TFAIL, "%s: the calling process was %s",
			tcases[n].desc, tst_strstatus(status));
	else if (WEXITSTATUS(status))
		tst_res(TFAIL, "%s: the calling process %s", tcases[n].desc,
			tst_strstatus(status));
}

static void setup(void)
{
	long long v;

	sfork_test_setup();

	max_region = sfork_param("max_region_bytes");
	tst_res(TINFO, "max_region_bytes = %llu", max_region);
	if (max_region >= SIZE_MAX - sfork_page)
		tst_brk(TCONF, "max_region_bytes %llu leaves no size above it",
			max_region);

	have_stats = !sfork_stat_get("regions_live", &v);
	if (!have_stats)
		tst_res(TINFO, "%s not readable: regions_live not checked",
			SFORK_STATS_PATH);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test = run,
	.tcnt = ARRAY_SIZE(tcases),
	.forks_child = 1,
	.needs_root = 1,
};
