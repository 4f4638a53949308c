/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SAFE_*() of the LTP test API: each does the call and, when it fails,
 * ends the test with tst_brk(TBROK | TERRNO) at the caller's file:line.
 * Written for sfork from LTP's documented API (include/tst_safe_macros.h
 * names and arguments); the implementation (tst_safe_macros.c) is our own.
 */
#ifndef TST_SAFE_MACROS_H__
#define TST_SAFE_MACROS_H__

#include <sys/mman.h>
#include <sys/types.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

/* SAFE_WRITE() len_strict */
enum safe_write_opts {
	SAFE_WRITE_ANY = 0,	/* a short write is fine */
	SAFE_WRITE_ALL = 1,	/* a short write is TBROK */
	SAFE_WRITE_RETRY = 2,	/* resume after a short write until done */
};

pid_t safe_waitpid(const char *file, const int lineno, pid_t pid,
		   int *status, int opts);
#define SAFE_WAITPID(pid, status, opts) \
	safe_waitpid(__FILE__, __LINE__, (pid), (status), (opts))

pid_t safe_wait(const char *file, const int lineno, int *status);
#define SAFE_WAIT(status) safe_wait(__FILE__, __LINE__, (status))

void *safe_mmap(const char *file, const int lineno, void *addr, size_t length,
		int prot, int flags, int fd, off_t offset);
#define SAFE_MMAP(addr, length, prot, flags, fd, offset) \
	safe_mmap(__FILE__, __LINE__, (addr), (length), (prot), (flags), \
		  (fd), (offset))

int safe_munmap(const char *file, const int lineno, void *addr, size_t length);
#define SAFE_MUNMAP(addr, length) \
	safe_munmap(__FILE__, __LINE__, (addr), (length))

int safe_mprotect(const char *file, const int lineno, void *addr,
		  size_t len, int prot);
#define SAFE_MPROTECT(addr, len, prot) \
	safe_mprotect(__FILE__, __LINE__, (addr), (len), (prot))

int safe_msync(const char *file, const int lineno, void *addr,
	       size_t length, int flags);
#define SAFE_MSYNC(addr, length, flags) \
	safe_msync(__FILE__, __LINE__, (addr), (length), (flags))

int safe_open(const char *file, const int lineno, const char *pathname,
	      int oflags, ...);
