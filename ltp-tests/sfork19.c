// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * A region's descriptor is no way around its direction.
 *
 * Adapts LTP's memfd_create01 (seals: F_GET_SEALS, F_ADD_SEALS, and what a
 * seal forbids), ftruncate04 and fallocate tests to the descriptor that
 * sfork_region_fd() exports.  For each direction with a read-only side
 * (both without -d), the read-only side exports its side and tries, on the
 * descriptor:
 *
 *  - fcntl(F_GET_SEALS) and fcntl(F_ADD_SEALS, F_SEAL_WRITE): EINVAL, it is
 *    not a memfd (a descriptor whose file borrows the shmem mapping without
 *    the shmem inode would read and write seals out of bounds here);
 *  - ftruncate() to 0 and to twice the size, fallocate() (punch a hole,
 *    allocate beyond the end) and write(): all fail;
 *  - mmap(PROT_READ | PROT_WRITE) with MAP_SHARED or MAP_PRIVATE: refused
 *    (a private copy is no view of the region);
 *  - a reopen through /proc/self/fd/N (read-write and read-only): either
 *    refused, or the new descriptor cannot be mapped writable either;
 *  - MADV_REMOVE on its own mapping: EOPNOTSUPP (kernels from 6.7, and
 *    Debian's 6.1, only ask it for VM_MAYWRITE, which the read-only side
 *    keeps; the fallocate() it calls must not reach the shmem pages);
 *    msync(MS_SYNC) succeeds and changes nothing.
 *
 * The writer does the same size and seal checks on its own descriptor (a
 * region's size is fixed for its life).  After each round the reader reads
 * the writer's pattern, and the writer reads it back unchanged.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>

#include "tst_test.h"
#include "sfork_test.h"

#ifndef F_ADD_SEALS
# define F_ADD_SEALS	1033
# define F_GET_SEALS	1034
# define F_SEAL_WRITE	0x0008
#endif

#define CP_READER	0
#define CP_WRITER	1

static void intact(const unsigned char *p, unsigned int seed, const char *who)
{
	if (!sfork_check_fill(p, 0, sfork_region_size, seed, who))
		tst_res(TPASS, "%s: the writer's data is intact", who);
}

/*
 * Size and seals: no side can change either.  The errnos are what the VFS
 * gives a file that is no regular file and has no write method.
 */
static void fixed_file(int fd, const char *who)
{
	static const int write_errs[] = { EINVAL, ESPIPE };

	TST_EXP_FAIL2(fcntl(fd, F_GET_SEALS), EINVAL, "%s: F_GET_SEALS", who);
	TST_EXP_FAIL(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), EINVAL,
		     "%s: F_ADD_SEALS(F_SEAL_WRITE)", who);
	TST_EXP_FAIL(ftruncate(fd, 0), EINVAL, "%s: ftruncate(0)", who);
	TST_EXP_FAIL(ftruncate(fd, 2 * sfork_region_size), EINVAL,
		     "%s: ftruncate(2 x size)", who);
	TST_EXP_FAIL(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       0, sfork_region_size), ENODEV, "%s: fallocate(PUNCH_HOLE)", who);
	TST_EXP_FAIL(fallocate(fd, 0, sfork_region_size, sfork_region_size), ENODEV,
		     "%s: fallocate() beyond the end", who);
	TST_EXP_FAIL2_ARR(pwrite(fd, "x", 1, 0), write_errs, 2, "%s: pwrite()", who);
}

/* TPASS when mmap(PROT_READ | PROT_WRITE, mflags) of fd is refused */
static void check_map_refused(int fd, int mflags, const char *how,
			      const char *what)
{
	void *p;

	p = mmap(NULL, sfork_region_size, PROT_READ | PROT_WRITE, mflags, fd, 0);
	if (p != MAP_FAILED) {
		tst_res(TFAIL, "%s: mmap(%s) succeeded", what, how);
		SAFE_MUNMAP(p, sfork_region_size);
	} else {
		tst_res(TPASS | TERRNO, "%s: mmap(%s) refused", what, how);
	}
}

static void no_writable_map(int fd, const char *what)
{
	check_map_refused(fd, MAP_SHARED, "PROT_WRITE, MAP_SHARED", what);
	check_map_refused(fd, MAP_PRIVATE, "MAP_PRIVATE", what);
}

static void reopen(int fd, int oflags, const char *how)
{
	char path[64], what[96];
	int fd2;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(what, sizeof(what), "reader: reopened %s", how);
	fd2 = open(path, oflags);
	if (fd2 < 0) {
		tst_res(TPASS | TERRNO, "%s: refused", what);
		return;
	}
	no_writable_map(fd2, what);
	SAFE_CLOSE(fd2);
}

static void reader(unsigned char *p)
{
	int fd;

	TST_CHECKPOINT_WAIT2(CP_READER, 60000);
	fd = sfork_region_fd(p, O_CLOEXEC);
	if (fd < 0)
		tst_brk(TBROK | TERRNO, "sfork_region_fd() on the read-only side");

	fixed_file(fd, "reader");
	no_writable_map(fd, "reader: its descriptor");
	reopen(fd, O_RDWR, "read-write");
	reopen(fd, O_RDONLY, "read-only");
	TST_EXP_PASS(msync(p, sfork_region_size, MS_SYNC), "reader: msync(MS_SYNC)");
	TST_EXP_FAIL(madvise(p, sfork_region_size, MADV_REMOVE), EOPNOTSUPP, "reader: MADV_REMOVE");
	SAFE_CLOSE(fd);

	intact(p, 1, "reader");
	TST_CHECKPOINT_WAKE(CP_WRITER);
}

static void writer(unsigned char *p)
{
	int fd;

	sfork_fill(p, 0, sfork_region_size, 1);
	fd = sfork_region_fd(p, O_CLOEXEC);
	if (fd < 0)
		tst_brk(TBROK | TERRNO, "sfork_region_fd() on the writing side");
	fixed_file(fd, "writer");
	SAFE_CLOSE(fd);

	TST_CHECKPOINT_WAKE(CP_READER);
	TST_CHECKPOINT_WAIT2(CP_WRITER, 60000);
	intact(p, 1, "writer");
}

static void run(void)
{
	sfork_run_sides_each_dir(reader, writer, 0);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Read-only side p2c|c2p (default: both)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = sfork_setup_readonly_dirs,
	.test_all = run,
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 120,
};
