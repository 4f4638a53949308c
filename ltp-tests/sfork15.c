// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * The module cannot be unloaded while a region lives.
 *
 * Module lifetime, in the style of LTP's kernel module tests (tst_module.h).
 * Needs root and sfork.ko where tst_module_exists() finds it, as in LTP:
 * the current directory, $LTPROOT/testcases/bin or the directory the test
 * was started from.  Checked:
 *
 *  - while a region lives, delete_module("sfork") (what rmmod does) fails,
 *    also after the process that called sfork exited and only its child
 *    still maps the region, and neither process holds a file descriptor
 *    of /dev/sfork (the region has -d and -a; its writer fills it, the
 *    child checks every byte once the creator is gone);
 *  - once the last process mapping it is gone (regions_live back to its
 *    value before within 2 s), rmmod succeeds (tst_module_unload) and
 *    /dev/sfork and /sys/module/sfork are gone;
 *  - while the module is unloaded, sfork() fails with ENOSYS and creates
 *    nothing: no child, no new mapping or file descriptor, *addr untouched;
 *  - after tst_module_load() the module works again: a p2c region (-a) is
 *    shared and read-only for the child, regions_live counts it and drops
 *    back.
 *
 * cleanup() loads the module again if the test left it unloaded.
 *
 * A module that drops its last reference with the creating file instead of
 * the last mapping (so rmmod frees code a VMA still points to), or a library
 * that reports something other than ENOSYS without the module, fails here.
 */

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "tst_module.h"
#include "sfork_test.h"

#define MODULE_NAME	"sfork"
#define MODULE_FILE	"sfork.ko"
#define SYS_MODULE	"/sys/module/sfork"

#define CP_TEST		0
#define CP_HELPER	1
#define CP_CHILD	2

#define SEED		5

static char *module_path;

static int module_loaded(void)
{
	return access(SYS_MODULE, F_OK) == 0;
}

static void load_module(void)
{
	int i;

	tst_module_load(module_path, NULL);
	/* devtmpfs makes the node; give it a moment */
	for (i = 0; i < 200 && access(SFORK_DEVICE, F_OK); i++)
		usleep(10000);
	if (access(SFORK_DEVICE, F_OK))
		tst_brk(TBROK, "%s did not appear after loading %s",
			SFORK_DEVICE, module_path);
}

/* descriptors of /dev/sfork held by this process */
static int sfork_fds(void)
{
	char path[64], target[PATH_MAX];
	int fd, n = 0;
	ssize_t len;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = 0;
		if (!strcmp(target, SFORK_DEVICE))
			n++;
	}
	return n;
}

/* delete_module() must fail, with whatever error */
static void rmmod_refused(const char *when)
{
	TEST(syscall(SYS_delete_module, MODULE_NAME, O_NONBLOCK));
	if (TST_RET == 0)
		tst_res(TFAIL, "%s: rmmod %s succeeded while a region lives",
			when, MODULE_NAME);
	else
		tst_res(TPASS | TTERRNO, "%s: rmmod %s refused", when, MODULE_NAME);
}

/* the region of -d and -a; its writer fills it, the child checks it */
static void region_holders(int fd)
{
	int parent_writes = sfork_parent_writes(sfork_flags);
	unsigned char *p;
	void *addr = NULL;
	pid_t pid;

	pid = SAFE_SFORK(sfork_region_size, sfork_flags, &addr);
	p = addr;
	if (!pid) {
		SAFE_CLOSE(fd);
		TST_CHECKPOINT_WAIT(CP_CHILD);
		if (!parent_writes)
			sfork_fill(p, 0, sfork_region_size, SEED);
		TST_EXP_EQ_LI(sfork_fds(), 0);
		TST_CHECKPOINT_WAKE(CP_TEST);
		/* the test makes us its child (subreaper) when the helper exits */
		TST_CHECKPOINT_WAIT2(CP_CHILD, 60000);
		if (sfork_check_fill(p, 0, sfork_region_size, SEED,
				     "child, after its creator exited"))
			exit(1);
		tst_res(TPASS, "child: region intact after its creator exited");
		exit(0);
	}

	if (parent_writes)
		sfork_fill(p, 0, sfork_region_size, SEED);
	TST_EXP_EQ_LI(sfork_fds(), 0);
	TST_CHECKPOINT_WAKE(CP_CHILD);
	TST_CHECKPOINT_WAIT2(CP_HELPER, 60000);
	/* exits with the region still mapped, its child keeps it */
	SAFE_WRITE(SAFE_WRITE_ALL, fd, &pid, sizeof(pid));
	exit(0);
}

