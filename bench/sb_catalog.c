// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_catalog.c: the catalogue, i.e. the variants and the workload table.
 *
 * A workload is one row: its name, the variants it runs by default, the
 * unit of its value, a sentence for the report, how it sizes its runs and
 * the function that runs one repetition of one variant.  The driver loop
 * (sforkbench.c) knows nothing else about workloads.
 */
#include "sforkbench.h"

#define VB VARIANT_BIT

const char *const variant_names[VAR_COUNT] = {
	[VAR_SFORK_LAZY] = "sfork_lazy", [VAR_SFORK_EAGER] = "sfork_eager",
	[VAR_SFORK_AUTO] = "sfork_auto",
	[VAR_SFORK_LAZY_HUGE] = "sfork_lazy_huge", [VAR_SHM_ANON] = "shm_anon",
	[VAR_SYSV_SHM] = "sysv_shm", [VAR_POSIX_SHM] = "posix_shm",
	[VAR_MEMFD] = "memfd", [VAR_FILE] = "file",
	[VAR_SHM_ANON_THP] = "shm_anon_thp", [VAR_MEMFD_THP] = "memfd_thp",
	[VAR_MEMFD_HUGETLB] = "memfd_hugetlb",
	[VAR_SYSV_HUGETLB] = "sysv_hugetlb", [VAR_PRIVATE] = "private",
	[VAR_PRIVATE_THP] = "private_thp", [VAR_FORK] = "fork",
	[VAR_MEMSET] = "memset", [VAR_POPULATE] = "populate",
	[VAR_PIPE] = "pipe", [VAR_SOCKETPAIR] = "socketpair",
};

/* sfork, a default-configured or a tuned peer, or a baseline */
const char *const variant_class[VAR_COUNT] = {
	[VAR_SFORK_LAZY] = "sfork", [VAR_SFORK_EAGER] = "sfork",
	[VAR_SFORK_AUTO] = "sfork", [VAR_SFORK_LAZY_HUGE] = "sfork",
	[VAR_SHM_ANON] = "default",
	[VAR_SYSV_SHM] = "default", [VAR_POSIX_SHM] = "default",
	[VAR_MEMFD] = "default", [VAR_FILE] = "default",
	[VAR_SHM_ANON_THP] = "tuned", [VAR_MEMFD_THP] = "tuned",
	[VAR_MEMFD_HUGETLB] = "tuned", [VAR_SYSV_HUGETLB] = "tuned",
	[VAR_PRIVATE] = "baseline", [VAR_PRIVATE_THP] = "baseline",
	[VAR_FORK] = "baseline", [VAR_MEMSET] = "baseline",
	[VAR_POPULATE] = "baseline", [VAR_PIPE] = "baseline",
	[VAR_SOCKETPAIR] = "baseline",
};

const struct workload_desc workloads[WL_COUNT] = {
	[WL_ABUNDANT] = { "abundant", VS_PEERED, "ns",
		"create+fork, parent and child write every page, wait, destroy",
		SIZE_AS_GIVEN, run_region },
	[WL_SPARSE] = { "sparse", VS_PEERED, "ns",
		"create+fork, parent and child write 3 pages each, wait, destroy",
		SIZE_AS_GIVEN, run_region },
	[WL_RANDOM] = { "random", VS_PEERED, "ns",
		"create+fork, each side writes a random quarter of the pages",
		SIZE_AS_GIVEN, run_region },
	[WL_MULTILEVEL] = { "multilevel", VS_PEERED, "ns",
		"child forks twice more: 5 processes each write a random quarter",
		SIZE_AS_GIVEN, run_region },
	[WL_LATENCY] = { "latency", VS_REGION | VS_TUNED | VB(VAR_FORK), "ns",
		"one create+fork+child exit+wait+destroy cycle",
		SIZE_AS_GIVEN, run_latency },
	[WL_FAULT] = { "fault",
		VS_PEERED | VB(VAR_PRIVATE) | VB(VAR_PRIVATE_THP),
		"ns/page", "parent's first write to every 4 KiB of the region, per 4 KiB",
		SIZE_AS_GIVEN, run_region },
	[WL_ZEROFILL] = { "zerofill", VB(VAR_SFORK_EAGER) | VB(VAR_SFORK_LAZY) |
		VB(VAR_MEMSET) | VB(VAR_POPULATE), "ns",
		"sfork call until it returns in the parent; memset of a faulted buffer; mmap(MAP_POPULATE)",
		SIZE_AS_GIVEN, run_zerofill },
	[WL_TEARDOWN] = { "teardown", VS_PEERED | VB(VAR_PRIVATE), "ns",
		"destroying a region whose every page the parent wrote, child gone",
		SIZE_AS_GIVEN, run_region },
	[WL_PUBLISH] = { "publish", VS_CHANNEL, "ns",
		"parent->child one-way latency, blocking receiver (libsfork publish channel / read)",
		SIZE_ONE_PAGE, run_channel },
	[WL_PINGPONG] = { "pingpong", VS_CHANNEL, "ns",
		"round trip, blocking (libsfork message ring / write+read)",
		SIZE_ONE_PAGE, run_channel },
	[WL_PUBLISH_SPIN] = { "publish_spin", VS_CHANNEL, "ns",
		"parent->child one-way latency, receiver polls for spin_ns first",
		SIZE_ONE_PAGE, run_channel },
	[WL_PINGPONG_SPIN] = { "pingpong_spin", VS_CHANNEL, "ns",
		"round trip, both sides poll for spin_ns before sleeping",
		SIZE_ONE_PAGE, run_channel },
	[WL_BULK] = { "bulk", VS_CHANNEL, "ns",
		"parent streams SIZE bytes to the child (ring in the region, or pipe/socket)",
		SIZE_AT_LEAST_CHUNK, run_channel },
	[WL_IDLE] = { "idle",
		VB(VAR_SFORK_AUTO) | VB(VAR_SHM_ANON) | VB(VAR_PIPE), "ns",
		"receiver's CPU time while blocked for idle_ms with nothing to receive (ring / read)",
		SIZE_ONE_PAGE, run_channel },
};
