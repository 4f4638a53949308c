// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_profile.c: the ftrace function_graph profile (TCG has no PMU).
 *
 * Sets up tracefs for the -P/-F/-D/-B options, and at the end reads the
 * trace back, aggregating calls, inclusive and self time per function in
 * the guest so that only a short table crosses the console.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sforkbench.h"

/* ------------------------------------------------------------------ */
/* ftrace function_graph profile (TCG has no PMU)                      */

static int write_str(const char *path, const char *val, bool trunc)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | (trunc ? O_TRUNC : 0));
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -1 : 0;
}

static char g_tracefs[64];

struct pent {
	char name[80];
	int depth;
	long long calls;
	double us, child_us;
};

#define PHASH 8192
static struct pent *g_prof;
static long long g_prof_lines;
static uint64_t g_prof_setup_ns, g_prof_collect_ns;

int tr(const char *file, const char *val, bool trunc)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", g_tracefs, file);
	return write_str(path, val, trunc);
}

int profile_setup(void)
{
	char buf[64], path[160];
	uint64_t t0 = now_ns();

	if (access("/sys/kernel/tracing/trace", F_OK) == 0)
		strcpy(g_tracefs, "/sys/kernel/tracing");
	else if (access("/sys/kernel/debug/tracing/trace", F_OK) == 0)
		strcpy(g_tracefs, "/sys/kernel/debug/tracing");
	else
		return -1;
	tr("tracing_on", "0", true);
	tr("current_tracer", "nop", true);
	snprintf(buf, sizeof(buf), "%zu", cfg.profile_buf_kb);
	tr("buffer_size_kb", buf, true);
	/* set_graph_function takes one glob per write */
	{
		char *dup = strdup(cfg.profile_funcs), *s, *save = NULL;

		tr("set_graph_function", "", true);
		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tr("set_graph_function", s, false) < 0)
				fprintf(stderr, "sforkbench: cannot graph %s\n", s);
		free(dup);
	}
	/*
	 * set_ftrace_filter limits which functions are hooked at all: with
	 * every kernel function hooked, TCG runs the kernel tens of times
	 * slower.  The graph then shows only the filtered functions.
	 */
	tr("set_ftrace_filter", "", true);
	if (cfg.profile_filter) {
		char *dup = strdup(cfg.profile_filter), *s, *save = NULL;

		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tr("set_ftrace_filter", s, false) < 0)
				fprintf(stderr, "sforkbench: no function matches %s\n", s);
		free(dup);
	}
	snprintf(buf, sizeof(buf), "%d", cfg.profile_depth);
	tr("max_graph_depth", buf, true);
	tr("options/funcgraph-tail", "1", true);
	tr("options/funcgraph-irqs", "0", true);
	tr("options/funcgraph-proc", "0", true);
	tr("options/funcgraph-abstime", "0", true);
	tr("options/funcgraph-overhead", "1", true);
	tr("options/funcgraph-duration", "1", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	write_str(path, "", true);
	if (tr("current_tracer", "function_graph", true) < 0)
		return -1;
	g_prof_setup_ns = now_ns() - t0;
	g_prof = calloc(PHASH, sizeof(*g_prof));
	return g_prof ? 0 : -1;
}

static struct pent *prof_get(const char *name, int depth)
{
	unsigned int h = 5381;

	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (unsigned int i = 0; i < PHASH; i++) {
		struct pent *e = &g_prof[(h + i) % PHASH];

		if (!e->name[0]) {
			snprintf(e->name, sizeof(e->name), "%s", name);
			e->depth = depth;
		}
		if (!strcmp(e->name, name)) {
			if (depth < e->depth)
				e->depth = depth;
			return e;
		}
	}
	return NULL;
}

/* Names of the open functions per CPU, by depth (from the indentation). */
#define PCPUS 64
#define PDEPTH 32
static char g_open[PCPUS][PDEPTH][80];

static void prof_add(int cpu, const char *name, int depth, double us)
{
	struct pent *e = prof_get(name, depth);

	if (!e)
		return;
	e->calls++;
	e->us += us;
	/* charge the time to the caller's children, for self time */
	if (depth > 0 && depth <= PDEPTH && cpu >= 0 && cpu < PCPUS &&
	    g_open[cpu][depth - 1][0]) {
		struct pent *parent = prof_get(g_open[cpu][depth - 1], depth - 1);

		if (parent && parent != e)
			parent->child_us += us;
	}
}

