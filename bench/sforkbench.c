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
 * This file holds the options, the plan parsing and the driver loop; it
 * owns the harness (struct bench) and hands it to the workloads, which
 * sb_catalog.c lists in a table.  sforkbench.h lists the other pieces.
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
#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define HUGE_PAGES "/sys/module/sfork/parameters/huge_pages"

/* ------------------------------------------------------------------ */
/* Driver loop                                                         */

/*
 * A variant's system setting around its runs only: shmem_enabled for the
 * THP peers (-H), sfork's huge_pages=2 for sfork_lazy_huge.  NULL: none.
 */
static const char *run_setting(const struct bench *b, enum variant v,
			       const char **val, const char **was)
{
	if (v == VAR_SFORK_LAZY_HUGE) {
		*val = "2";
		*was = b->huge_pages_was;
		return HUGE_PAGES;
	}
	if (b->cfg.thp_shmem && (VS_THP & VARIANT_BIT(v))) {
		*val = b->cfg.thp_shmem;
		*was = b->thp_shmem_was;
		return SHMEM_ENABLED;
	}
	return NULL;
}

static void run_one(struct bench *b, enum workload w, enum variant v,
		    size_t size, int rep, bool warm, const struct lists *l)
{
	const char *val = NULL, *was = NULL;
	const char *knob = run_setting(b, v, &val, &was);
	struct result r;

	result_init(&r);
	if (knob) {
		if (!*was)
			result_fail(&r, knob, ENOENT);
		else if (sysfs_write(knob, val) < 0)
			result_fail(&r, knob, errno);
		r.tuning = v == VAR_SFORK_LAZY_HUGE ? "huge_pages=2" : val;
	}
	watchdog_arm(&b->dog, b->cfg.timeout_s);
	if (r.ok)
		workloads[w].run(b, w, v, size, l, warm || b->cfg.verify_all, &r);
	watchdog_disarm(&b->dog);
	if (knob && *was && sysfs_write(knob, was) < 0)
		result_fail(&r, "restoring a setting", errno);
	json_result(&b->out, w, v, size, rep, warm, &r);
}

