// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Verify that the ioctls of /dev/sfork that fail after their arguments
 * were accepted leave nothing behind: no region, no page, no mapping and
 * no file descriptor.
 *
 * sfork04 checks the contract's errors through sfork(); these are the
 * device's own late failures, reached with the raw ioctls of the uapi
 * header.  With allocation -a (default: lazy, then eager):
 *
 * [Algorithm]
 *
 * - a second SFORK_IOC_CREATE on the same /dev/sfork descriptor fails
 *   with EBUSY and the first region is untouched
 * - SFORK_IOC_CREATE whose argument is in a read-only page (its result
 *   cannot be written back) fails with EFAULT
 * - SFORK_IOC_CREATE with no address space left (RLIMIT_AS) fails with
 *   ENOMEM
 * - after each failed CREATE: no new mapping, and regions_live and
 *   pages_live are back within 2 s
 * - SFORK_IOC_EXPORT of a forked region with no free descriptor
 *   (RLIMIT_NOFILE) fails with EMFILE, and with its argument in a
 *   read-only page with EFAULT, leaving no descriptor open
 * - SFORK_IOC_INFO into a read-only page fails with EFAULT; an unknown
 *   ioctl fails with ENOTTY on /dev/sfork and on an exported descriptor
 *
 * A module that installs the descriptor before it can report it, keeps
 * the region of a failed CREATE or leaves its mapping behind fails here.
 */

#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define REGION_PAGES	2

static unsigned int allocs[2];
static unsigned int nallocs;
static void *ro_page;
static int dev_fd = -1;

/* A page holding a copy of @arg, then made read-only. */
static void *readonly_copy(const void *arg, size_t len)
{
	SAFE_MPROTECT(ro_page, sfork_page, PROT_READ | PROT_WRITE);
	memcpy(ro_page, arg, len);
	SAFE_MPROTECT(ro_page, sfork_page, PROT_READ);
	return ro_page;
}

static void create_req(struct sfork_create *req, unsigned int alloc,
		       void **where)
{
	memset(req, 0, sizeof(*req));
	req->len = REGION_PAGES * sfork_page;
	req->flags = SFORK_PARENT_TO_CHILD | alloc;
	req->addr_ptr = (uintptr_t)where;
}

/* A CREATE expected to fail, and what the process had before it. */
struct failing_create {
	int fd;
	void *where;
	struct sfork_create req;
	struct sfork_counters before;
	int maps;
};

static void failing_create_begin(struct failing_create *fc, unsigned int alloc)
{
	fc->fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR);
	create_req(&fc->req, alloc, &fc->where);
	sfork_counters_save(&fc->before);
	fc->maps = sfork_count_maps();
}

/* No mapping more than before, and the counters back within 2 s. */
static void failing_create_end(struct failing_create *fc, const char *what)
{
	int now = sfork_count_maps();

	if (now == fc->maps)
		tst_res(TPASS, "%s: no mapping left", what);
	else
		tst_res(TFAIL, "%s: %d mappings, %d before", what, now, fc->maps);
	sfork_check_settled(&fc->before, what);
	SAFE_CLOSE(fc->fd);
}

static void create_twice(unsigned int alloc)
{
	struct sfork_create req, again;
	struct sfork_counters c;
	void *where = NULL;
	int fd;

	sfork_counters_save(&c);
	fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR);
	create_req(&req, alloc, &where);
	SAFE_IOCTL(fd, SFORK_IOC_CREATE, &req);
	create_req(&again, alloc, &where);
	TST_EXP_FAIL(ioctl(fd, SFORK_IOC_CREATE, &again), EBUSY,
		     "%s: a second CREATE on one descriptor", sfork_alloc_name(alloc));
	sfork_check_alive(&c, "after the refused CREATE");
	TST_EXP_EQ_LU((uintptr_t)where, req.addr);
	SAFE_MUNMAP((void *)(uintptr_t)req.addr, req.size);
	SAFE_CLOSE(fd);
	sfork_check_settled(&c, "first region unmapped");
}

static void create_result_unwritable(unsigned int alloc)
{
	struct failing_create fc;

	failing_create_begin(&fc, alloc);
	TST_EXP_FAIL(ioctl(fc.fd, SFORK_IOC_CREATE, readonly_copy(&fc.req, sizeof(fc.req))),
		     EFAULT, "%s: CREATE with its argument in a read-only page",
		     sfork_alloc_name(alloc));
	failing_create_end(&fc, "CREATE's result not written");
}

