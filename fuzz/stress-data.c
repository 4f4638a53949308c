// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What sfork-stress writes into regions and checks: the pattern of a pair
 * (one_pair(), the unit of the pairs, oom and unload modes) and the
 * per-page words of the kill and oom modes.
 */
#include "stress.h"

/* ---- the data pattern of a pair ----------------------------------------- */

/*
 * Per page one 64-bit word somewhere in [16, 2048) of the page (so every
 * page is faulted), plus a chunk of up to 1 KiB in [2048, 4088) of one page.
 * Bytes 0-15 of the region are the flag; the region's last byte is never
 * written (it checks the rounding up to a page and the zero fill).
 */
struct pattern {
	uint64_t seed;
	size_t sz, pages, coff, clen;
};

static void pat_init(struct pattern *pt, uint64_t seed, size_t sz)
{
	uint64_t h = mix64(seed ^ 0xc4c4c4c4ULL);

	pt->seed = seed;
	pt->sz = sz;
	pt->pages = sz / PAGE;
	pt->clen = 1 + h % 1024;
	pt->coff = ((h >> 16) % pt->pages) * PAGE + 2048 + (h >> 40) % (2040 - pt->clen);
}

static size_t word_off(const struct pattern *pt, size_t p)
{
	return p * PAGE + 16 + 8 * (mix64(pt->seed + p) % 254);
}

static uint64_t word_val(const struct pattern *pt, int salt, size_t p)
{
	return mix64(pt->seed ^ ((uint64_t)salt << 56) ^ (p * 0x100000001b3ULL)) | 1;
}

static uint8_t chunk_byte(const struct pattern *pt, int salt, size_t j)
{
	return (uint8_t)(mix64(pt->seed ^ (uint64_t)salt ^ (j / 8) << 8) >> (j % 8 * 8));
}

/* Offset of the first unexpected byte, or -1. */
static long pat_zero(const struct pattern *pt, const char *base)
{
	for (size_t p = 0; p < pt->pages; p++)
		if (*(volatile const uint64_t *)(base + word_off(pt, p)))
			return word_off(pt, p);
	for (size_t j = 0; j < pt->clen; j++)
		if (((volatile const char *)base)[pt->coff + j])
			return pt->coff + j;
	if (((volatile const char *)base)[pt->sz - 1])
		return pt->sz - 1;
	return -1;
}

static void pat_write(const struct pattern *pt, char *base, int salt)
{
	for (size_t p = 0; p < pt->pages; p++)
		*(volatile uint64_t *)(base + word_off(pt, p)) = word_val(pt, salt, p);
	for (size_t j = 0; j < pt->clen; j++)
		((volatile char *)base)[pt->coff + j] = chunk_byte(pt, salt, j);
}

static long pat_verify(const struct pattern *pt, const char *base, int salt)
{
	for (size_t p = 0; p < pt->pages; p++)
		if (*(volatile const uint64_t *)(base + word_off(pt, p)) != word_val(pt, salt, p))
			return word_off(pt, p);
	for (size_t j = 0; j < pt->clen; j++)
		if ((uint8_t)((volatile const char *)base)[pt->coff + j] != chunk_byte(pt, salt, j))
			return pt->coff + j;
	if (((volatile const char *)base)[pt->sz - 1])
		return pt->sz - 1;
	return -1;
}

/* ---- one sfork pair: used by pairs, unload (churn, after reload) -------- */

static int pair_child(char *base, size_t sz, int d, uint64_t ps, pid_t parent)
{
	struct pattern pt;
	long off;
	int r;

	pat_init(&pt, ps, sz);
	if (parent_writes(d)) {
		r = flag_wait((uint32_t *)base, 60, parent);
		if (r)
			return r;
		off = pat_verify(&pt, base, 1);
		if (off >= 0) {
			fprintf(stderr, "sfork-stress: child: %s region %zu bytes: parent's data wrong at offset %ld\n",
				dir_name[d], sz, off);
			return E_MISMATCH;
		}
	} else {
		off = pat_zero(&pt, base);
		if (off >= 0) {
			fprintf(stderr, "sfork-stress: child: %s region %zu bytes: byte at %ld not zero\n",
				dir_name[d], sz, off);
			return E_NOTZERO;
		}
	}
	if (child_writes(d))
		pat_write(&pt, base, 2);
	return 0;
}

