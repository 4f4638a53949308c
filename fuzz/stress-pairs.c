// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress pairs: many parent/child pairs alive at once, each sforking
 * a region of random size, direction and allocation and checking its data.
 */
#include "stress.h"

/* ---- pairs --------------------------------------------------------------- */

static int pairs_worker(struct pairs_shared *sh, int id, long n, uint64_t seed)
{
	struct rng r;

	rng_init(&r, seed, id);
	for (;;) {
		long t = atomic_fetch_add(&sh->ticket, 1);
		int d = below(&r, 3), a = below(&r, 3);
		size_t len = pick_len(&r, 256);

		if (t >= n || atomic_load(&sh->pc.failed))
			return 0;
		if (one_pair(d, a, len, mix64(seed ^ mix64(t)), &sh->pc)) {
			atomic_store(&sh->pc.failed, 1);
			return 1;
		}
	}
}

int mode_pairs(long n, int c, uint64_t seed)
{
	struct pairs_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double t0 = now_s(), last = t0;
	long peak_live = -1, base_live = stat_get("regions_live"), strays = 0;
	pid_t *pids = calloc(c, sizeof(*pids));
	int workers = 0, bad = 0, st;

	if (sh == MAP_FAILED || !pids) {
		failf("mmap: %s", strerror(errno));
		return 1;
	}
	info("%ld sforks by %d workers (seed %lu)", n, c, (unsigned long)seed);
	for (int i = 0; i < c; i++) {
		pid_t p = fork();

		if (p == 0)
			_exit(pairs_worker(sh, i, n, seed));
		if (p < 0) {
			failf("fork: %s", strerror(errno));
			atomic_store(&sh->pc.failed, 1);
			break;
		}
		pids[workers++] = p;
	}
	c = workers;
	while (workers > 0) {
		pid_t p = waitpid(-1, &st, WNOHANG);
		long live;

		if (p > 0) {
			int w = 0;

			while (w < c && pids[w] != p)
				w++;
			if (w == c) {
				strays++;	/* the child of a dead worker (we are its subreaper) */
				continue;
			}
			workers--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				bad = 1;
				if (WIFSIGNALED(st))
					failf("worker %d killed by signal %d", p, WTERMSIG(st));
			}
			continue;
		}
		live = stat_get("regions_live");
		if (live > peak_live)
			peak_live = live;
		if (verbose && now_s() - last > 10) {
			last = now_s();
			info("... %ld sforks, %ld pairs live", atomic_load(&sh->pc.sforks),
			     atomic_load(&sh->pc.active));
		}
		sleep_us(20000);
	}
	if (reap_all(30, &strays))
		bad = 1;
	if (atomic_load(&sh->pc.failed))
		bad = 1;
	if (!bad && atomic_load(&sh->pc.sforks) != n) {
		failf("%ld sforks done, %ld asked", atomic_load(&sh->pc.sforks), n);
		bad = 1;
	}
	info("%ld sforks (bi %ld, p2c %ld, c2p %ld; auto %ld, lazy %ld, eager %ld), %.1f MiB of regions, "
	     "up to %ld pairs at once (regions_live peak %ld above %ld), %.1f s: %s",
	     atomic_load(&sh->pc.sforks), atomic_load(&sh->pc.by_dir[0]),
	     atomic_load(&sh->pc.by_dir[1]), atomic_load(&sh->pc.by_dir[2]),
	     atomic_load(&sh->pc.by_alloc[0]), atomic_load(&sh->pc.by_alloc[1]),
	     atomic_load(&sh->pc.by_alloc[2]), atomic_load(&sh->pc.bytes) / 1048576.0,
	     atomic_load(&sh->pc.peak), peak_live < 0 ? -1 : peak_live - base_live, base_live,
	     now_s() - t0, bad ? "FAILED" : "ok");
	munmap(sh, sizeof(*sh));
	free(pids);
	return bad;
}