static void create_no_address_space(unsigned int alloc)
{
	struct failing_create fc;
	struct rlimit old, tight;

	failing_create_begin(&fc, alloc);
	SAFE_GETRLIMIT(RLIMIT_AS, &old);
	/* Any new mapping now exceeds the limit; the soft limit goes back up. */
	tight = old;
	tight.rlim_cur = 0;
	SAFE_SETRLIMIT(RLIMIT_AS, &tight);
	TEST(ioctl(fc.fd, SFORK_IOC_CREATE, &fc.req));
	SAFE_SETRLIMIT(RLIMIT_AS, &old);
	if (TST_RET == -1 && TST_ERR == ENOMEM)
		tst_res(TPASS, "%s: CREATE with RLIMIT_AS exhausted fails with ENOMEM",
			sfork_alloc_name(alloc));
	else
		tst_res(TFAIL | TTERRNO, "%s: CREATE with RLIMIT_AS exhausted returned %ld",
			sfork_alloc_name(alloc), TST_RET);
	failing_create_end(&fc, "CREATE found no address space");
}

/* The lowest descriptor number free now (SAFE_CLOSE() would reset fd). */
static int lowest_free_fd(void)
{
	int fd = SAFE_FCNTL(dev_fd, F_DUPFD, 0);

	if (close(fd))
		tst_brk(TBROK | TERRNO, "close(%d)", fd);
	return fd;
}

static void export_refused(void *addr)
{
	struct sfork_export exp = { .addr = (uintptr_t)addr };
	struct rlimit old, tight;
	int fds = sfork_count_fds();

	SAFE_GETRLIMIT(RLIMIT_NOFILE, &old);
	tight = old;
	tight.rlim_cur = lowest_free_fd();
	SAFE_SETRLIMIT(RLIMIT_NOFILE, &tight);
	TEST(ioctl(dev_fd, SFORK_IOC_EXPORT, &exp));
	SAFE_SETRLIMIT(RLIMIT_NOFILE, &old);
	if (TST_RET == -1 && TST_ERR == EMFILE)
		tst_res(TPASS, "EXPORT with no free descriptor fails with EMFILE");
	else
		tst_res(TFAIL | TTERRNO, "EXPORT with no free descriptor returned %ld",
			TST_RET);

	TST_EXP_FAIL(ioctl(dev_fd, SFORK_IOC_EXPORT,
			   readonly_copy(&exp, sizeof(exp))),
		     EFAULT, "EXPORT with its argument in a read-only page");
	TST_EXP_EQ_LI(sfork_count_fds(), fds);
}

static void info_refused(void *addr)
{
	struct sfork_export exp = { .addr = (uintptr_t)addr };
	struct sfork_info info = { 0 };

	SAFE_IOCTL(dev_fd, SFORK_IOC_EXPORT, &exp);
	TST_EXP_FAIL(ioctl(exp.fd, SFORK_IOC_INFO, readonly_copy(&info, sizeof(info))),
		     EFAULT, "INFO into a read-only page");
	TST_EXP_FAIL(ioctl(exp.fd, SFORK_IOC_EXPORT, &exp), ENOTTY,
		     "EXPORT on an exported descriptor");
	TST_EXP_FAIL(ioctl(dev_fd, SFORK_IOC_INFO, &info), ENOTTY,
		     "INFO on /dev/sfork");
	SAFE_CLOSE(exp.fd);
}

static void exports(void)
{
	struct sfork_counters c;
	void *addr;
	pid_t pid;
	int status;

	sfork_counters_save(&c);
	pid = SAFE_SFORK(REGION_PAGES * sfork_page, SFORK_PARENT_TO_CHILD, &addr);
	if (!pid)
		_exit(0);
	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	export_refused(addr);
	info_refused(addr);
	SAFE_MUNMAP(addr, REGION_PAGES * sfork_page);
	sfork_check_settled(&c, "region unmapped after the refused exports");
}

static void run(void)
{
	unsigned int i;

	for (i = 0; i < nallocs; i++) {
		create_twice(allocs[i]);
		create_result_unwritable(allocs[i]);
		create_no_address_space(allocs[i]);
	}
	exports();
}

static void setup(void)
{
	sfork_test_setup();
	nallocs = 0;
	if (sfork_flags & SFORK_ALLOC_MASK) {
		allocs[nallocs++] = sfork_flags & SFORK_ALLOC_MASK;
	} else {
		allocs[nallocs++] = SFORK_LAZY;
		allocs[nallocs++] = SFORK_EAGER;
	}
	ro_page = SAFE_MMAP(NULL, sfork_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dev_fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR);
}

static void cleanup(void)
{
	if (dev_fd >= 0)
		SAFE_CLOSE(dev_fd);
	if (ro_page)
		SAFE_MUNMAP(ro_page, sfork_page);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"a:", &sfork_str_alloc, "Allocation lazy|eager (default both)"},
		{}
	},
	.setup = setup,
	.cleanup = cleanup,
	.test_all = run,
	.forks_child = 1,
	.timeout = 120,
};
