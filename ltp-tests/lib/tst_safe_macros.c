// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The functions behind SAFE_*() and SAFE_PTHREAD_*(): do the call, and on
 * failure tst_brk(TBROK | TERRNO) at the caller's file:line.  Written for
 * sfork from LTP's documented API (include/tst_safe_macros.h,
 * include/tst_safe_pthread.h); no LTP code is used.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"
#include "tst_safe_pthread.h"

/* A non-zero return that is not -1 is reported as invalid, as LTP does. */
#define CHECK_RET(ret, fmt, ...) \
	do { \
		if ((ret) == -1) \
			tst_brk_(file, lineno, TBROK | TERRNO, \
				 fmt " failed", ##__VA_ARGS__); \
		else if (ret) \
			tst_brk_(file, lineno, TBROK | TERRNO, \
				 "Invalid " fmt " return value %ld", \
				 ##__VA_ARGS__, (long)(ret)); \
	} while (0)

pid_t safe_waitpid(const char *file, const int lineno, pid_t pid,
		   int *status, int opts)
{
	pid_t ret = waitpid(pid, status, opts);

	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "waitpid(%d,%p,%d) failed", pid, (void *)status, opts);
	return ret;
}

pid_t safe_wait(const char *file, const int lineno, int *status)
{
	pid_t ret = wait(status);

	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO, "wait(%p) failed",
			 (void *)status);
	return ret;
}

void *safe_mmap(const char *file, const int lineno, void *addr, size_t length,
		int prot, int flags, int fd, off_t offset)
{
	void *ret = mmap(addr, length, prot, flags, fd, offset);

	if (ret == MAP_FAILED)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "mmap(%p,%zu,%d,%d,%d,%ld) failed", addr, length, prot,
			 flags, fd, (long)offset);
	return ret;
}

int safe_munmap(const char *file, const int lineno, void *addr, size_t length)
{
	int ret = munmap(addr, length);

	CHECK_RET(ret, "munmap(%p,%zu)", addr, length);
	return ret;
}

int safe_mprotect(const char *file, const int lineno, void *addr,
		  size_t len, int prot)
{
	int ret = mprotect(addr, len, prot);

	CHECK_RET(ret, "mprotect(%p, %zu, 0x%x)", addr, len, prot);
	return ret;
}

int safe_msync(const char *file, const int lineno, void *addr,
	       size_t length, int flags)
{
	int ret = msync(addr, length, flags);

	CHECK_RET(ret, "msync(%p, %zu, %d)", addr, length, flags);
	return ret;
}

int safe_open(const char *file, const int lineno, const char *pathname,
	      int oflags, ...)
{
	mode_t mode = 0;
	va_list va;
	int fd;

	if (oflags & (O_CREAT | O_TMPFILE)) {
		va_start(va, oflags);
		mode = (mode_t)va_arg(va, int);
		va_end(va);
	}

	fd = open(pathname, oflags, mode);
	if (fd < 0)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "open(%s,%d,%04o) failed", pathname, oflags, mode);
	return fd;
}

int safe_close(const char *file, const int lineno, int fd)
{
	int ret = close(fd);

	CHECK_RET(ret, "close(%d)", fd);
	return ret;
}

ssize_t safe_read(const char *file, const int lineno, char len_strict,
		  int fd, void *buf, size_t nbyte)
{
	ssize_t ret = read(fd, buf, nbyte);

	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "read(%d,%p,%zu) failed, returned %zd", fd, buf,
			 nbyte, ret);
	else if (len_strict && (size_t)ret != nbyte)
		tst_brk_(file, lineno, TBROK,
			 "short read(%d,%p,%zu) returned only %zd", fd, buf,
			 nbyte, ret);
	return ret;
}

ssize_t safe_write(const char *file, const int lineno,
		   enum safe_write_opts len_strict, int fd, const void *buf,
		   size_t nbyte)
{
	const char *p = buf;
	size_t left = nbyte;
	ssize_t ret;

	for (;;) {
		ret = write(fd, p, left);
		if (ret == -1) {
			tst_brk_(file, lineno, TBROK | TERRNO,
				 "write(%d,%p,%zu) failed", fd, buf, nbyte);
			return ret;
		}
		if (len_strict == SAFE_WRITE_ANY)
			return ret;
		if (len_strict == SAFE_WRITE_ALL) {
			if ((size_t)ret != nbyte)
				tst_brk_(file, lineno, TBROK,
					 "short write(%d,%p,%zu) return value %zd",
					 fd, buf, nbyte, ret);
			return ret;
		}
		/* SAFE_WRITE_RETRY */
		p += ret;
		left -= (size_t)ret;
		if (!left)
			return (ssize_t)nbyte;
		if (!ret) {
			tst_brk_(file, lineno, TBROK,
				 "write(%d,%p,%zu) made no progress", fd, buf,
				 nbyte);
			return ret;
		}
	}
}

int safe_pipe(const char *file, const int lineno, int fildes[2])
{
	int ret = pipe(fildes);

	CHECK_RET(ret, "pipe({%d,%d})", fildes[0], fildes[1]);
	return ret;
}

