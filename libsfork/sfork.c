// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libsfork: sfork(3) on top of /dev/sfork.
 *
 * The module validates the arguments, creates the region, maps it into the
 * caller with the caller's permission and arms it for this thread's next
 * fork.  The library only opens and closes the device around that and forks;
 * on every failure it undoes what was done, so nothing is left behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sfork.h"

static int sfork_open_device(void)
{
	int fd = open(SFORK_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENODEV || errno == ENXIO))
		errno = ENOSYS;
	return fd;
}

pid_t sfork(size_t len, unsigned int flags, void **addr)
{
	struct sfork_create req = {
		.len = len,
		.flags = flags,
		.addr_ptr = (uintptr_t)addr,
	};
	sigset_t all, old;
	int fd, ret, err;
	pid_t pid;

	fd = sfork_open_device();
	if (fd < 0)
		return -1;

	/*
	 * From the ioctl to the fork the region is armed for this thread's
	 * next fork: a signal handler that forked in between would give its
	 * child the child's side.  Keep handlers out of that window.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);

	ret = ioctl(fd, SFORK_IOC_CREATE, &req);
	err = errno;
	/* The mapping, not the descriptor, keeps the region alive. */
	close(fd);
	if (ret) {
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		errno = err;
		return -1;
	}

	pid = fork();
	err = errno;
	if (pid < 0)
		munmap((void *)(uintptr_t)req.addr, req.size);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return pid;
}

int sfork_region_fd(const void *addr, int flags)
{
	struct sfork_export req = {
		.addr = (uintptr_t)addr,
		.fd_flags = flags,
	};
	int fd, ret, err;

	fd = sfork_open_device();
	if (fd < 0)
		return -1;
	ret = ioctl(fd, SFORK_IOC_EXPORT, &req);
	err = errno;
	close(fd);
	errno = err;
	return ret ? -1 : req.fd;
}

void *sfork_region_map(int fd, size_t *len)
{
	struct sfork_info info;
	void *addr;

	if (ioctl(fd, SFORK_IOC_INFO, &info)) {
		if (errno == ENOTTY)
			errno = EINVAL;
		return NULL;
	}
	addr = mmap(NULL, info.size, PROT_READ | (info.writable ? PROT_WRITE : 0),
		    MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED)
		return NULL;
	if (len)
		*len = info.size;
	return addr;
}
