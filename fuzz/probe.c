// SPDX-License-Identifier: GPL-2.0-or-later
/* probe.c: see probe.h. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>

#include "probe.h"

static __thread sigjmp_buf probe_jmp;
static __thread volatile sig_atomic_t probe_armed;
static __thread volatile int probe_sig, probe_code;
static __thread void *volatile probe_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!probe_armed) {
		/* A real crash: die of it, with the default action's core. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	probe_sig = sig;
	probe_code = si->si_code;
	probe_addr = si->si_addr;
	probe_armed = 0;
	siglongjmp(probe_jmp, 1);
}

void probe_install(void)
{
	struct sigaction sa = { .sa_sigaction = on_fault, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

int probe_access(char *p, int store, char v, struct probe *out)
{
	probe_sig = 0;
	probe_armed = 1;
	if (!sigsetjmp(probe_jmp, 1)) {
		if (store)
			*(volatile char *)p = v;
		else
			(void)*(volatile char *)p;
		probe_armed = 0;
	}
	if (out) {
		out->sig = probe_sig;
		out->code = probe_code;
		out->addr = probe_addr;
	}
	return probe_sig;
}