/* The setting in brackets of a sysfs choice ("always [never] ..."). */
static int current_choice(const char *path, char *out, size_t len)
{
	char buf[256], *a, *z;

	if (read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	a = strchr(buf, '[');
	z = a ? strchr(a, ']') : NULL;
	if (!z || (size_t)(z - a) > len)
		return -1;
	snprintf(out, len, "%.*s", (int)(z - a - 1), a + 1);
	return 0;
}

/* The size one run of workload w really uses for the item's size. */
static size_t run_size(const struct bench *b, enum workload w, size_t size)
{
	size_t pg = b->page_size;

	if (workloads[w].sizing == SIZE_ONE_PAGE)
		size = pg;
	size = (size + pg - 1) / pg * pg;
	if (workloads[w].sizing == SIZE_AT_LEAST_CHUNK && size < b->cfg.chunk)
		size = b->cfg.chunk;
	return size;
}

static void run_item(struct bench *b, const struct item *it)
{
	enum variant vs[VAR_COUNT];
	int nv = 0;
	struct lists l;

	memset(&l, 0, sizeof(l));
	for (int v = 0; v < VAR_COUNT; v++)
		if (it->variants & VARIANT_BIT(v))
			vs[nv++] = (enum variant)v;
	for (int si = 0; si < it->nsizes; si++) {
		size_t size = run_size(b, it->w, it->sizes[si]);

		for (int rep = -b->cfg.warmup; rep < it->reps; rep++) {
			bool warm = rep < 0;

			lists_make(&l, it->w, size / b->page_size, rep);
			if (b->prof && rep == 0)
				profiler_tracing(b->prof, true);
			/* interleave, rotating the order between reps */
			for (int j = 0; j < nv; j++) {
				enum variant v = vs[(j + (rep < 0 ? 0 : rep)) % nv];

				run_one(b, it->w, v, size, rep, warm, &l);
			}
		}
		if (b->prof)
			profiler_tracing(b->prof, false);
		membuf_release(&b->membuf);
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

static int parse_item(const struct bench *b, const char *arg, struct item *it)
{
	char *dup = strdup(arg), *save = NULL, *f[4] = { 0 }, *s, *p;
	int nf = 0, w;

	memset(it, 0, sizeof(*it));
	for (s = strtok_r(dup, ":", &save); s && nf < 4;
	     s = strtok_r(NULL, ":", &save))
		f[nf++] = s;
	if (nf < 2) {
		fprintf(stderr, "sforkbench: bad item '%s'\n", arg);
		goto bad;
	}
	w = -1;
	for (int i = 0; i < WL_COUNT; i++)
		if (!strcmp(f[0], workloads[i].name))
			w = i;
	if (w < 0) {
		fprintf(stderr, "sforkbench: unknown workload '%s'\n", f[0]);
		goto bad;
	}
	it->w = (enum workload)w;
	if (!strcmp(f[1], "all")) {
		it->variants = workloads[w].variants;
	} else {
		char *save2 = NULL;

		for (p = strtok_r(f[1], ",", &save2); p;
		     p = strtok_r(NULL, ",", &save2)) {
			int v = lookup(p, variant_names, VAR_COUNT);

			if (v < 0 || !(workloads[w].variants & VARIANT_BIT(v))) {
				fprintf(stderr, "sforkbench: variant '%s' not "
					"valid for %s\n", p, f[0]);
				goto bad;
			}
			it->variants |= VARIANT_BIT(v);
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
		it->sizes[it->nsizes++] = b->page_size;
	}
	it->reps = nf >= 4 ? atoi(f[3]) : b->cfg.reps;
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
		"  -H MODE   shmem_enabled for the *_thp variants (e.g. advise),\n"
		"            set around each of their runs and then restored\n"
		"  -W NS     spin window of libsfork's channels (publish, pingpong,\n"
		"            idle; default: the library's SFORK_CHAN_SPIN_NS)\n"
		"  -I MS     how long the idle workload's receiver waits (2000)\n"
		"  -l        print the catalogue as JSON and exit\n");
	exit(code);
}

int main(int argc, char **argv)
{
	static struct bench bench = {
		.cfg = {
			.reps = 5, .warmup = 1, .msgs = 500, .spin_ns = 200000,
			.ring = 1 << 20, .chunk = 64 << 10, .file_dir = "/tmp",
			.timeout_s = 600, .profile_depth = 5,
			.profile_buf_kb = 16384, .chan_spin_ns = -1,
			.idle_ms = 2000,
		},
		.out = { .first_result = true },
	};
	struct bench *b = &bench;
	struct config *cfg = &b->cfg;
	uint64_t t_start;
	int opt;

	b->page_size = (size_t)sysconf(_SC_PAGESIZE);
	b->out.f = stdout;
	while ((opt = getopt(argc, argv, "r:w:n:S:R:C:f:T:VP:F:D:B:H:W:I:lh")) != -1) {
		switch (opt) {
		case 'r': cfg->reps = atoi(optarg); break;
		case 'w': cfg->warmup = atoi(optarg); break;
		case 'n': cfg->msgs = atoi(optarg); break;
		case 'S': cfg->spin_ns = strtoull(optarg, NULL, 0); break;
		case 'R': cfg->ring = parse_size(optarg); break;
		case 'C': cfg->chunk = parse_size(optarg); break;
		case 'f': cfg->file_dir = optarg; break;
		case 'T': cfg->timeout_s = (unsigned int)atoi(optarg); break;
		case 'V': cfg->verify_all = true; break;
		case 'P': cfg->profile_funcs = optarg; break;
		case 'F': cfg->profile_filter = optarg; break;
		case 'D': cfg->profile_depth = atoi(optarg); break;
		case 'B': cfg->profile_buf_kb = parse_size(optarg); break;
		case 'H': cfg->thp_shmem = optarg; break;
		case 'W': cfg->chan_spin_ns = strtol(optarg, NULL, 0); break;
		case 'I': cfg->idle_ms = (unsigned int)atoi(optarg); break;
		case 'l':
			fputs("{", stdout);
			json_catalog(stdout);
			fputs("}\n", stdout);
			return 0;
		case 'h': usage_exit(0); break;
		default: usage_exit(1);
		}
	}
	if (cfg->msgs < 1 || cfg->warmup < 0 || !cfg->chunk || !cfg->ring ||
	    cfg->ring % cfg->chunk || cfg->chunk % 8 || cfg->ring / cfg->chunk < 1)
		usage_exit(1);
	for (; optind < argc; optind++) {
		if (cfg->nitems == MAX_ITEMS)
			usage_exit(1);
		if (parse_item(b, argv[optind], &cfg->items[cfg->nitems++]) < 0)
			usage_exit(1);
	}
	if (!cfg->nitems)
		usage_exit(1);
	if (cfg->thp_shmem &&
	    current_choice(SHMEM_ENABLED, b->thp_shmem_was,
			   sizeof(b->thp_shmem_was)) < 0) {
		fprintf(stderr, "sforkbench: -H: cannot read %s\n", SHMEM_ENABLED);
		return 1;
	}

	/* without the module (or an older one) sfork_lazy_huge runs fail */
	if (read_file(HUGE_PAGES, b->huge_pages_was,
		      sizeof(b->huge_pages_was)) > 0)
		b->huge_pages_was[strcspn(b->huge_pages_was, "\n")] = '\0';
	else
		b->huge_pages_was[0] = '\0';

	watchdog_install(&b->dog);
	signal(SIGPIPE, SIG_IGN);
	if (cfg->profile_funcs)
		b->prof = profiler_start(cfg);

	t_start = now_ns();
	printf("%s\n{\"schema\":\"%s\",\n", MARK_BEGIN, SCHEMA);
	json_env(stdout, b->page_size);
	json_config(stdout, cfg, b->prof != NULL);
	fputs(",\n", stdout);
	json_catalog(stdout);
	fputs(",\n\"results\":[", stdout);
	fflush(stdout);
	for (int i = 0; i < cfg->nitems; i++)
		run_item(b, &cfg->items[i]);
	fputs("\n]", stdout);
	if (b->prof)
		profiler_finish(b->prof, stdout);
	printf(",\n\"elapsed_ns\":%" PRIu64 "}\n%s\n", now_ns() - t_start,
	       MARK_END);
	fflush(stdout);
	return 0;
}
