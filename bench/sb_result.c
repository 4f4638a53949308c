// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_result.c: a run's record (struct result): starting it, failing it
 * with the first error, and reaping the run's child into it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "sforkbench.h"

void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->ok = true;
	r->setup = r->parent = r->wait = r->teardown = r->total = r->child =
		r->settle = -1;
	r->inner = 1;
}

/* The first error wins: later ones are consequences. */
void result_fail(struct result *r, const char *what, int e)
{
	if (!r->ok)
		return;
	r->ok = false;
	snprintf(r->err, sizeof(r->err), "%s: %s", what,
		 e ? strerror(e) : "failed");
}

int result_reap(struct result *r, pid_t pid, const struct watchdog *dog)
{
	char msg[64];
	int st;

	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			result_fail(r, "waitpid", errno);
			return -1;
		}
	}
	if (dog->fired) {
		result_fail(r, "watchdog timeout", 0);
		return -1;
	}
	if (WIFSIGNALED(st)) {
		snprintf(msg, sizeof(msg), "child killed by signal %d",
			 WTERMSIG(st));
		result_fail(r, msg, 0);
		return -1;
	}
	if (WEXITSTATUS(st)) {
		snprintf(msg, sizeof(msg), "child exit status %d",
			 WEXITSTATUS(st));
		result_fail(r, msg, 0);
		return -1;
	}
	return 0;
}