int safe_dup(const char *file, const int lineno, int oldfd)
{
	int ret = dup(oldfd);

	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO, "dup(%i) failed", oldfd);
	return ret;
}

int safe_dup2(const char *file, const int lineno, int oldfd, int newfd)
{
	int ret = dup2(oldfd, newfd);

	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO, "dup2(%i, %i) failed",
			 oldfd, newfd);
	return ret;
}

off_t safe_lseek(const char *file, const int lineno, int fd, off_t offset,
		 int whence)
{
	off_t ret = lseek(fd, offset, whence);

	if (ret == (off_t)-1)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "lseek(%d,%ld,%d) failed", fd, (long)offset, whence);
	return ret;
}

int safe_ftruncate(const char *file, const int lineno, int fd, off_t length)
{
	int ret = ftruncate(fd, length);

	CHECK_RET(ret, "ftruncate(%d,%ld)", fd, (long)length);
	return ret;
}

int safe_stat(const char *file, const int lineno, const char *path,
	      struct stat *buf)
{
	int ret = stat(path, buf);

	CHECK_RET(ret, "stat(%s,%p)", path, (void *)buf);
	return ret;
}

int safe_fstat(const char *file, const int lineno, int fd, struct stat *buf)
{
	int ret = fstat(fd, buf);

	CHECK_RET(ret, "fstat(%d,%p)", fd, (void *)buf);
	return ret;
}

int safe_kill(const char *file, const int lineno, pid_t pid, int sig)
{
	int ret = kill(pid, sig);

	CHECK_RET(ret, "kill(%d,%s)", pid, tst_strsig(sig));
	return ret;
}

int safe_setuid(const char *file, const int lineno, uid_t uid)
{
	int ret = setuid(uid);

	CHECK_RET(ret, "setuid(%u)", uid);
	return ret;
}

int safe_setgid(const char *file, const int lineno, gid_t gid)
{
	int ret = setgid(gid);

	CHECK_RET(ret, "setgid(%u)", gid);
	return ret;
}

int safe_seteuid(const char *file, const int lineno, uid_t euid)
{
	int ret = seteuid(euid);

	CHECK_RET(ret, "seteuid(%u)", euid);
	return ret;
}

int safe_setegid(const char *file, const int lineno, gid_t egid)
{
	int ret = setegid(egid);

	CHECK_RET(ret, "setegid(%u)", egid);
	return ret;
}

int safe_setpgid(const char *file, const int lineno, pid_t pid, pid_t pgid)
{
	int ret = setpgid(pid, pgid);

	CHECK_RET(ret, "setpgid(%i, %i)", pid, pgid);
	return ret;
}

void *safe_malloc(const char *file, const int lineno, size_t size)
{
	void *ret = malloc(size);

	if (!ret)
		tst_brk_(file, lineno, TBROK | TERRNO, "malloc(%zu) failed",
			 size);
	return ret;
}

void *safe_calloc(const char *file, const int lineno, size_t nmemb,
		  size_t size)
{
	void *ret = calloc(nmemb, size);

	if (!ret)
		tst_brk_(file, lineno, TBROK | TERRNO, "calloc(%zu, %zu) failed",
			 nmemb, size);
	return ret;
}

void *safe_realloc(const char *file, const int lineno, void *ptr,
		   size_t size)
{
	void *ret = realloc(ptr, size);

	if (!ret)
		tst_brk_(file, lineno, TBROK | TERRNO, "realloc(%p, %zu) failed",
			 ptr, size);
	return ret;
}

int safe_mkdir(const char *file, const int lineno, const char *pathname,
	       mode_t mode)
{
	int ret = mkdir(pathname, mode);

	CHECK_RET(ret, "mkdir(%s, %04o)", pathname, mode);
	return ret;
}

int safe_rmdir(const char *file, const int lineno, const char *pathname)
{
	int ret = rmdir(pathname);

	CHECK_RET(ret, "rmdir(%s)", pathname);
	return ret;
}

int safe_unlink(const char *file, const int lineno, const char *pathname)
{
	int ret = unlink(pathname);

	CHECK_RET(ret, "unlink(%s)", pathname);
	return ret;
}

int safe_chdir(const char *file, const int lineno, const char *path)
{
	int ret = chdir(path);

	CHECK_RET(ret, "chdir(%s)", path);
	return ret;
}

int safe_chmod(const char *file, const int lineno, const char *path,
	       mode_t mode)
{
	int ret = chmod(path, mode);

	CHECK_RET(ret, "chmod(%s,%04o)", path, mode);
	return ret;
}

DIR *safe_opendir(const char *file, const int lineno, const char *name)
{
	DIR *ret = opendir(name);

	if (!ret)
		tst_brk_(file, lineno, TBROK | TERRNO, "opendir(%s) failed",
			 name);
	return ret;
}