/* One line of function_graph output (funcgraph-tail, -cpu, -duration). */
static void prof_line(char *line)
{
	char *bar = strchr(line, '|'), *p, *txt, name[80];
	double us = -1;
	int sp = 0, depth, cpu;

	if (line[0] == '#' || !bar)
		return;
	*bar = '\0';
	cpu = atoi(line);
	p = strchr(line, ')');
	p = p ? p + 1 : line;
	while (*p && strchr(" +!#*@$", *p))
		p++;
	if (*p >= '0' && *p <= '9') {
		char *end;

		us = strtod(p, &end);
		if (strncmp(end, " us", 3) != 0)
			us = -1;
	}
	txt = bar + 1;
	while (*txt == ' ') {
		txt++;
		sp++;
	}
	depth = (sp - 2) / 2;
	if (depth < 0)
		depth = 0;
	rstrip(txt);
	if (txt[0] == '}') {
		char *a = strstr(txt, "/* "), *z;

		if (!a)
			return;
		a += 3;
		z = strstr(a, " */");
		if (!z)
			return;
		*z = '\0';
		snprintf(name, sizeof(name), "%s", a);
	} else {
		size_t n = strlen(txt);

		if (n > 4 && !strcmp(txt + n - 4, "() {")) {
			/* an opening line: remember who is open at this depth */
			txt[n - 4] = '\0';
			if (cpu >= 0 && cpu < PCPUS && depth < PDEPTH)
				snprintf(g_open[cpu][depth], sizeof(g_open[0][0]),
					 "%s", txt);
			return;
		}
		if (n < 3 || strcmp(txt + n - 3, "();"))
			return;
		txt[n - 3] = '\0';
		snprintf(name, sizeof(name), "%s", txt);
	}
	if (us < 0)
		return;
	g_prof_lines++;
	prof_add(cpu, name, depth, us);
}

static int cmp_pent(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;

	return x->us < y->us ? 1 : x->us > y->us ? -1 : 0;
}

void profile_emit(FILE *f)
{
	char path[160], line[1024];
	long long overrun = 0;
	FILE *t;
	int n = 0;
	uint64_t t0 = now_ns();

	tr("tracing_on", "0", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	t = fopen(path, "r");
	if (t) {
		while (fgets(line, sizeof(line), t))
			prof_line(line);
		fclose(t);
	}
	for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN); cpu++) {
		char buf[2048], *o;

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%ld/stats",
			 g_tracefs, cpu);
		if (read_file(path, buf, sizeof(buf)) > 0 &&
		    (o = strstr(buf, "overrun:")))
			overrun += atoll(o + 8);
	}
	tr("current_tracer", "nop", true);
	tr("set_graph_function", "", true);
	tr("set_ftrace_filter", "", true);
	snprintf(path, sizeof(path), "%s/trace", g_tracefs);
	write_str(path, "", true);
	g_prof_collect_ns = now_ns() - t0;

	qsort(g_prof, PHASH, sizeof(*g_prof), cmp_pent);
	fputs(",\n\"profile\":{\"tracer\":\"function_graph\",\"graph_functions\":", f);
	json_str(f, cfg.profile_funcs);
	fputs(",\"filter\":", f);
	if (cfg.profile_filter)
		json_str(f, cfg.profile_filter);
	else
		fputs("null", f);
	fprintf(f, ",\"max_depth\":%d,\"lines\":%lld,\"overrun\":%lld,"
		"\"setup_ns\":%" PRIu64 ",\"collect_ns\":%" PRIu64 ","
		"\"functions\":[", cfg.profile_depth, g_prof_lines, overrun,
		g_prof_setup_ns, g_prof_collect_ns);
	for (int i = 0; i < PHASH && n < 120; i++) {
		if (!g_prof[i].name[0])
			continue;
		fprintf(f, "%s{\"name\":", n ? "," : "");
		json_str(f, g_prof[i].name);
		fprintf(f, ",\"depth\":%d,\"calls\":%lld,\"total_us\":%.3f,"
			"\"self_us\":%.3f}", g_prof[i].depth, g_prof[i].calls,
			g_prof[i].us, g_prof[i].us > g_prof[i].child_us ?
			g_prof[i].us - g_prof[i].child_us : 0.0);
		n++;
	}
	fputs("]}", f);
	free(g_prof);
	g_prof = NULL;
}
