// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Kernel module helpers: tst_module_exists(), tst_module_load(),
 * tst_module_unload().  Written for sfork from LTP's documented API
 * (include/tst_module.h: signatures; missing module is TCONF, failed
 * insmod is TBROK, rmmod is retried before TBROK); no LTP code is used.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"
#include "tst_module.h"
#include "tst_private.h"

static int try_path(char *buf, size_t size, const char *dir,
		    const char *mod_name)
{
	if (!dir || !dir[0])
		return 0;
	if (snprintf(buf, size, "%s/%s", dir, mod_name) >= (int)size)
		return 0;
	return access(buf, F_OK) == 0;
}

/* Where LTP looks: the cwd, $LTPROOT/testcases/bin, the start directory. */
void tst_module_exists_(void (cleanup_fn)(void), const char *mod_name,
			char **mod_path)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int found;

	(void)cleanup_fn;

	found = access(mod_name, F_OK) == 0;
	if (found)
		snprintf(path, sizeof(path), "%s", mod_name);

	if (!found && getenv("LTPROOT")) {
		if (snprintf(dir, sizeof(dir), "%s/testcases/bin",
			     getenv("LTPROOT")) < (int)sizeof(dir))
			found = try_path(path, sizeof(path), dir, mod_name);
	}

	/* the test's cwd is the temporary directory when there is one */
	if (!found && tst_tmpdir_created())
		found = try_path(path, sizeof(path), tst_get_startwd(), mod_name);

	if (!found) {
		tst_brk(TCONF, "Failed to find module '%s'", mod_name);
		return;
	}

	if (mod_path) {
		*mod_path = strdup(path);
		if (!*mod_path)
			tst_brk(TBROK | TERRNO, "strdup() failed");
	}
}

/* Runs argv; returns its exit status, -1 if it could not run. */
static int run_cmd(const char *const argv[], int quiet)
{
	int status, fd;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (quiet) {
			fd = open("/dev/null", O_WRONLY);
			if (fd >= 0) {
				dup2(fd, STDOUT_FILENO);
				dup2(fd, STDERR_FILENO);
			}
		}
		execvp(argv[0], (char *const *)argv);
		_exit(255);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 255)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void tst_module_load_(void (cleanup_fn)(void), const char *mod_name,
		      char *const argv[])
{
	char *mod_path = NULL;
	const char **cmd;
	int i, n = 0, ret;

	tst_module_exists_(cleanup_fn, mod_name, &mod_path);

	while (argv && argv[n])
		n++;

	cmd = SAFE_MALLOC(sizeof(*cmd) * (size_t)(n + 3));
	cmd[0] = "insmod";
	cmd[1] = mod_path;
	for (i = 0; i < n; i++)
		cmd[i + 2] = argv[i];
	cmd[n + 2] = NULL;

	ret = run_cmd(cmd, 0);
	free(cmd);
	if (ret)
		tst_brk(TBROK, "'insmod %s' failed (%s)", mod_path,
			ret < 0 ? "could not run insmod" : "non-zero exit");
	free(mod_path);
}

void tst_module_unload_(void (cleanup_fn)(void), const char *mod_name)
{
	const char *const cmd[] = { "rmmod", mod_name, NULL };
	int i, ret = 1;

	(void)cleanup_fn;

	for (i = 0; i < 50; i++) {
		ret = run_cmd(cmd, 1);
		if (!ret)
			return;
		usleep(20000);
	}

	tst_brk(TBROK, "could not unload %s module", mod_name);
}