static void peak_update(_Atomic long *peak, long v)
{
	long old = atomic_load(peak);

	while (v > old && !atomic_compare_exchange_weak(peak, &old, v))
		;
}

/*
 * sfork a region of @len bytes, exchange data through it in its direction,
 * verify, reap the child, unmap.  0, or -1 after printing why.
 */
int one_pair(int d, int a, size_t len, uint64_t ps, struct pair_counts *pc)
{
	size_t sz = (len + PAGE - 1) & ~(PAGE - 1);
	pid_t me = getpid(), pid;
	struct pattern pt;
	void *addr = NULL;
	char *base;
	long off;
	int st;

	pid = sfork(len, dir_flag[d] | alloc_flag[a], &addr);
	if (pid < 0) {
		failf("sfork(%zu, %s|%s): %s", len, dir_name[d], alloc_name[a], strerror(errno));
		return -1;
	}
	if (pid == 0)
		_exit(pair_child(addr, sz, d, ps, me));
	base = addr;
	if (pc)
		peak_update(&pc->peak, atomic_fetch_add(&pc->active, 1) + 1);
	pat_init(&pt, ps, sz);
	if ((uintptr_t)base & (PAGE - 1)) {
		failf("region %p is not page aligned", addr);
		kill(pid, SIGKILL);
	} else if (parent_writes(d)) {
		off = pat_zero(&pt, base);
		if (off >= 0) {
			failf("%s|%s region of %zu bytes: byte at %ld not zero before any write",
			      dir_name[d], alloc_name[a], sz, off);
			kill(pid, SIGKILL);
		} else {
			pat_write(&pt, base, 1);
			flag_set((uint32_t *)base);
		}
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (pc)
		atomic_fetch_sub(&pc->active, 1);
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		if (WIFSIGNALED(st))
			failf("%s|%s pair of %zu bytes (len %zu): child killed by signal %d",
			      dir_name[d], alloc_name[a], sz, len, WTERMSIG(st));
		else
			failf("%s|%s pair of %zu bytes (len %zu): child: %s",
			      dir_name[d], alloc_name[a], sz, len, code_name(WEXITSTATUS(st)));
		munmap(addr, sz);
		return -1;
	}
	if (child_writes(d)) {
		off = pat_verify(&pt, base, 2);
		if (off >= 0) {
			failf("%s|%s region of %zu bytes: child's data wrong at offset %ld",
			      dir_name[d], alloc_name[a], sz, off);
			munmap(addr, sz);
			return -1;
		}
	}
	if (munmap(addr, sz)) {
		failf("munmap of a region: %s", strerror(errno));
		return -1;
	}
	if (pc) {
		atomic_fetch_add(&pc->sforks, 1);
		atomic_fetch_add(&pc->bytes, sz);
		atomic_fetch_add(&pc->by_dir[d], 1);
		atomic_fetch_add(&pc->by_alloc[a], 1);
	}
	return 0;
}

/* 4 KiB to 1 MiB, sometimes not a page multiple. */
size_t pick_len(struct rng *r, size_t max_pages)
{
	size_t pages = 1 + below(r, max_pages);
	size_t len = pages * PAGE;

	if (below(r, 4) == 0)
		len -= below(r, PAGE - 1);
	return len;
}

/* ---- the page words of kill and oom ------------------------------------- */

size_t kword_off(long p)
{
	return p * PAGE + 8 * (p % 511);
}

uint64_t kval(uint64_t seed, long p)
{
	return mix64(seed + p) | 1;
}

int touch_pages(char *base, long npages, int writes, uint64_t seed, _Atomic long *progress)
{
	for (long p = 0; p < npages; p++) {
		volatile uint64_t *w = (volatile uint64_t *)(base + kword_off(p));

		if (writes)
			*w = kval(seed, p);
		else if (*w)
			return E_NOTZERO;
		atomic_store_explicit(progress, p + 1, memory_order_release);
	}
	return 0;
}
