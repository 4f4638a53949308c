// SPDX-License-Identifier: GPL-2.0-only
/*
 * sforkbench: the in-guest half of the sfork benchmarks.
 *
 * Runs a plan given on the command line (workloads x variants x sizes x
 * repetitions), interleaving the variants of one workload so that their
 * ratios are measured under the same conditions, and prints one JSON
 * document between marker lines on stdout.  The host side (bench/driver.py)
 * parses it; nothing here needs anything but a busybox guest.
 *
 * Times come from clock_gettime(CLOCK_MONOTONIC).  Beside every time the
 * program records the kernel counters that explain it: minor faults and
 * context switches from getrusage() for the parent and its children, and
 * sfork's own debugfs counters (faults, pages_live) when present.
 *
 * Usage: sforkbench [options] ITEM...
 *   ITEM := WORKLOAD:VARIANTS:SIZES[:REPS]
 *   VARIANTS := all | v1,v2,...      SIZES := 4K,1M,1G,... (ignored by
 *   publish/pingpong, which use one page)
 * Run with -h for the options, -l for the catalogue.
 *
 * This file holds the catalogue, the options, the plan parsing and the
 * driver loop; sforkbench.h lists the other pieces (sb_*.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sforkbench.h"

#define MARK_BEGIN "@@SFORKBENCH-JSON-BEGIN@@"
#define MARK_END "@@SFORKBENCH-JSON-END@@"
#define SCHEMA "sforkbench/1"

/* ------------------------------------------------------------------ */
/* Catalogue                                                           */

const char *const vname[V_COUNT] = {
	"sfork_lazy", "sfork_eager", "sfork_auto", "shm_anon", "sysv_shm",
	"posix_shm", "memfd", "file", "private", "private_thp", "fork",
	"memset", "populate", "pipe", "socketpair",
};

