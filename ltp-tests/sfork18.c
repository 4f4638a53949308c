// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * A region outlives execve() through its descriptor, and the
 * direction goes with it.
 *
 * Adapts LTP's execve tests (execve01: a child execs a helper program that
 * reports back) and mem/shmt/shmt04 (data published by one process read by
 * another) to sfork_region_fd()/sfork_region_map().  For each direction:
 *
 *  - the sfork child exports its side as two descriptors, one plain and one
 *    O_CLOEXEC, and execs sfork18_child, which checks that the O_CLOEXEC one
 *    is gone and the plain one survived;
 *  - p2c: the exec'd reader maps the region from the descriptor and reads
 *    two rounds the parent publishes (futex wake-ups); it then tries every
 *    way back to write access: mmap(PROT_WRITE) and MAP_PRIVATE of the
 *    descriptor, mprotect, a store (SEGV_ACCERR), /proc/self/mem, reopening
 *    /proc/self/fd/N, exporting the read-only mapping again, and passing the
 *    descriptor over a socket to another process that maps it;
 *  - c2p and bi: the exec'd writer maps the region writable and publishes
 *    two rounds the parent reads;
 *  - the exported descriptors are refused before the region's fork (EBUSY,
 *    through the raw ioctls), for addresses outside a region (EINVAL), and
 *    sfork_region_map() refuses a descriptor that is not a region's.
 *
 * The exec'd program reports each check in a bit of its exit status.
 */

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"
#include "sfork18.h"

static const struct {
	int bit;
	const char *what;
} checks[] = {
	{ S18_MAP, "the exec'd program maps the region from its descriptor" },
	{ S18_READ, "data published across execve arrives" },
	{ S18_MMAP_RW, "a read-only descriptor cannot be mapped writable or private" },
	{ S18_MPROTECT, "mprotect(PROT_WRITE) after execve fails with EACCES" },
	{ S18_STORE, "stores fault on the read-only side, work on the writer" },
	{ S18_PROCMEM, "/proc/self/mem cannot write the read-only side" },
	{ S18_OTHER_FD, "reopened, exported again or passed over a socket, the side stays" },
	{ S18_CLOEXEC, "an O_CLOEXEC descriptor is closed by execve" },
};

static int wait_round(struct s18_hdr *h, size_t len, uint32_t round)
{
	const unsigned char *data = (const unsigned char *)(h + 1);
	struct timespec ts = { .tv_sec = 1 };
	int tries = WAIT_SECONDS;
	uint32_t v;
	size_t i;

	while ((v = __atomic_load_n(&h->round, __ATOMIC_ACQUIRE)) < round && tries--)
		syscall(SYS_futex, &h->round, FUTEX_WAIT, v, &ts, NULL, 0);
	if (v < round)
		return 0;
	for (i = 0; i < len - sizeof(*h); i++)
		if (data[i] != s18_byte(i, round))
			return 0;
	return 1;
}

static void child(void *addr, int sock, int reader)
{
	char a[16], b[16], c[16];
	int fd = sfork_region_fd(addr, 0);
	int cfd = sfork_region_fd(addr, O_CLOEXEC);

	if (fd < 0 || cfd < 0) {
		tst_res(TFAIL | TERRNO, "sfork_region_fd() in the sfork child");
		exit(S18_USAGE);
	}
	snprintf(a, sizeof(a), "%d", fd);
	snprintf(b, sizeof(b), "%d", cfd);
	snprintf(c, sizeof(c), "%d", sock);
	execlp("sfork18_child", "sfork18_child", reader ? "reader" : "writer",
	       a, b, c, (char *)NULL);
	tst_res(TFAIL | TERRNO, "execlp(sfork18_child)");
	exit(S18_USAGE);
}

static void report(pid_t pid, const char *dir)
{
	int status, i;

	SAFE_WAITPID(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) == S18_USAGE) {
		tst_res(TFAIL, "%s: the exec'd child %s", dir, tst_strstatus(status));
		return;
	}
	for (i = 0; i < (int)ARRAY_SIZE(checks); i++) {
		if (WEXITSTATUS(status) & checks[i].bit)
			tst_res(TFAIL, "%s: %s", dir, checks[i].what);
		else
			tst_res(TPASS, "%s: %s", dir, checks[i].what);
	}
}

