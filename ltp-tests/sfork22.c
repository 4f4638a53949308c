// SPDX-License-Identifier: GPL-2.0-or-later
/*\
 * sfork22 - huge-page regions: mapped by 2 MiB PMDs in both processes, and
 * still read-only on the read-only side.
 *
 * With the module parameter huge_pages at 2 (every region of 2 MiB or more;
 * restored afterwards), for the direction -d (bi, p2c and c2p without -d),
 * -a and a 2 MiB-aligned -s (default 4M):
 *
 *  - the writer fills the region; pages_live grew by exactly the region's
 *    size in PAGE_SIZE pages; its smaps shows the region ShmemPmdMapped;
 *  - the other side reads every byte as written, and its smaps shows the
 *    region ShmemPmdMapped too;
 *  - a read-only side: a store into a PMD-mapped page faults with
 *    SEGV_ACCERR, mprotect(PROT_READ|PROT_WRITE) of one page inside a PMD
 *    fails with EACCES, pwrite() to /proc/self/mem there fails,
 *    madvise(MADV_DONTNEED) of one page inside a PMD leaves the data, and
 *    after munmap() of the first page the rest still reads as written and
 *    a store into it still faults;
 *  - with huge_pages at 0 the same region is not PMD-mapped.
 */

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork_huge.h"

#define CP_FILLED	0
#define CP_READ		1

#define SEED		22

static void check_pmd_mapped(const void *p, const char *who)
{
	long long kb = sfork_pmd_mapped_kb(p);

	if (kb >= (long long)(SFORK_HUGE_SIZE >> 10))
		tst_res(TPASS, "%s: ShmemPmdMapped %lld kB of %zu kB", who, kb,
			sfork_region_size >> 10);
	else
		tst_res(TFAIL, "%s: ShmemPmdMapped %lld kB, no 2 MiB mapping", who,
			kb);
}

/* 0 when p[from, region end) is as the writer wrote it */
static int check_written(const unsigned char *p, size_t from, const char *what)
{
	return sfork_check_fill(p + from, from, sfork_region_size - from, SEED,
				what);
}

static void read_only_checks(unsigned char *p)
{
	unsigned char *mid = p + SFORK_HUGE_SIZE / 2;
	char bad = 0x5a;
	int fd;

	if (!sfork_check_store_faults(mid, "read-only side, inside a PMD"))
		tst_res(TPASS, "read-only side, inside a PMD: a store faults with SEGV_ACCERR");
	TST_EXP_FAIL(mprotect(mid, sfork_page, PROT_READ | PROT_WRITE), EACCES,
		     "mprotect(RW) of one page inside a PMD");

	fd = SAFE_OPEN("/proc/self/mem", O_RDWR);
	TEST(pwrite(fd, &bad, 1, (off_t)(uintptr_t)(mid + 1)));
	if (TST_RET == 1)
		tst_res(TFAIL, "pwrite(/proc/self/mem) inside a PMD wrote");
	else
		tst_res(TPASS | TTERRNO, "pwrite(/proc/self/mem) inside a PMD refused");
	SAFE_CLOSE(fd);

	TST_EXP_PASS(madvise(mid, sfork_page, MADV_DONTNEED));
	if (!check_written(p, 0, "after MADV_DONTNEED of one page inside a PMD"))
		tst_res(TPASS, "after MADV_DONTNEED of one page inside a PMD the data stays");

	SAFE_MUNMAP(p, sfork_page);
	if (!check_written(p, sfork_page, "after munmap() of the first page"))
		tst_res(TPASS, "after munmap() of the first page the rest reads as written");
	if (!sfork_check_store_faults(p + sfork_page,
				      "read-only side, after the partial munmap"))
		tst_res(TPASS, "read-only side, after the partial munmap: a store faults with SEGV_ACCERR");
}

static void writer(unsigned char *p, long long live0)
{
	long long live;

	sfork_fill(p, 0, sfork_region_size, SEED);
	live = sfork_stat("pages_live");
	TST_EXP_EXPR(live - live0 == (long long)(sfork_region_size / sfork_page),
		     "pages_live grew by %zu pages (%lld)",
		     sfork_region_size / sfork_page, live - live0);
	check_pmd_mapped(p, "writer");
	TST_CHECKPOINT_WAKE(CP_FILLED);
	TST_CHECKPOINT_WAIT2(CP_READ, 60000);
}

static void reader(unsigned char *p, int read_only)
{
	TST_CHECKPOINT_WAIT2(CP_FILLED, 60000);
	if (!check_written(p, 0, "the other side"))
		tst_res(TPASS, "the other side reads every byte as written");
	check_pmd_mapped(p, read_only ? "read-only side" : "second writer");
	if (read_only)
		read_only_checks(p);
	TST_CHECKPOINT_WAKE(CP_READ);
}

static void run_dir(unsigned int flags)
{
	int child_reads = !sfork_child_writes(flags) || (flags & SFORK_BIDIRECTIONAL);
	long long live0 = sfork_stat("pages_live");
	void *addr = NULL;
	int status;
	pid_t pid;

	tst_res(TINFO, "%s", sfork_flags_desc(flags));
	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (child_reads)
			reader(addr, !sfork_child_writes(flags));
		else
			writer(addr, live0);
		exit(0);
	}
	if (child_reads)
		writer(addr, live0);
	else
		reader(addr, 1);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	if (sfork_reader_is_parent(flags))
		SAFE_MUNMAP((char *)addr + sfork_page, sfork_region_size - sfork_page);
	else
		SAFE_MUNMAP(addr, sfork_region_size);
}

/* huge_pages 0: the same region has no PMD mapping */
static void run_policy_off(void)
{
	unsigned int flags = SFORK_BIDIRECTIONAL | (sfork_flags & SFORK_ALLOC_MASK);
	unsigned char *p;
	void *addr = NULL;
	pid_t pid;
	size_t i;

	SAFE_FILE_PRINTF(SFORK_HUGE_PARAM, "0");
	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid)
		exit(0);
	p = addr;
	for (i = 0; i < sfork_region_size; i += sfork_page)
		p[i] = 1;
	TST_EXP_EXPR(sfork_pmd_mapped_kb(p) == 0, "huge_pages 0: ShmemPmdMapped %lld kB",
		     sfork_pmd_mapped_kb(p));
	SAFE_WAITPID(pid, NULL, 0);
	SAFE_MUNMAP(addr, sfork_region_size);
	SAFE_FILE_PRINTF(SFORK_HUGE_PARAM, "2");
}

static void run(void)
{
	sfork_for_each_dir(run_dir);
	run_policy_off();
}

static void setup(void)
{
	if (!sfork_str_size)
		sfork_str_size = "4M";
	sfork_setup_all_dirs();
	if (sfork_region_size % SFORK_HUGE_SIZE)
		tst_brk(TCONF, "-s %s is not a multiple of 2 MiB", sfork_str_size);
	sfork_huge_setup(2);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = sfork_huge_cleanup,
	.test_all = run,
	.needs_root = 1,
	.forks_child = 1,
	.needs_checkpoints = 1,
};
