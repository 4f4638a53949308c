// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that a dead peer never hangs the other side of the libsfork message
 * ring (sfork_channel.h) on a bidirectional region (-a and -s choose it, -d
 * must be bi).
 *
 * [Algorithm]
 *
 * - one side blocks in recv (empty ring) or send (full ring) with a 30 s
 *   timeout, and the other side (the child, then the parent) gets SIGKILL
 * - the blocked call must fail with EPIPE within 3 s of the kill (the
 *   library checks the peer every 100 ms), and not before it
 */

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "channel_test.h"

#define SMALL		100

static struct peer_death *dres;

static void death_role(void *addr, int side, int victim, int send)
{
	const struct timespec t30 = { .tv_sec = 30 };
	unsigned char buf[SMALL] = { 0 };

	if (victim) {
		__atomic_store_n(&dres->victim_ready, 1, __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	}
	if (send) {
		while (sfork_ring_send(addr, side, buf, SMALL, SFORK_NONBLOCK, NULL) >= 0)
			;
	}
	__atomic_store_n(&dres->survivor_ready, 1, __ATOMIC_SEQ_CST);
	if (send)
		peer_death_done(dres, sfork_ring_send(addr, side, buf, SMALL, 0, &t30));
	else
		peer_death_done(dres, sfork_ring_recv(addr, side, buf, SMALL, 0, &t30));
}

/*
 * A helper process makes the region, so that killing the parent side
 * leaves the test process alive to judge.
 */
static void death_case(int kill_child, int send)
{
	pid_t helper, child;
	void *addr = NULL;
	int status;

	memset(dres, 0, sizeof(*dres));
	helper = SAFE_FORK();
	if (!helper) {
		child = SAFE_SFORK(sfork_size, ring_flags(), &addr);
		if (!child) {
			ring_child_attach(addr);
			death_role(addr, SFORK_SIDE_CHILD, kill_child, send);
			exit(0);
		}
		dres->child = child;
		ring_parent_init(addr, child);
		death_role(addr, SFORK_SIDE_PARENT, !kill_child, send);
		SAFE_WAITPID(child, &status, 0);
		exit(0);
	}

	peer_death_ready(dres);
	peer_death_check(dres, kill_child ? dres->child : helper,
			 kill_child ? helper : dres->child,
			 kill_child ? "parent" : "child",
			 kill_child ? "child" : "parent",
			 send ? "send (full ring)" : "recv (empty ring)");
	SAFE_WAITPID(helper, &status, 0);
	if (kill_child)
		sfork_check_exit0("parent", status);
	else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		tst_res(TFAIL, "parent %s", tst_strstatus(status));
}

static void run(void)
{
	tst_res(TINFO, "SIGKILL of one side while the other is blocked (%s)",
		sfork_flags_desc(ring_flags()));
	death_case(1, 0);
	death_case(1, 1);
	death_case(0, 0);
	death_case(0, 1);
}

static void setup(void)
{
	ring_test_setup();
	dres = SAFE_MMAP(NULL, sizeof(*dres), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction: only bi (the default) has a ring"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.timeout = 300,
};