static void run_dir(unsigned int dir)
{
	unsigned int flags = dir | (sfork_flags & SFORK_ALLOC_MASK);
	int reader_child = sfork_reader_is_child(flags);
	size_t len = sfork_region_size;
	struct pollfd pfd;
	int sv[2];
	void *addr;
	pid_t pid;
	char c;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		tst_brk(TBROK | TERRNO, "socketpair()");
	pid = SAFE_SFORK(len, flags, &addr);
	if (!pid) {
		close(sv[0]);
		child(addr, sv[1], reader_child);
	}
	SAFE_CLOSE(sv[1]);

	if (reader_child) {
		s18_publish(addr, len, 1);
		pfd.fd = sv[0];
		pfd.events = POLLIN;
		if (poll(&pfd, 1, WAIT_SECONDS * 1000) == 1 && read(sv[0], &c, 1) == 1)
			s18_publish(addr, len, 2);
		else
			tst_res(TFAIL, "%s: the exec'd reader never asked for round 2",
				sfork_dir_name(flags));
	} else {
		if (wait_round(addr, len, 1))
			tst_res(TPASS, "%s: the parent reads round 1 of the exec'd writer",
				sfork_dir_name(flags));
		else
			tst_res(TFAIL, "%s: round 1 from the exec'd writer", sfork_dir_name(flags));
		SAFE_WRITE(SAFE_WRITE_ALL, sv[0], "R", 1);
		if (wait_round(addr, len, 2))
			tst_res(TPASS, "%s: the parent reads round 2 of the exec'd writer",
				sfork_dir_name(flags));
		else
			tst_res(TFAIL, "%s: round 2 from the exec'd writer", sfork_dir_name(flags));
	}
	report(pid, sfork_dir_name(flags));
	SAFE_CLOSE(sv[0]);
	SAFE_MUNMAP(addr, len);
}

static void refusals(void)
{
	struct sfork_create req = { .len = sfork_page, .flags = SFORK_BIDIRECTIONAL };
	struct sfork_export exp = { 0 };
	void *where = NULL;
	int fd, pipefd[2];

	TST_EXP_FAIL(sfork_region_fd(&where, 0), EINVAL,
		     "sfork_region_fd() of an address outside any region");

	SAFE_PIPE(pipefd);
	TST_EXP_FAIL_PTR_NULL(sfork_region_map(pipefd[0], NULL), EINVAL,
			      "sfork_region_map() of a pipe");
	SAFE_CLOSE(pipefd[0]);
	SAFE_CLOSE(pipefd[1]);

	fd = SAFE_OPEN(SFORK_DEVICE, O_RDWR);
	req.addr_ptr = (uintptr_t)&where;
	TST_EXP_PASS_SILENT(ioctl(fd, SFORK_IOC_CREATE, &req));
	if (TST_PASS) {
		exp.addr = req.addr;
		TST_EXP_FAIL(ioctl(fd, SFORK_IOC_EXPORT, &exp), EBUSY,
			     "SFORK_IOC_EXPORT before the region's fork");
		SAFE_MUNMAP((void *)(uintptr_t)req.addr, req.size);
	}
	SAFE_CLOSE(fd);
}

static void run(void)
{
	static const unsigned int dirs[] = { SFORK_PARENT_TO_CHILD,
		SFORK_CHILD_TO_PARENT, SFORK_BIDIRECTIONAL };
	unsigned int i;

	refusals();
	for (i = 0; i < ARRAY_SIZE(dirs); i++)
		run_dir(dirs[i]);
}

static void setup(void)
{
	sfork_test_setup();
	if (sfork_region_size < 2 * sfork_page)
		sfork_region_size = 2 * sfork_page;
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.test_all = run,
	.forks_child = 1,
	.timeout = 240,
};
