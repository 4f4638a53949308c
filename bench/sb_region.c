// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_region.c: the variants, i.e. how each one makes its shared region.
 *
 * sfork_{lazy,eager,auto,lazy_huge} get theirs from sfork(); shm_anon, sysv_shm,
 * posix_shm, memfd and file (default-configured) and shm_anon_thp,
 * memfd_thp, memfd_hugetlb, sysv_hugetlb (tuned) create a mapping and
 * then fork(); private,
 * private_thp and fork are the baselines without sharing.  The workloads
 * see only region_fork() and region_destroy(), so every variant is timed
 * through the same calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>

#include <sfork.h>

#include "sforkbench.h"

/* ------------------------------------------------------------------ */
/* Regions                                                             */

/*
 * Map len bytes of fd shared; closes fd.  A negative fd (a failed open or
 * memfd_create) is passed through as NULL with its errno.
 */
static char *map_shared_fd(int fd, size_t len)
{
	void *p;

	if (fd < 0)
		return NULL;
	if (ftruncate(fd, (off_t)len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static size_t huge_round(size_t len)
{
	return (len + HUGETLB_SIZE - 1) / HUGETLB_SIZE * HUGETLB_SIZE;
}

/*
 * THP for shmem: the advice must come before the first touch, and the
 * mapping is 2 MiB aligned by shmem_get_unmapped_area() as long as
 * shmem_enabled allows huge pages at mmap() time (sforkbench -H).
 */
static char *advise_huge(char *p, size_t len)
{
	if (p && madvise(p, len, MADV_HUGEPAGE) < 0) {
		int e = errno;

		munmap(p, len);
		errno = e;
		return NULL;
	}
	return p;
}

/* A SysV segment of len bytes, attached; removed again if shmat() fails. */
static int sysv_attach(struct region *r, size_t len, int shmflg)
{
	void *p;
	int e;

	r->shmid = shmget(IPC_PRIVATE, len, IPC_CREAT | shmflg | 0600);
	if (r->shmid < 0)
		return -1;
	p = shmat(r->shmid, NULL, 0);
	if (p == (void *)-1) {
		e = errno;
		shmctl(r->shmid, IPC_RMID, NULL);
		errno = e;
		return -1;
	}
	r->addr = p;
	return 0;
}

/* Map the file fd, created at r->path; removed again (rm) if that fails. */
static int map_named(struct region *r, int fd, size_t len,
		     int (*rm)(const char *path))
{
	int e;

	if (fd < 0)
		return -1;
	r->addr = map_shared_fd(fd, len);
	if (r->addr)
		return 0;
	e = errno;
	rm(r->path);
	errno = e;
	return -1;
}

static char *map_memfd(size_t len, unsigned int mfd_flags)
{
	return map_shared_fd(memfd_create("sforkbench", MFD_CLOEXEC | mfd_flags), len);
}

/* Create the (non-sfork) region in the calling process. */
static int region_create(struct bench *b, struct region *r, enum variant var,
			 size_t len)
{
	int fd;
	void *p;

	memset(r, 0, sizeof(*r));
	r->var = var;
	r->len = len;
	r->shmid = -1;
	switch (var) {
	case VAR_FORK:
		return 0;
	case VAR_SHM_ANON:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		r->addr = p;
		return 0;
	case VAR_SYSV_SHM:
		return sysv_attach(r, len, 0);
	case VAR_POSIX_SHM:
		snprintf(r->path, sizeof(r->path), "/sforkbench.%d.%u",
			 (int)getpid(), b->seq++);
		fd = shm_open(r->path, O_RDWR | O_CREAT | O_EXCL, 0600);
		return map_named(r, fd, len, shm_unlink);
	case VAR_MEMFD:
		r->addr = map_memfd(len, 0);
		return r->addr ? 0 : -1;
	case VAR_SHM_ANON_THP:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		r->addr = advise_huge(p == MAP_FAILED ? NULL : p, len);
		return r->addr ? 0 : -1;
	case VAR_MEMFD_THP:
		r->addr = advise_huge(map_memfd(len, 0), len);
		return r->addr ? 0 : -1;
	case VAR_MEMFD_HUGETLB:
		/* whole huge pages: the mapping, and its munmap(), too */
		r->len = huge_round(len);
		r->addr = map_memfd(r->len, MFD_HUGETLB);
		return r->addr ? 0 : -1;
	case VAR_SYSV_HUGETLB:
		r->len = huge_round(len);
		return sysv_attach(r, r->len, SHM_HUGETLB);
	case VAR_FILE:
		snprintf(r->path, sizeof(r->path), "%s/sforkbench.%d.%u",
			 b->cfg.file_dir, (int)getpid(), b->seq++);
		fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		return map_named(r, fd, len, unlink);
	case VAR_PRIVATE:
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		madvise(p, len, MADV_NOHUGEPAGE);
		r->addr = p;
		return 0;
	case VAR_PRIVATE_THP: {
		size_t huge = 2UL << 20, off;

		r->maplen = len + huge;
		p = mmap(NULL, r->maplen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return -1;
		r->map = p;
		off = (huge - ((uintptr_t)p & (huge - 1))) & (huge - 1);
		r->addr = (char *)p + off;
		madvise(r->addr, len, MADV_HUGEPAGE);
		return 0;
	}
	default:
		errno = EINVAL;
		return -1;
	}
}

/*
 * Create the region and fork.  Returns the child's pid in the parent, 0
 * in the child, -1 with errno on failure (nothing left behind).
 */
pid_t region_fork(struct bench *b, struct region *r, enum variant var,
		  size_t len, unsigned int dir)
{
	pid_t pid;
	int e;

	if (is_sfork(var)) {
		unsigned int fl = dir;
		void *a = NULL;

		memset(r, 0, sizeof(*r));
		r->var = var;
		r->len = len;
		r->shmid = -1;
		if (var == VAR_SFORK_LAZY || var == VAR_SFORK_LAZY_HUGE)
			fl |= SFORK_LAZY;
		else if (var == VAR_SFORK_EAGER)
			fl |= SFORK_EAGER;
		pid = sfork(len, fl, &a);
		if (pid >= 0)
			r->addr = a;
		return pid;
	}
	if (region_create(b, r, var, len) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		bool sysv = r->var == VAR_SYSV_SHM || r->var == VAR_SYSV_HUGETLB;

		e = errno;
		/* Caller destroys nothing on failure. */
		if (r->addr && !sysv && r->var != VAR_PRIVATE_THP)
			munmap(r->addr, r->len);
		if (r->var == VAR_PRIVATE_THP)
			munmap(r->map, r->maplen);
		if (sysv) {
			shmdt(r->addr);
			shmctl(r->shmid, IPC_RMID, NULL);
		}
		if (r->var == VAR_POSIX_SHM)
			shm_unlink(r->path);
		if (r->var == VAR_FILE)
			unlink(r->path);
		errno = e;
	}
	return pid;
}

int region_destroy(struct region *r)
{
	int ret = 0;

	switch (r->var) {
	case VAR_FORK:
		break;
	case VAR_SYSV_SHM:
	case VAR_SYSV_HUGETLB:
		ret |= shmdt(r->addr);
		ret |= shmctl(r->shmid, IPC_RMID, NULL);
		break;
	case VAR_PRIVATE_THP:
		ret |= munmap(r->map, r->maplen);
		break;
	default:
		ret |= munmap(r->addr, r->len);
		if (r->var == VAR_POSIX_SHM)
			ret |= shm_unlink(r->path);
		else if (r->var == VAR_FILE)
			ret |= unlink(r->path);
	}
	r->addr = NULL;
	return ret;
}

