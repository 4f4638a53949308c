// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_profile.c: the ftrace function_graph profile (TCG has no PMU).
 *
 * Sets up tracefs for the -P/-F/-D/-B options, and at the end reads the
 * trace back, aggregating calls, inclusive and self time per function in
 * the guest so that only a short table crosses the console.  All its
 * state is in struct profiler, which the harness holds.
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

struct pent {
	char name[80];
	int depth;
	long long calls;
	double us, child_us;
};

#define PHASH 8192
/* Names of the open functions per CPU, by depth (from the indentation). */
#define PCPUS 64
#define PDEPTH 32

struct profiler {
	const struct config *cfg;
	char tracefs[64];
	struct pent table[PHASH];
	char open[PCPUS][PDEPTH][80];
	long long lines;
	uint64_t setup_ns, collect_ns;
};

/* Write one tracefs control file. */
static int tracefs_write(struct profiler *p, const char *file, const char *val,
			 bool trunc)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", p->tracefs, file);
	return write_str(path, val, trunc);
}

int profiler_tracing(struct profiler *p, bool on)
{
	return tracefs_write(p, "tracing_on", on ? "1" : "0", true);
}

static int profile_setup(struct profiler *p)
{
	const struct config *cfg = p->cfg;
	char buf[64], path[160];
	uint64_t t0 = now_ns();

	if (access("/sys/kernel/tracing/trace", F_OK) == 0)
		strcpy(p->tracefs, "/sys/kernel/tracing");
	else if (access("/sys/kernel/debug/tracing/trace", F_OK) == 0)
		strcpy(p->tracefs, "/sys/kernel/debug/tracing");
	else
		return -1;
	tracefs_write(p, "tracing_on", "0", true);
	tracefs_write(p, "current_tracer", "nop", true);
	snprintf(buf, sizeof(buf), "%zu", cfg->profile_buf_kb);
	tracefs_write(p, "buffer_size_kb", buf, true);
	/* set_graph_function takes one glob per write */
	{
		char *dup = strdup(cfg->profile_funcs), *s, *save = NULL;

		tracefs_write(p, "set_graph_function", "", true);
		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tracefs_write(p, "set_graph_function", s, false) < 0)
				fprintf(stderr, "sforkbench: cannot graph %s\n", s);
		free(dup);
	}
	/*
	 * set_ftrace_filter limits which functions are hooked at all: with
	 * every kernel function hooked, TCG runs the kernel tens of times
	 * slower.  The graph then shows only the filtered functions.
	 */
	tracefs_write(p, "set_ftrace_filter", "", true);
	if (cfg->profile_filter) {
		char *dup = strdup(cfg->profile_filter), *s, *save = NULL;

		for (s = strtok_r(dup, ",", &save); s;
		     s = strtok_r(NULL, ",", &save))
			if (tracefs_write(p, "set_ftrace_filter", s, false) < 0)
				fprintf(stderr, "sforkbench: no function matches %s\n", s);
		free(dup);
	}
	snprintf(buf, sizeof(buf), "%d", cfg->profile_depth);
	tracefs_write(p, "max_graph_depth", buf, true);
	tracefs_write(p, "options/funcgraph-tail", "1", true);
	tracefs_write(p, "options/funcgraph-irqs", "0", true);
	tracefs_write(p, "options/funcgraph-proc", "0", true);
	tracefs_write(p, "options/funcgraph-abstime", "0", true);
	tracefs_write(p, "options/funcgraph-overhead", "1", true);
	tracefs_write(p, "options/funcgraph-duration", "1", true);
	snprintf(path, sizeof(path), "%s/trace", p->tracefs);
	write_str(path, "", true);
	if (tracefs_write(p, "current_tracer", "function_graph", true) < 0)
		return -1;
	p->setup_ns = now_ns() - t0;
	return 0;
}

/* NULL (and a note on stderr) when tracefs cannot be set up. */
struct profiler *profiler_start(const struct config *cfg)
{
	struct profiler *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	if (profile_setup(p) < 0) {
		fprintf(stderr, "sforkbench: tracefs unavailable, no profile\n");
		free(p);
		return NULL;
	}
	return p;
}

static struct pent *prof_get(struct profiler *p, const char *name, int depth)
{
	unsigned int h = 5381;