static void sfork_without_module(void)
{
	int maps = sfork_count_maps(), fds = sfork_count_fds(), status;
	void *addr = (void *)0x1234;
	pid_t pid;

	pid = sfork(sfork_region_size, sfork_flags, &addr);
	if (!pid)
		exit(0);
	if (pid > 0) {
		tst_res(TFAIL, "sfork() without the module succeeded");
		SAFE_WAITPID(pid, &status, 0);
		return;
	}
	if (errno == ENOSYS)
		tst_res(TPASS | TERRNO, "sfork() without the module");
	else
		tst_res(TFAIL | TERRNO, "sfork() without the module: expected ENOSYS");

	TST_EXP_FAIL2(waitpid(-1, &status, WNOHANG), ECHILD,
		      "no child after sfork() without the module");
	TST_EXP_EQ_LI(sfork_count_maps(), maps);
	TST_EXP_EQ_LI(sfork_count_fds(), fds);
	TST_EXP_EXPR(addr == (void *)0x1234, "*addr untouched (%p)", addr);
}

static void sfork_works(void)
{
	long long base = sfork_stat("regions_live");
	void *addr = NULL;
	unsigned char *p;
	siginfo_t si;
	size_t i;
	int status;
	pid_t pid;

	TST_EXP_EQ_LI(sfork_fds(), 0);
	pid = SAFE_SFORK(sfork_region_size, SFORK_PARENT_TO_CHILD |
			 (sfork_flags & SFORK_ALLOC_MASK), &addr);
	p = addr;
	if (!pid) {
		TST_CHECKPOINT_WAIT(CP_CHILD);
		for (i = 0; i < sfork_region_size; i++) {
			if (p[i] != sfork_pattern(i, SEED + 1)) {
				tst_res(TFAIL, "reloaded: child reads byte %zu as 0x%02x",
					i, p[i]);
				exit(1);
			}
		}
		if (sfork_try_store((volatile char *)p, 1, &si) &&
		    si.si_signo == SIGSEGV && si.si_code == SEGV_ACCERR)
			tst_res(TPASS, "reloaded: the child reads the parent's data and cannot store");
		else
			tst_res(TFAIL, "reloaded: store in the read-only child did not fault with SEGV_ACCERR");
		exit(0);
	}

	for (i = 0; i < sfork_region_size; i++)
		p[i] = sfork_pattern(i, SEED + 1);
	TST_EXP_EQ_LI(sfork_stat("regions_live"), base + 1);
	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("reloaded: child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
	TST_EXP_EQ_LI(sfork_stat_wait("regions_live", base, 2000), base);
}

static void run(void)
{
	long long base = sfork_stat("regions_live"), live;
	pid_t helper, child = 0;
	int fds[2], status;

	SAFE_PIPE(fds);
	helper = SAFE_FORK();
	if (!helper) {
		SAFE_CLOSE(fds[0]);
		region_holders(fds[1]);
	}
	SAFE_CLOSE(fds[1]);

	TST_CHECKPOINT_WAIT2(CP_TEST, 60000);
	TST_EXP_EQ_LI(sfork_stat("regions_live"), base + 1);
	rmmod_refused("creator and child alive, no fd open");

	TST_CHECKPOINT_WAKE(CP_HELPER);
	SAFE_READ(1, fds[0], &child, sizeof(child));
	SAFE_CLOSE(fds[0]);
	SAFE_WAITPID(helper, &status, 0);

	if (module_loaded()) {
		live = sfork_stat("regions_live");
		if (live != base + 1)
			tst_res(TFAIL, "creator exited, child maps: regions_live %lld, expected %lld",
				live, base + 1);
		rmmod_refused("creator exited, only its child maps the region");
	}

	TST_CHECKPOINT_WAKE(CP_CHILD);
	SAFE_WAITPID(child, &status, 0);
	sfork_check_exit0("region child", status);

	if (module_loaded()) {
		live = sfork_stat_wait("regions_live", base, 2000);
		if (live != base)
			tst_res(TFAIL, "2 s after the last process exited: regions_live %lld, expected %lld",
				live, base);

		tst_module_unload(MODULE_NAME);
		tst_res(TPASS, "rmmod %s succeeded after the last process was gone",
			MODULE_NAME);
	}
	TST_EXP_EXPR(!module_loaded() && access(SFORK_DEVICE, F_OK),
		     "%s and %s gone", SYS_MODULE, SFORK_DEVICE);

	sfork_without_module();

	load_module();
	tst_res(TINFO, "module loaded again from %s", module_path);
	sfork_works();
}

static void setup(void)
{
	sfork_test_setup();
	tst_module_exists(MODULE_FILE, &module_path);
	tst_res(TINFO, "module file: %s", module_path);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		tst_brk(TBROK | TERRNO, "prctl(PR_SET_CHILD_SUBREAPER)");
}

static void cleanup(void)
{
	if (module_path && !module_loaded())
		tst_module_load(module_path, NULL);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default bi)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = cleanup,
	.test_all = run,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 120,
};