const struct wdesc wdesc[W_COUNT] = {
	[W_ABUNDANT] = { "abundant", VS_REGION, "ns",
		"create+fork, parent and child write every page, wait, destroy" },
	[W_SPARSE] = { "sparse", VS_REGION, "ns",
		"create+fork, parent and child write 3 pages each, wait, destroy" },
	[W_RANDOM] = { "random", VS_REGION, "ns",
		"create+fork, each side writes a random quarter of the pages" },
	[W_MULTILEVEL] = { "multilevel", VS_REGION, "ns",
		"child forks twice more: 5 processes each write a random quarter" },
	[W_LATENCY] = { "latency", VS_REGION | B(V_FORK), "ns",
		"one create+fork+child exit+wait+destroy cycle" },
	[W_FAULT] = { "fault", VS_REGION | B(V_PRIVATE) | B(V_PRIVATE_THP),
		"ns/page", "parent's first write to every page, per page" },
	[W_ZEROFILL] = { "zerofill", B(V_SFORK_EAGER) | B(V_SFORK_LAZY) |
		B(V_MEMSET) | B(V_POPULATE), "ns",
		"sfork call until it returns in the parent; memset of a faulted buffer; mmap(MAP_POPULATE)" },
	[W_TEARDOWN] = { "teardown", VS_REGION | B(V_PRIVATE), "ns",
		"destroying a region whose every page the parent wrote, child gone" },
	[W_PUBLISH] = { "publish", VS_CHANNEL, "ns",
		"parent->child one-way latency, blocking receiver (futex / read)" },
	[W_PINGPONG] = { "pingpong", VS_CHANNEL, "ns",
		"round trip, blocking (futex wait/wake, read/write)" },
	[W_PUBLISH_SPIN] = { "publish_spin", VS_CHANNEL, "ns",
		"parent->child one-way latency, receiver polls for spin_ns first" },
	[W_PINGPONG_SPIN] = { "pingpong_spin", VS_CHANNEL, "ns",
		"round trip, both sides poll for spin_ns before sleeping" },
	[W_BULK] = { "bulk", VS_CHANNEL, "ns",
		"parent streams SIZE bytes to the child (ring in the region, or pipe/socket)" },
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

struct config cfg = {
	.reps = 5, .warmup = 1, .msgs = 500, .spin_ns = 200000,
	.ring = 1 << 20, .chunk = 64 << 10, .file_dir = "/tmp",
	.timeout_s = 600, .profile_depth = 5, .profile_buf_kb = 16384,
};

size_t g_pg;

/* ------------------------------------------------------------------ */
/* Watchdog: a run that hangs (e.g. a lost wake-up in a broken kernel)
 * is killed and recorded as an error instead of hanging the guest.     */

volatile sig_atomic_t g_timeout;
volatile pid_t g_child;

static void on_alarm(int sig)
{
	(void)sig;
	g_timeout = 1;
	if (g_child > 0)
		kill(g_child, SIGKILL);
}

static void watchdog_arm(void)
{
	g_timeout = 0;
	g_child = 0;
	alarm(cfg.timeout_s);
}

static void watchdog_disarm(void)
{
	alarm(0);
	g_child = 0;
}

/* ------------------------------------------------------------------ */
/* Driver loop                                                         */

static void run_one(int w, int v, size_t size, int rep, bool warm,
		    const struct lists *l)
{
	struct result r;

	result_init(&r);
	watchdog_arm();
	switch (w) {
	case W_LATENCY:
		run_latency(v, size, &r);
		break;
	case W_ZEROFILL:
		run_zerofill(v, size, &r);
		break;
	case W_PUBLISH: case W_PINGPONG: case W_PUBLISH_SPIN:
	case W_PINGPONG_SPIN: case W_BULK:
		run_channel(w, v, size, &r);
		break;
	default:
		run_region(w, v, size, l, warm || cfg.verify_all, &r);
	}
	watchdog_disarm();
	emit_result(w, v, size, rep, warm, &r);
}

static void run_item(const struct item *it, bool profiling)
{
	int vs[V_COUNT], nv = 0;
	struct lists l;

	memset(&l, 0, sizeof(l));
	for (int v = 0; v < V_COUNT; v++)
		if (it->variants & B(v))
			vs[nv++] = v;
	for (int si = 0; si < it->nsizes; si++) {
		size_t size = it->sizes[si];

		if (it->w == W_PUBLISH || it->w == W_PINGPONG ||
		    it->w == W_PUBLISH_SPIN || it->w == W_PINGPONG_SPIN)
			size = g_pg;
		size = (size + g_pg - 1) / g_pg * g_pg;
		if (it->w == W_BULK && size < cfg.chunk)
			size = cfg.chunk;
		for (int rep = -cfg.warmup; rep < it->reps; rep++) {
			bool warm = rep < 0;

			lists_make(&l, it->w, size / g_pg, rep);
			if (profiling && rep == 0)
				tr("tracing_on", "1", true);
			/* interleave, rotating the order between reps */
			for (int j = 0; j < nv; j++) {
				int v = vs[(j + (rep < 0 ? 0 : rep)) % nv];

				run_one(it->w, v, size, rep, warm, &l);
			}
		}
		if (profiling)
			tr("tracing_on", "0", true);
		membuf_release();
	}
	lists_free(&l);
}

/* ------------------------------------------------------------------ */
/* Options and plan                                                    */

static size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return 0;
	return (size_t)v;
}

