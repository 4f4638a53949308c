// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_json.c: the results and the JSON document.
 *
 * A run's struct result (its phases, counters and error), and every
 * writer of the document sforkbench prints: one object per run, the guest
 * environment, the configuration and the catalogue.  The host side
 * (bench/driver.py, bench/report.py) reads exactly these keys.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>

#include <sfork.h>

#include "sforkbench.h"

#define PARAM_DIR "/sys/module/sfork/parameters/"

/* ------------------------------------------------------------------ */
/* JSON strings                                                        */

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* ------------------------------------------------------------------ */
/* Results                                                             */

void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->ok = true;
	r->setup = r->parent = r->wait = r->teardown = r->total = r->child =
		r->settle = -1;
	r->inner = 1;
}

void fail(struct result *r, const char *what, int e)
{
	if (!r->ok)
		return;
	r->ok = false;
	snprintf(r->err, sizeof(r->err), "%s: %s", what,
		 e ? strerror(e) : "failed");
}

static void emit_usage(FILE *f, const char *k, const struct usage *u)
{
	fprintf(f, "\"%s\":{\"minflt\":%lld,\"majflt\":%lld,\"nvcsw\":%lld,"
		"\"nivcsw\":%lld}", k, u->minflt, u->majflt, u->nvcsw,
		u->nivcsw);
}

static bool g_first_result = true;

void emit_result(int w, int v, size_t size, int rep, bool warm,
		 const struct result *r)
{
	FILE *f = stdout;

	fputs(g_first_result ? "\n" : ",\n", f);
	g_first_result = false;
	fprintf(f, "{\"workload\":\"%s\",\"variant\":\"%s\",\"size\":%zu,"
		"\"rep\":%d,\"warmup\":%s,\"ok\":%s,\"error\":",
		wdesc[w].name, vname[v], size, rep, warm ? "true" : "false",
		r->ok ? "true" : "false");
	if (r->ok)
		fputs("null", f);
	else
		json_str(f, r->err);
	fprintf(f, ",\"value\":%.3f,\"unit\":\"%s\",\"inner\":%d",
		r->ok ? r->value : 0.0, wdesc[w].unit, r->inner);
	fprintf(f, ",\"ns\":{\"setup\":%" PRId64 ",\"parent\":%" PRId64
		",\"wait\":%" PRId64 ",\"teardown\":%" PRId64 ",\"total\":%"
		PRId64 ",\"child\":%" PRId64 ",\"settle\":%" PRId64 "}",
		r->setup, r->parent, r->wait, r->teardown, r->total,
		r->have_cr ? (int64_t)r->cr.work_ns : -1, r->settle);
	fputs(",\"counters\":{", f);
	emit_usage(f, "self", &r->up);
	fputc(',', f);
	emit_usage(f, "children", &r->uc);
	if (r->have_cr) {
		fputc(',', f);
		emit_usage(f, "child_self", &r->cr.u);
	}
	if (r->s0.ok && r->s1.ok) {
		fprintf(f, ",\"sfork_faults\":%lld,\"sfork_pages_live\":%lld,"
			"\"sfork_pages_live_before\":%lld",
			r->s1.faults - r->s0.faults, r->s1.pages_live,
			r->s0.pages_live);
		if (r->s2.ok)
			fprintf(f, ",\"sfork_pages_live_after\":%lld,"
				"\"sfork_regions_live_after\":%lld",
				r->s2.pages_live, r->s2.regions_live);
	}
	fputc('}', f);
	fprintf(f, ",\"verify_errors\":%" PRId64, r->verify_errors);
	if (r->have_cr && r->cr.lat_med)
		fprintf(f, ",\"latency\":{\"median\":%" PRIu64 ",\"min\":%"
			PRIu64 ",\"p90\":%" PRIu64 ",\"mean\":%" PRIu64 "}",
			r->cr.lat_med, r->cr.lat_min, r->cr.lat_p90,
			r->cr.lat_mean);
	if (r->extra_bytes > 0)
		fprintf(f, ",\"bytes\":%.0f", r->extra_bytes);
	fputc('}', f);
	fflush(f);
}

/* ------------------------------------------------------------------ */
/* Environment and output                                              */

static void emit_param(FILE *f, const char *name, bool comma)
{
	char path[160], buf[128];

	snprintf(path, sizeof(path), PARAM_DIR "%s", name);
	fprintf(f, "%s\"%s\":", comma ? "," : "", name);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		rstrip(buf);
		json_str(f, buf);
	} else {
		fputs("null", f);
	}
}