#define SAFE_OPEN(pathname, oflags, ...) \
	safe_open(__FILE__, __LINE__, (pathname), (oflags), ##__VA_ARGS__)

int safe_close(const char *file, const int lineno, int fd);
#define SAFE_CLOSE(fd) \
	do { \
		safe_close(__FILE__, __LINE__, (fd)); \
		fd = -1; \
	} while (0)

ssize_t safe_read(const char *file, const int lineno, char len_strict,
		  int fd, void *buf, size_t nbyte);
#define SAFE_READ(len_strict, fd, buf, nbyte) \
	safe_read(__FILE__, __LINE__, (len_strict), (fd), (buf), (nbyte))

ssize_t safe_write(const char *file, const int lineno,
		   enum safe_write_opts len_strict, int fd, const void *buf,
		   size_t nbyte);
#define SAFE_WRITE(len_strict, fd, buf, nbyte) \
	safe_write(__FILE__, __LINE__, (len_strict), (fd), (buf), (nbyte))

int safe_pipe(const char *file, const int lineno, int fildes[2]);
#define SAFE_PIPE(fildes) safe_pipe(__FILE__, __LINE__, (fildes))

int safe_dup(const char *file, const int lineno, int oldfd);
#define SAFE_DUP(oldfd) safe_dup(__FILE__, __LINE__, (oldfd))

int safe_dup2(const char *file, const int lineno, int oldfd, int newfd);
#define SAFE_DUP2(oldfd, newfd) safe_dup2(__FILE__, __LINE__, (oldfd), (newfd))

off_t safe_lseek(const char *file, const int lineno, int fd, off_t offset,
		 int whence);
#define SAFE_LSEEK(fd, offset, whence) \
	safe_lseek(__FILE__, __LINE__, (fd), (offset), (whence))

int safe_ftruncate(const char *file, const int lineno, int fd, off_t length);
#define SAFE_FTRUNCATE(fd, length) \
	safe_ftruncate(__FILE__, __LINE__, (fd), (length))

int safe_stat(const char *file, const int lineno, const char *path,
	      struct stat *buf);
#define SAFE_STAT(path, buf) safe_stat(__FILE__, __LINE__, (path), (buf))

int safe_fstat(const char *file, const int lineno, int fd, struct stat *buf);
#define SAFE_FSTAT(fd, buf) safe_fstat(__FILE__, __LINE__, (fd), (buf))

int safe_kill(const char *file, const int lineno, pid_t pid, int sig);
#define SAFE_KILL(pid, sig) safe_kill(__FILE__, __LINE__, (pid), (sig))

int safe_setuid(const char *file, const int lineno, uid_t uid);
#define SAFE_SETUID(uid) safe_setuid(__FILE__, __LINE__, (uid))

int safe_setgid(const char *file, const int lineno, gid_t gid);
#define SAFE_SETGID(gid) safe_setgid(__FILE__, __LINE__, (gid))

int safe_seteuid(const char *file, const int lineno, uid_t euid);
#define SAFE_SETEUID(euid) safe_seteuid(__FILE__, __LINE__, (euid))

int safe_setegid(const char *file, const int lineno, gid_t egid);
#define SAFE_SETEGID(egid) safe_setegid(__FILE__, __LINE__, (egid))

int safe_setpgid(const char *file, const int lineno, pid_t pid, pid_t pgid);
#define SAFE_SETPGID(pid, pgid) safe_setpgid(__FILE__, __LINE__, (pid), (pgid))

void *safe_malloc(const char *file, const int lineno, size_t size);
#define SAFE_MALLOC(size) safe_malloc(__FILE__, __LINE__, (size))

void *safe_calloc(const char *file, const int lineno, size_t nmemb,
		  size_t size);
#define SAFE_CALLOC(nmemb, size) \
	safe_calloc(__FILE__, __LINE__, (nmemb), (size))

void *safe_realloc(const char *file, const int lineno, void *ptr,
		   size_t size);
#define SAFE_REALLOC(ptr, size) safe_realloc(__FILE__, __LINE__, (ptr), (size))

int safe_mkdir(const char *file, const int lineno, const char *pathname,
	       mode_t mode);
#define SAFE_MKDIR(pathname, mode) \
	safe_mkdir(__FILE__, __LINE__, (pathname), (mode))

int safe_rmdir(const char *file, const int lineno, const char *pathname);
#define SAFE_RMDIR(pathname) safe_rmdir(__FILE__, __LINE__, (pathname))

int safe_unlink(const char *file, const int lineno, const char *pathname);
#define SAFE_UNLINK(pathname) safe_unlink(__FILE__, __LINE__, (pathname))

int safe_chdir(const char *file, const int lineno, const char *path);
#define SAFE_CHDIR(path) safe_chdir(__FILE__, __LINE__, (path))

int safe_chmod(const char *file, const int lineno, const char *path,
	       mode_t mode);
#define SAFE_CHMOD(path, mode) safe_chmod(__FILE__, __LINE__, (path), (mode))

DIR *safe_opendir(const char *file, const int lineno, const char *name);
#define SAFE_OPENDIR(name) safe_opendir(__FILE__, __LINE__, (name))

int safe_closedir(const char *file, const int lineno, DIR *dirp);
#define SAFE_CLOSEDIR(dirp) safe_closedir(__FILE__, __LINE__, (dirp))

/* NULL at the end of the directory; an error is TBROK */
struct dirent *safe_readdir(const char *file, const int lineno, DIR *dirp);
#define SAFE_READDIR(dirp) safe_readdir(__FILE__, __LINE__, (dirp))

int safe_sigaction(const char *file, const int lineno, int signum,
		   const struct sigaction *act, struct sigaction *oldact);
#define SAFE_SIGACTION(signum, act, oldact) \
	safe_sigaction(__FILE__, __LINE__, (signum), (act), (oldact))

typedef void (*tst_sighandler_t)(int);
tst_sighandler_t safe_signal(const char *file, const int lineno, int signum,
			     tst_sighandler_t handler);
#define SAFE_SIGNAL(signum, handler) \
	safe_signal(__FILE__, __LINE__, (signum), (handler))

int safe_getrlimit(const char *file, const int lineno, int resource,
		   struct rlimit *rlim);
#define SAFE_GETRLIMIT(resource, rlim) \
	safe_getrlimit(__FILE__, __LINE__, (resource), (rlim))

int safe_setrlimit(const char *file, const int lineno, int resource,
		   const struct rlimit *rlim);
#define SAFE_SETRLIMIT(resource, rlim) \
	safe_setrlimit(__FILE__, __LINE__, (resource), (rlim))

long safe_sysconf(const char *file, const int lineno, int name);
#define SAFE_SYSCONF(name) safe_sysconf(__FILE__, __LINE__, (name))

long safe_strtol(const char *file, const int lineno, char *str, long min,
		 long max);
#define SAFE_STRTOL(str, min, max) \
	safe_strtol(__FILE__, __LINE__, (str), (min), (max))

/*
 * SAFE_PTRACE() treats any return value other than 0 as failure, as LTP's
 * does: do not use it for PTRACE_PEEK* (use ptrace() and errno).
 */
long tst_safe_ptrace(const char *file, const int lineno, int req, pid_t pid,
		     void *addr, void *data);
#define SAFE_PTRACE(req, pid, addr, data) \
	tst_safe_ptrace(__FILE__, __LINE__, (req), (pid), (addr), (data))

#define SAFE_EXECLP(file, arg, ...) \
	do { \
		execlp((file), (arg), ##__VA_ARGS__); \
		tst_brk_(__FILE__, __LINE__, TBROK | TERRNO, \
			 "execlp(%s, %s, ...) failed", (file), (arg)); \
	} while (0)

#define SAFE_IOCTL(fd, request, ...) \
	({ \
		int tst_ioctl_ret__ = ioctl((fd), (request), ##__VA_ARGS__); \
		if (tst_ioctl_ret__ < 0) \
			tst_brk_(__FILE__, __LINE__, TBROK | TERRNO, \
				 "ioctl(%i,%s,...) failed", (fd), #request); \
		tst_ioctl_ret__; \
	})

#define SAFE_FCNTL(fd, cmd, ...) \
	({ \
		int tst_fcntl_ret__ = fcntl((fd), (cmd), ##__VA_ARGS__); \
		if (tst_fcntl_ret__ == -1) \
			tst_brk_(__FILE__, __LINE__, TBROK | TERRNO, \
				 "fcntl(%i,%s,...) failed", (fd), #cmd); \
		tst_fcntl_ret__; \
	})

#define SAFE_SETENV(name, value, overwrite) \
	do { \
		if (setenv((name), (value), (overwrite))) \
			tst_brk_(__FILE__, __LINE__, TBROK | TERRNO, \
				 "setenv(%s, %s, %d) failed", \
				 (name), (value), (overwrite)); \
	} while (0)

#endif /* TST_SAFE_MACROS_H__ */
