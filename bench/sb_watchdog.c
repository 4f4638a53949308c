// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_watchdog.c: a run that hangs (e.g. a lost wake-up in a broken kernel)
 * is killed and recorded as an error instead of hanging the guest.
 *
 * SIGALRM without SA_RESTART interrupts the run's blocking calls, which
 * then see dog->fired.  A signal handler has no argument to carry the
 * watchdog, so the installed one is the only file-scope state here.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "sforkbench.h"

static struct watchdog *installed;

static void on_alarm(int sig)
{
	(void)sig;
	if (!installed)
		return;
	installed->fired = 1;
	if (installed->child > 0)
		kill(installed->child, SIGKILL);
}

void watchdog_install(struct watchdog *dog)
{
	struct sigaction sa;

	memset(dog, 0, sizeof(*dog));
	installed = dog;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt waits */
	sigaction(SIGALRM, &sa, NULL);
}

void watchdog_arm(struct watchdog *dog, unsigned int seconds)
{
	dog->fired = 0;
	dog->child = 0;
	alarm(seconds);
}

void watchdog_watch(struct watchdog *dog, pid_t child)
{
	dog->child = child;
}

void watchdog_disarm(struct watchdog *dog)
{
	alarm(0);
	dog->child = 0;
}
