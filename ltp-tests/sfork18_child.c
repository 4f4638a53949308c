// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*
 * The program sfork18's child execs.  Not a test by itself.
 *
 * usage: sfork18_child ROLE FD CLOEXEC_FD PIPE_FD
 *   ROLE reader: map the region behind FD (read-only side), read what the
 *                parent publishes (two rounds), and try every way back to
 *                write access;
 *   ROLE writer: map it read-write and publish two rounds for the parent.
 *
 * It cannot use the LTP library (it is a fresh program image): it prints
 * one line per check and exits with a bitmask of the checks that failed
 * (see enum below), which sfork18 turns into TPASS/TFAIL lines.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sfork.h>

#include "sfork18.h"

static sigjmp_buf jb;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	fault_code = si->si_code;
	siglongjmp(jb, 1);
}

static int check(int ok, int bit, const char *what)
{
	int err = errno;

	if (ok)
		printf("sfork18_child: ok: %s\n", what);
	else
		printf("sfork18_child: FAILED: %s (errno %s)\n", what, strerror(err));
	fflush(stdout);
	return ok ? 0 : bit;
}

static int futex_wait_for(volatile uint32_t *word, uint32_t want)
{
	struct timespec ts = { .tv_sec = 1 };
	int tries = WAIT_SECONDS;
	uint32_t v;

	while ((v = __atomic_load_n(word, __ATOMIC_ACQUIRE)) < want && tries--)
		syscall(SYS_futex, word, FUTEX_WAIT, v, &ts, NULL, 0);
	return v >= want;
}

static int verify(const struct s18_hdr *h, size_t len, uint32_t round)
{
	const unsigned char *data = (const unsigned char *)(h + 1);
	size_t i, n = len - sizeof(*h);

	for (i = 0; i < n; i++)
		if (data[i] != s18_byte(i, round))
			return 0;
	return 1;
}

static int try_store(volatile char *p)
{
	struct sigaction sa = { .sa_sigaction = on_segv, .sa_flags = SA_SIGINFO };

	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(jb, 1) == 0) {
		*p = 1;
		return 0;
	}
	return fault_code;
}

/* A process that got @fd over a socket: map it writable? readable? */
static int passed_fd_checks(int fd, size_t len)
{
	int sv[2], status, bits = 0;
	char cbuf[CMSG_SPACE(sizeof(int))], byte = 'x';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return S18_OTHER_FD;
	pid = fork();
	if (pid == 0) {
		char b;
		int got;
		void *p;

		close(sv[0]);
		memset(cbuf, 0, sizeof(cbuf));
		if (recvmsg(sv[1], &msg, 0) != 1 || !(c = CMSG_FIRSTHDR(&msg)))
			_exit(1);
		memcpy(&got, CMSG_DATA(c), sizeof(got));
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, got, 0);
		if (p != MAP_FAILED || errno != EACCES)
			_exit(2);
		p = sfork_region_map(got, NULL);
		if (!p)
			_exit(3);
		if (try_store(p) != SEGV_ACCERR)
			_exit(4);
		b = *(volatile char *)p;
		(void)b;
		_exit(0);
	}
	close(sv[1]);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	if (sendmsg(sv[0], &msg, 0) != 1)
		bits |= S18_OTHER_FD;
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		printf("sfork18_child: the receiver ended with status %#x\n", status);
		bits |= S18_OTHER_FD;
	}
	close(sv[0]);
	return bits;
}

static int reader(int fd, int pipe_fd)
{
	char path[64], perms[8] = "";
	int bits = 0, fd2, code;
	struct s18_hdr *h;
	size_t len;
	void *p;

	h = sfork_region_map(fd, &len);
	if (!h)
		return check(0, S18_MAP, "map the inherited descriptor");
	bits |= check(futex_wait_for(&h->round, 1) && verify(h, len, 1),
		      S18_READ, "round 1 as the parent published it");

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	bits |= check(p == MAP_FAILED && errno == EACCES, S18_MMAP_RW,
		      "mmap(PROT_WRITE) of the descriptor fails with EACCES");
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	bits |= check(p == MAP_FAILED, S18_MMAP_RW,
		      "a private (copy-on-write) mapping is refused");
	bits |= check(mprotect(h, len, PROT_READ | PROT_WRITE) && errno == EACCES,
		      S18_MPROTECT, "mprotect(PROT_WRITE) fails with EACCES");
	code = try_store((volatile char *)h + len - 1);
	bits |= check(code == SEGV_ACCERR, S18_STORE, "a store faults with SEGV_ACCERR");

	fd2 = open("/proc/self/mem", O_RDWR);
	bits |= check(fd2 >= 0 && pwrite(fd2, "x", 1, (off_t)(uintptr_t)h) != 1,
		      S18_PROCMEM, "a write through /proc/self/mem fails");
	if (fd2 >= 0)
		close(fd2);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDWR);
	p = fd2 < 0 ? MAP_FAILED :
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	bits |= check(p == MAP_FAILED, S18_OTHER_FD,
		      "reopened through /proc/self/fd it cannot be mapped writable");
	if (fd2 >= 0)
		close(fd2);

	fd2 = sfork_region_fd(h, O_CLOEXEC);
	p = fd2 < 0 ? MAP_FAILED :
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	bits |= check(fd2 >= 0 && p == MAP_FAILED && errno == EACCES, S18_OTHER_FD,
		      "a descriptor exported again from the read-only side is read-only");
	if (fd2 >= 0)
		close(fd2);

	bits |= passed_fd_checks(fd, len) ?
		check(0, S18_OTHER_FD, "passed over a socket it stays read-only") :
		check(1, 0, "passed over a socket it stays read-only");

	if (sfork18_maps_perms(h, perms))
		perms[0] = 0;
	bits |= check(!strcmp(perms, "r--s"), S18_MAP, "the mapping is r--s");

	/* Ask for round 2, then see it. */
	if (write(pipe_fd, "R", 1) != 1)
		bits |= S18_READ;
	bits |= check(futex_wait_for(&h->round, 2) && verify(h, len, 2),
		      S18_READ, "round 2 as the parent published it");
	return bits;
}

static int writer(int fd, int pipe_fd)
{
	struct s18_hdr *h;
	size_t len;
	char c;
	int bits = 0;

	h = sfork_region_map(fd, &len);
	if (!h)
		return check(0, S18_MAP, "map the inherited descriptor read-write");
	bits |= check(try_store((volatile char *)h + len - 1) == 0, S18_STORE,
		      "the writer's descriptor maps writable");
	s18_publish(h, len, 1);
	if (read(pipe_fd, &c, 1) != 1)
		bits |= S18_READ;
	s18_publish(h, len, 2);
	return bits;
}

int main(int argc, char **argv)
{
	int fd, cloexec_fd, pipe_fd, bits;

	if (argc != 5) {
		fprintf(stderr, "usage: %s reader|writer FD CLOEXEC_FD PIPE_FD\n", argv[0]);
		return S18_USAGE;
	}
	fd = atoi(argv[2]);
	cloexec_fd = atoi(argv[3]);
	pipe_fd = atoi(argv[4]);

	bits = check(fcntl(cloexec_fd, F_GETFD) == -1 && errno == EBADF, S18_CLOEXEC,
		     "the O_CLOEXEC descriptor was closed by execve");
	bits |= check(fcntl(fd, F_GETFD) == 0, S18_MAP,
		      "the plain descriptor survived execve");
	bits |= strcmp(argv[1], "writer") ? reader(fd, pipe_fd) : writer(fd, pipe_fd);
	return bits;
}
