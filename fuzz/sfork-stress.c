// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sfork-stress: load tests of sfork(3) and the sfork module.
 *
 *   sfork-stress pairs   [-n 10000] [-c 64]  many parent/child pairs alive at once
 *   sfork-stress threads [-t 8] [-n 2000]    threads of one process sforking concurrently
 *   sfork-stress kill    [-n 500] [-c 4] [-S 64M]
 *                                            SIGKILL children (and parents) mid-fault
 *   sfork-stress oom     [-n 20] [-l 32M] [-S 64M]
 *                                            regions beyond a memory cgroup's limit
 *   sfork-stress unload  [-n 200] [-m sfork.ko]
 *                                            module unload attempts while regions live
 *   sfork-stress all                         a short run of each (CI)
 *
 * Common options: -s SEED (default 1), -v (progress), -T SECONDS (watchdog:
 * the mode fails if it runs longer; unload mode reloads the module first).
 *
 * Every mode verifies what it can see from user space (data, permissions,
 * exit statuses, errno values) and prints what it did; it exits 0 when all
 * went as the contract says, 1 otherwise (the lines above say what went
 * wrong).  Kernel-side damage (WARN, BUG, leaks) is for the harness and
 * for fuzz/leakcheck, which this program is meant to run under.
 */
#include "stress.h"

/* ---- main ---------------------------------------------------------------- */

static void __attribute__((noreturn)) usage(void)
{
	fprintf(stderr,
		"usage: sfork-stress pairs   [-n 10000] [-c 64]\n"
		"       sfork-stress threads [-t 8] [-n 2000]\n"
		"       sfork-stress kill    [-n 500] [-c 4] [-S 64M]\n"
		"       sfork-stress oom     [-n 20] [-l 32M] [-S 64M]\n"
		"       sfork-stress unload  [-n 200] [-m PATH/sfork.ko]\n"
		"       sfork-stress all\n"
		"common: -s SEED, -v, -T WATCHDOG_SECONDS\n");
	exit(2);
}

static int run_mode(const char *m, long n, int c, int t, size_t size, size_t limit,
		    const char *mopt, uint64_t seed, int watchdog)
{
	int r;

	mode = m;
	if (!strcmp(m, "pairs"))
		r = mode_pairs(n ? n : 10000, c ? c : 64, seed);
	else if (!strcmp(m, "threads"))
		r = mode_threads(t ? t : 8, n ? n : 2000, seed);
	else if (!strcmp(m, "kill"))
		r = mode_kill(n ? n : 500, c ? c : 4, size ? size : 64 << 20, seed);
	else if (!strcmp(m, "oom"))
		r = mode_oom(n ? n : 20, limit ? limit : 32 << 20, size ? size : 64 << 20, seed);
	else if (!strcmp(m, "unload"))
		r = mode_unload(n ? n : 200, mopt, seed, watchdog ? watchdog : 600);
	else
		usage();
	return r;
}

int main(int argc, char **argv)
{
	long n = 0;
	int c = 0, t = 0, opt, watchdog = 0, r;
	size_t size = 0, limit = 0;
	const char *m, *mopt = NULL;
	uint64_t seed = 1;
	double t0 = now_s();

	if (argc < 2)
		usage();
	m = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "n:c:t:s:S:l:m:T:v")) != -1) {
		switch (opt) {
		case 'n': n = strtol(optarg, NULL, 0); break;
		case 'c': c = atoi(optarg); break;
		case 't': t = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'S': size = parse_size(optarg); break;
		case 'l': limit = parse_size(optarg); break;
		case 'm': mopt = optarg; break;
		case 'T': watchdog = atoi(optarg); break;
		case 'v': verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc || n < 0 || c < 0 || t < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Orphans (children of killed parents) come back to us to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	if (watchdog && strcmp(m, "unload")) {
		signal(SIGALRM, SIG_DFL);
		alarm(watchdog);
	}

	if (strcmp(m, "all")) {
		r = run_mode(m, n, c, t, size, limit, mopt, seed, watchdog);
	} else {
		/* The short run CI does: a few minutes of TCG time in all. */
		int fails = 0;

		fails += run_mode("pairs", 3000, 64, 0, 0, 0, mopt, seed, 0);
		fails += run_mode("threads", 800, 0, 8, 0, 0, mopt, seed, 0);
		fails += run_mode("kill", 100, 4, 0, 64 << 20, 0, mopt, seed, 0);
		fails += run_mode("oom", 6, 0, 0, 0, 0, mopt, seed, 0);
		fails += run_mode("unload", 60, 0, 0, 0, 0, mopt, seed, 300);
		mode = "all";
		info("%d of 5 modes failed, %.1f s", fails, now_s() - t0);
		r = fails != 0;
	}
	return r;
}
