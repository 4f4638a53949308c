// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_json.c: the JSON document.
 *
 * Every writer of the document sforkbench prints: one object per run (a
 * struct result, see sb_result.c), the guest environment, the
 * configuration and the catalogue.  Writers only write: they call nothing
 * but the file readers of sb_util.c.  The host side
 * (bench/driver.py, bench/report.py) reads exactly these keys.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/utsname.h>

#include <sfork.h>
#include <sfork_channel.h>

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
/* Runs                                                                */

static void emit_usage(FILE *f, const char *k, const struct usage *u)
{
	fprintf(f, "\"%s\":{\"minflt\":%lld,\"majflt\":%lld,\"nvcsw\":%lld,"
		"\"nivcsw\":%lld}", k, u->minflt, u->majflt, u->nvcsw,
		u->nivcsw);
}

void json_result(struct json_out *o, enum workload w, enum variant v,
		 size_t size, int rep, bool warm, const struct result *r)
{
	FILE *f = o->f;

	fputs(o->first_result ? "\n" : ",\n", f);
	o->first_result = false;
	fprintf(f, "{\"workload\":\"%s\",\"variant\":\"%s\",\"size\":%zu,"
		"\"rep\":%d,\"warmup\":%s,\"ok\":%s,\"error\":",
		workloads[w].name, variant_names[v], size, rep, warm ? "true" : "false",
		r->ok ? "true" : "false");
	if (r->ok)
		fputs("null", f);
	else
		json_str(f, r->err);
	fprintf(f, ",\"value\":%.3f,\"unit\":\"%s\",\"inner\":%d",
		r->ok ? r->value : 0.0, workloads[w].unit, r->inner);
	fprintf(f, ",\"ns\":{\"setup\":%" PRId64 ",\"parent\":%" PRId64
		",\"wait\":%" PRId64 ",\"teardown\":%" PRId64 ",\"total\":%"
		PRId64 ",\"child\":%" PRId64 ",\"settle\":%" PRId64 "}",
		r->setup, r->parent, r->wait, r->teardown, r->total,
		r->have_child_report ? (int64_t)r->child_report.work_ns : -1, r->settle);
	fputs(",\"counters\":{", f);
	emit_usage(f, "self", &r->self_usage);
	fputc(',', f);
	emit_usage(f, "children", &r->children_usage);
	if (r->have_child_report) {
		fputc(',', f);
		emit_usage(f, "child_self", &r->child_report.usage);
	}
	if (r->stats_before.ok && r->stats_after_work.ok) {
		fprintf(f, ",\"sfork_faults\":%lld,\"sfork_pages_live\":%lld,"
			"\"sfork_pages_live_before\":%lld",
			r->stats_after_work.faults - r->stats_before.faults,
			r->stats_after_work.pages_live,
			r->stats_before.pages_live);
		if (r->stats_after_destroy.ok)
			fprintf(f, ",\"sfork_pages_live_after\":%lld,"
				"\"sfork_regions_live_after\":%lld",
				r->stats_after_destroy.pages_live,
				r->stats_after_destroy.regions_live);
	}
	fputc('}', f);
	fprintf(f, ",\"verify_errors\":%" PRId64, r->verify_errors);
	if (r->have_child_report && r->child_report.lat_med)
		fprintf(f, ",\"latency\":{\"median\":%" PRIu64 ",\"min\":%"
			PRIu64 ",\"p90\":%" PRIu64 ",\"mean\":%" PRIu64 "}",
			r->child_report.lat_med, r->child_report.lat_min,
			r->child_report.lat_p90, r->child_report.lat_mean);
	if (r->extra_bytes > 0)
		fprintf(f, ",\"bytes\":%.0f", r->extra_bytes);
	if (r->idle_ns > 0)
		fprintf(f, ",\"idle_ns\":%" PRId64, r->idle_ns);
	if (r->have_mem)
		fprintf(f, ",\"memory_kb\":{\"region\":%lld,\"shmem_pmd_mapped\":%lld,"
			"\"hugetlb_mapped\":%lld}", r->mem_kb, r->shmem_pmd_kb,
			r->hugetlb_kb);
	if (r->tuning) {
		fputs(",\"tuning\":", f);
		json_str(f, r->tuning);
	}
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

/*
 * Every parameter the module has (the known two as null when it is not
 * loaded): the report names the page policy from them, whatever it is
 * called.
 */
static void emit_params(FILE *f)
{
	struct dirent **names;
	int n = scandir(PARAM_DIR, &names, NULL, alphasort), k = 0;

	if (n < 0) {
		emit_param(f, "eager_threshold", false);
		emit_param(f, "max_region_bytes", true);
		return;
	}
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.')
			emit_param(f, names[i]->d_name, k++ > 0);
		free(names[i]);
	}
	free(names);
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

void json_env(FILE *f, size_t page_size)
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
		"\"clock_res_ns\":%ld", sysconf(_SC_NPROCESSORS_ONLN), page_size,
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
	emit_params(f);
	fputs("}", f);
	emit_file_str(f, "nr_hugepages", "/proc/sys/vm/nr_hugepages");
	fputs("}", f);
}