int safe_closedir(const char *file, const int lineno, DIR *dirp)
{
	uintptr_t addr = (uintptr_t)dirp;
	int ret = closedir(dirp);

	CHECK_RET(ret, "closedir(0x%lx)", (unsigned long)addr);
	return ret;
}

struct dirent *safe_readdir(const char *file, const int lineno, DIR *dirp)
{
	struct dirent *ret;
	int err = errno;

	errno = 0;
	ret = readdir(dirp);
	if (!ret && errno)
		tst_brk_(file, lineno, TBROK | TERRNO, "readdir(%p) failed",
			 (void *)dirp);
	if (ret)
		errno = err;
	return ret;
}

int safe_sigaction(const char *file, const int lineno, int signum,
		   const struct sigaction *act, struct sigaction *oldact)
{
	int ret = sigaction(signum, act, oldact);

	CHECK_RET(ret, "sigaction(%s (%d), %p, %p)", tst_strsig(signum),
		  signum, (const void *)act, (void *)oldact);
	return ret;
}

tst_sighandler_t safe_signal(const char *file, const int lineno, int signum,
			     tst_sighandler_t handler)
{
	tst_sighandler_t ret = signal(signum, handler);

	if (ret == SIG_ERR)
		tst_brk_(file, lineno, TBROK | TERRNO, "signal(%d,%p) failed",
			 signum, (void *)handler);
	return ret;
}

int safe_getrlimit(const char *file, const int lineno, int resource,
		   struct rlimit *rlim)
{
	int ret = getrlimit(resource, rlim);

	CHECK_RET(ret, "getrlimit(%d,%p)", resource, (void *)rlim);
	return ret;
}

int safe_setrlimit(const char *file, const int lineno, int resource,
		   const struct rlimit *rlim)
{
	int ret = setrlimit(resource, rlim);

	CHECK_RET(ret, "setrlimit(%d,%p)", resource, (const void *)rlim);
	return ret;
}

long safe_sysconf(const char *file, const int lineno, int name)
{
	long ret;

	errno = 0;
	ret = sysconf(name);
	if (ret == -1 && errno)
		tst_brk_(file, lineno, TBROK | TERRNO, "sysconf(%d) failed",
			 name);
	return ret;
}

long safe_strtol(const char *file, const int lineno, char *str, long min,
		 long max)
{
	long ret;
	char *end;

	errno = 0;
	ret = strtol(str, &end, 10);
	if (errno || end == str || *end || ret < min || ret > max)
		tst_brk_(file, lineno, TBROK,
			 "strtol(%s): invalid value or out of range [%ld, %ld]",
			 str, min, max);
	return ret;
}

long tst_safe_ptrace(const char *file, const int lineno, int req, pid_t pid,
		     void *addr, void *data)
{
	long ret;

	errno = 0;
	ret = ptrace(req, pid, addr, data);
	if (ret == -1)
		tst_brk_(file, lineno, TBROK | TERRNO, "ptrace() failed");
	else if (ret)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "Invalid ptrace() return value %ld", ret);
	return ret;
}

/* ---- pthread: the functions return the error number, not errno ---- */

#define CHECK_PTHREAD(ret, fmt, ...) \
	do { \
		if (ret) { \
			errno = (ret); \
			tst_brk_(file, lineno, TBROK | TERRNO, \
				 fmt " failed", ##__VA_ARGS__); \
		} \
	} while (0)

int safe_pthread_create(const char *file, const int lineno,
			pthread_t *thread_id, const pthread_attr_t *attr,
			void *(*thread_fn)(void *), void *arg)
{
	int ret = pthread_create(thread_id, attr, thread_fn, arg);

	CHECK_PTHREAD(ret, "pthread_create(%p,%p,%p,%p)", (void *)thread_id,
		      (const void *)attr, (void *)(uintptr_t)thread_fn, arg);
	return ret;
}

int safe_pthread_join(const char *file, const int lineno,
		      pthread_t thread_id, void **retval)
{
	int ret = pthread_join(thread_id, retval);

	CHECK_PTHREAD(ret, "pthread_join(..., %p)", (void *)retval);
	return ret;
}

int safe_pthread_mutexattr_init(const char *file, const int lineno,
				pthread_mutexattr_t *attr)
{
	int ret = pthread_mutexattr_init(attr);

	CHECK_PTHREAD(ret, "pthread_mutexattr_init(%p)", (void *)attr);
	return ret;
}

int safe_pthread_mutexattr_destroy(const char *file, const int lineno,
				   pthread_mutexattr_t *attr)
{
	int ret = pthread_mutexattr_destroy(attr);

	CHECK_PTHREAD(ret, "pthread_mutexattr_destroy(%p)", (void *)attr);
	return ret;
}

int safe_pthread_mutex_init(const char *file, const int lineno,
			    pthread_mutex_t *mutex,
			    const pthread_mutexattr_t *attr)
{
	int ret = pthread_mutex_init(mutex, attr);

	CHECK_PTHREAD(ret, "pthread_mutex_init(%p, %p)", (void *)mutex,
		      (const void *)attr);
	return ret;
}