static void emit_file_str(FILE *f, const char *key, const char *path)
{
	char buf[1024];

	fprintf(f, ",\"%s\":", key);
	if (read_file(path, buf, sizeof(buf)) > 0) {
		rstrip(buf);
		json_str(f, buf);
	} else {
		fputs("null", f);
	}
}

void emit_env(FILE *f)
{
	struct utsname u;
	struct timespec res;
	char buf[8192], *p;
	long long memkb = -1;

	uname(&u);
	clock_getres(CLOCK_MONOTONIC, &res);
	fputs("\"env\":{\"kernel\":", f);
	json_str(f, u.release);
	fputs(",\"kernel_version\":", f);
	json_str(f, u.version);
	fputs(",\"machine\":", f);
	json_str(f, u.machine);
	fprintf(f, ",\"cpus_online\":%ld,\"page_size\":%zu,"
		"\"clock_res_ns\":%ld", sysconf(_SC_NPROCESSORS_ONLN), g_pg,
		res.tv_nsec);
	if (read_file("/proc/meminfo", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "MemTotal:")))
		memkb = atoll(p + 9);
	fprintf(f, ",\"mem_total_kb\":%lld", memkb);
	fputs(",\"cpu_model\":", f);
	if (read_file("/proc/cpuinfo", buf, sizeof(buf)) > 0 &&
	    (p = strstr(buf, "model name"))) {
		char *e = strchr(p, '\n'), *c = strchr(p, ':');

		if (e)
			*e = '\0';
		json_str(f, c ? c + 2 : p);
	} else {
		fputs("null", f);
	}
	emit_file_str(f, "cmdline", "/proc/cmdline");
	emit_file_str(f, "thp_enabled",
		      "/sys/kernel/mm/transparent_hugepage/enabled");
	emit_file_str(f, "thp_shmem_enabled",
		      "/sys/kernel/mm/transparent_hugepage/shmem_enabled");
	fprintf(f, ",\"sfork_device\":%s,\"sfork_stats\":%s",
		access(SFORK_DEVICE, F_OK) == 0 ? "true" : "false",
		access(STATS_PATH, R_OK) == 0 ? "true" : "false");
	fputs(",\"sfork_params\":{", f);
	emit_param(f, "eager_threshold", false);
	emit_param(f, "max_region_bytes", true);
	fputs("}}", f);
}

void emit_config(FILE *f, bool profiling)
{
	fprintf(f, ",\n\"config\":{\"reps\":%d,\"warmup\":%d,\"msgs\":%d,"
		"\"spin_ns\":%" PRIu64 ",\"ring\":%zu,\"chunk\":%zu,"
		"\"timeout_s\":%u,\"verify_all\":%s,\"profiling\":%s,"
		"\"file_dir\":", cfg.reps, cfg.warmup, cfg.msgs, cfg.spin_ns,
		cfg.ring, cfg.chunk, cfg.timeout_s,
		cfg.verify_all ? "true" : "false",
		profiling ? "true" : "false");
	json_str(f, cfg.file_dir);
	fputs(",\"items\":[", f);
	for (int i = 0; i < cfg.nitems; i++) {
		const struct item *it = &cfg.items[i];
		bool first = true;

		fprintf(f, "%s{\"workload\":\"%s\",\"reps\":%d,\"variants\":[",
			i ? "," : "", wdesc[it->w].name, it->reps);
		for (int v = 0; v < V_COUNT; v++)
			if (it->variants & B(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",", vname[v]);
				first = false;
			}
		fputs("],\"sizes\":[", f);
		for (int s = 0; s < it->nsizes; s++)
			fprintf(f, "%s%zu", s ? "," : "", it->sizes[s]);
		fputs("]}", f);
	}
	fputs("]}", f);
}

void emit_catalog(FILE *f)
{
	fputs("\"catalog\":{\"variants\":[", f);
	for (int v = 0; v < V_COUNT; v++)
		fprintf(f, "%s\"%s\"", v ? "," : "", vname[v]);
	fputs("],\"workloads\":{", f);
	for (int w = 0; w < W_COUNT; w++) {
		bool first = true;

		fprintf(f, "%s\"%s\":{\"unit\":\"%s\",\"what\":", w ? "," : "",
			wdesc[w].name, wdesc[w].unit);
		json_str(f, wdesc[w].what);
		fputs(",\"variants\":[", f);
		for (int v = 0; v < V_COUNT; v++)
			if (wdesc[w].variants & B(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",", vname[v]);
				first = false;
			}
		fputs("]}", f);
	}
	fputs("}}", f);
}