void json_config(FILE *f, const struct config *cfg, bool profiling)
{
	fprintf(f, ",\n\"config\":{\"reps\":%d,\"warmup\":%d,\"msgs\":%d,"
		"\"spin_ns\":%" PRIu64 ",\"ring\":%zu,\"chunk\":%zu,"
		"\"timeout_s\":%u,\"verify_all\":%s,\"profiling\":%s,"
		"\"file_dir\":", cfg->reps, cfg->warmup, cfg->msgs, cfg->spin_ns,
		cfg->ring, cfg->chunk, cfg->timeout_s,
		cfg->verify_all ? "true" : "false",
		profiling ? "true" : "false");
	json_str(f, cfg->file_dir);
	fprintf(f, ",\"chan_spin_ns\":%ld,\"chan_spin_default_ns\":%d,"
		"\"idle_ms\":%u", cfg->chan_spin_ns, SFORK_CHAN_SPIN_NS,
		cfg->idle_ms);
	fputs(",\"thp_shmem\":", f);
	if (cfg->thp_shmem)
		json_str(f, cfg->thp_shmem);
	else
		fputs("null", f);
	fputs(",\"items\":[", f);
	for (int i = 0; i < cfg->nitems; i++) {
		const struct item *it = &cfg->items[i];
		bool first = true;

		fprintf(f, "%s{\"workload\":\"%s\",\"reps\":%d,\"variants\":[",
			i ? "," : "", workloads[it->w].name, it->reps);
		for (int v = 0; v < VAR_COUNT; v++)
			if (it->variants & VARIANT_BIT(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",",
					variant_names[v]);
				first = false;
			}
		fputs("],\"sizes\":[", f);
		for (int s = 0; s < it->nsizes; s++)
			fprintf(f, "%s%zu", s ? "," : "", it->sizes[s]);
		fputs("]}", f);
	}
	fputs("]}", f);
}

void json_catalog(FILE *f)
{
	fputs("\"catalog\":{\"variants\":[", f);
	for (int v = 0; v < VAR_COUNT; v++)
		fprintf(f, "%s\"%s\"", v ? "," : "", variant_names[v]);
	fputs("],\"classes\":{", f);
	for (int v = 0; v < VAR_COUNT; v++)
		fprintf(f, "%s\"%s\":\"%s\"", v ? "," : "", variant_names[v],
			variant_class[v]);
	fputs("},\"workloads\":{", f);
	for (int w = 0; w < WL_COUNT; w++) {
		bool first = true;

		fprintf(f, "%s\"%s\":{\"unit\":\"%s\",\"what\":", w ? "," : "",
			workloads[w].name, workloads[w].unit);
		json_str(f, workloads[w].what);
		fputs(",\"variants\":[", f);
		for (int v = 0; v < VAR_COUNT; v++)
			if (workloads[w].variants & VARIANT_BIT(v)) {
				fprintf(f, "%s\"%s\"", first ? "" : ",",
					variant_names[v]);
				first = false;
			}
		fputs("]}", f);
	}
	fputs("}}", f);
}