	for (const char *p = name; *p; p++)
		h = h * 33 + (unsigned char)*p;
	for (unsigned int i = 0; i < PHASH; i++) {
		struct pent *e = &p->table[(h + i) % PHASH];

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

static void prof_add(struct profiler *p, int cpu, const char *name, int depth,
		     double us)
{
	struct pent *e = prof_get(p, name, depth);

	if (!e)
		return;
	e->calls++;
	e->us += us;
	/* charge the time to the caller's children, for self time */
	if (depth > 0 && depth <= PDEPTH && cpu >= 0 && cpu < PCPUS &&
	    p->open[cpu][depth - 1][0]) {
		struct pent *parent = prof_get(p, p->open[cpu][depth - 1],
					       depth - 1);

		if (parent && parent != e)
			parent->child_us += us;
	}
}

/* One line of function_graph output (funcgraph-tail, -cpu, -duration). */
static void prof_line(struct profiler *prof, char *line)
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
				snprintf(prof->open[cpu][depth],
					 sizeof(prof->open[0][0]), "%s", txt);
			return;
		}
		if (n < 3 || strcmp(txt + n - 3, "();"))
			return;
		txt[n - 3] = '\0';
		snprintf(name, sizeof(name), "%s", txt);
	}
	if (us < 0)
		return;
	prof->lines++;
	prof_add(prof, cpu, name, depth, us);
}

static int cmp_pent(const void *a, const void *b)
{
	const struct pent *x = a, *y = b;

	return x->us < y->us ? 1 : x->us > y->us ? -1 : 0;
}

/* Stop tracing, aggregate the trace, write the "profile" member, free p. */
void profiler_finish(struct profiler *p, FILE *f)
{
	const struct config *cfg = p->cfg;
	struct pent *tab = p->table;
	char path[160], line[1024];
	long long overrun = 0;
	FILE *t;
	int n = 0;
	uint64_t t0 = now_ns();

	tracefs_write(p, "tracing_on", "0", true);
	snprintf(path, sizeof(path), "%s/trace", p->tracefs);
	t = fopen(path, "r");
	if (t) {
		while (fgets(line, sizeof(line), t))
			prof_line(p, line);
		fclose(t);
	}
	for (long cpu = 0; cpu < sysconf(_SC_NPROCESSORS_ONLN); cpu++) {
		char buf[2048], *o;

		snprintf(path, sizeof(path), "%s/per_cpu/cpu%ld/stats",
			 p->tracefs, cpu);
		if (read_file(path, buf, sizeof(buf)) > 0 &&
		    (o = strstr(buf, "overrun:")))
			overrun += atoll(o + 8);
	}
	tracefs_write(p, "current_tracer", "nop", true);
	tracefs_write(p, "set_graph_function", "", true);
	tracefs_write(p, "set_ftrace_filter", "", true);
	snprintf(path, sizeof(path), "%s/trace", p->tracefs);
	write_str(path, "", true);
	p->collect_ns = now_ns() - t0;

	qsort(tab, PHASH, sizeof(*tab), cmp_pent);
	fputs(",\n\"profile\":{\"tracer\":\"function_graph\",\"graph_functions\":", f);
	json_str(f, cfg->profile_funcs);
	fputs(",\"filter\":", f);
	if (cfg->profile_filter)
		json_str(f, cfg->profile_filter);
	else
		fputs("null", f);
	fprintf(f, ",\"max_depth\":%d,\"lines\":%lld,\"overrun\":%lld,"
		"\"setup_ns\":%" PRIu64 ",\"collect_ns\":%" PRIu64 ","
		"\"functions\":[", cfg->profile_depth, p->lines, overrun,
		p->setup_ns, p->collect_ns);
	for (int i = 0; i < PHASH && n < 120; i++) {
		if (!tab[i].name[0])
			continue;
		fprintf(f, "%s{\"name\":", n ? "," : "");
		json_str(f, tab[i].name);
		fprintf(f, ",\"depth\":%d,\"calls\":%lld,\"total_us\":%.3f,"
			"\"self_us\":%.3f}", tab[i].depth, tab[i].calls,
			tab[i].us, tab[i].us > tab[i].child_us ?
			tab[i].us - tab[i].child_us : 0.0);
		n++;
	}
	fputs("]}", f);
	free(p);
}