static int lookup(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

static int parse_item(const char *arg, struct item *it)
{
	char *dup = strdup(arg), *save = NULL, *f[4] = { 0 }, *s, *p;
	int nf = 0;

	memset(it, 0, sizeof(*it));
	for (s = strtok_r(dup, ":", &save); s && nf < 4;
	     s = strtok_r(NULL, ":", &save))
		f[nf++] = s;
	if (nf < 2) {
		fprintf(stderr, "sforkbench: bad item '%s'\n", arg);
		goto bad;
	}
	it->w = -1;
	for (int w = 0; w < W_COUNT; w++)
		if (!strcmp(f[0], wdesc[w].name))
			it->w = w;
	if (it->w < 0) {
		fprintf(stderr, "sforkbench: unknown workload '%s'\n", f[0]);
		goto bad;
	}
	if (!strcmp(f[1], "all")) {
		it->variants = wdesc[it->w].variants;
	} else {
		char *save2 = NULL;

		for (p = strtok_r(f[1], ",", &save2); p;
		     p = strtok_r(NULL, ",", &save2)) {
			int v = lookup(p, vname, V_COUNT);

			if (v < 0 || !(wdesc[it->w].variants & B(v))) {
				fprintf(stderr, "sforkbench: variant '%s' not "
					"valid for %s\n", p, f[0]);
				goto bad;
			}
			it->variants |= B(v);
		}
	}
	if (nf >= 3) {
		char *save3 = NULL;

		for (p = strtok_r(f[2], ",", &save3); p && it->nsizes < MAX_SIZES;
		     p = strtok_r(NULL, ",", &save3)) {
			size_t z = parse_size(p);

			if (!z) {
				fprintf(stderr, "sforkbench: bad size '%s'\n", p);
				goto bad;
			}
			it->sizes[it->nsizes++] = z;
		}
	} else {
		it->sizes[it->nsizes++] = g_pg;
	}
	it->reps = nf >= 4 ? atoi(f[3]) : cfg.reps;
	if (it->reps < 1)
		it->reps = 1;
	free(dup);
	return 0;
bad:
	free(dup);
	return -1;
}

static void usage_exit(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: sforkbench [options] WORKLOAD:VARIANTS:SIZES[:REPS]...\n"
		"  -r N      repetitions per variant and size (default 5)\n"
		"  -w N      warm-up runs per variant and size (default 1)\n"
		"  -n N      messages / round trips per channel run (500)\n"
		"  -S NS     spin window of the *_spin workloads and bulk (200000)\n"
		"  -R BYTES  bulk ring size (1M)   -C BYTES  bulk chunk (64K)\n"
		"  -f DIR    directory of the 'file' variant (/tmp)\n"
		"  -T SEC    watchdog per run (600)\n"
		"  -V        verify contents in every run (default: warm-up)\n"
		"  -P FUNCS  capture a function_graph profile of the measured\n"
		"            runs, graphing FUNCS (comma list of globs)\n"
		"  -F GLOBS  hook only these functions (set_ftrace_filter)\n"
		"  -D N      max_graph_depth of the profile (5)\n"
		"  -B KB     trace buffer per CPU (16384)\n"
		"  -l        print the catalogue as JSON and exit\n");
	exit(code);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	uint64_t t_start;
	int opt;
	bool profiling = false;

	g_pg = (size_t)sysconf(_SC_PAGESIZE);
	while ((opt = getopt(argc, argv, "r:w:n:S:R:C:f:T:VP:F:D:B:lh")) != -1) {
		switch (opt) {
		case 'r': cfg.reps = atoi(optarg); break;
		case 'w': cfg.warmup = atoi(optarg); break;
		case 'n': cfg.msgs = atoi(optarg); break;
		case 'S': cfg.spin_ns = strtoull(optarg, NULL, 0); break;
		case 'R': cfg.ring = parse_size(optarg); break;
		case 'C': cfg.chunk = parse_size(optarg); break;
		case 'f': cfg.file_dir = optarg; break;
		case 'T': cfg.timeout_s = (unsigned int)atoi(optarg); break;
		case 'V': cfg.verify_all = true; break;
		case 'P': cfg.profile_funcs = optarg; break;
		case 'F': cfg.profile_filter = optarg; break;
		case 'D': cfg.profile_depth = atoi(optarg); break;
		case 'B': cfg.profile_buf_kb = parse_size(optarg); break;
		case 'l':
			fputs("{", stdout);
			emit_catalog(stdout);
			fputs("}\n", stdout);
			return 0;
		case 'h': usage_exit(0); break;
		default: usage_exit(1);
		}
	}
	if (cfg.msgs < 1 || cfg.warmup < 0 || !cfg.chunk || !cfg.ring ||
	    cfg.ring % cfg.chunk || cfg.chunk % 8 || cfg.ring / cfg.chunk < 1)
		usage_exit(1);
	for (; optind < argc; optind++) {
		if (cfg.nitems == MAX_ITEMS)
			usage_exit(1);
		if (parse_item(argv[optind], &cfg.items[cfg.nitems++]) < 0)
			usage_exit(1);
	}
	if (!cfg.nitems)
		usage_exit(1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: interrupt waits */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (cfg.profile_funcs) {
		if (profile_setup() < 0)
			fprintf(stderr, "sforkbench: tracefs unavailable, no profile\n");
		else
			profiling = true;
	}

	t_start = now_ns();
	printf("%s\n{\"schema\":\"%s\",\n", MARK_BEGIN, SCHEMA);
	emit_env(stdout);
	emit_config(stdout, profiling);
	fputs(",\n", stdout);
	emit_catalog(stdout);
	fputs(",\n\"results\":[", stdout);
	fflush(stdout);
	for (int i = 0; i < cfg.nitems; i++)
		run_item(&cfg.items[i], profiling);
	fputs("\n]", stdout);
	if (profiling)
		profile_emit(stdout);
	printf(",\n\"elapsed_ns\":%" PRIu64 "}\n%s\n", now_ns() - t_start,
	       MARK_END);
	fflush(stdout);
	return 0;
}
