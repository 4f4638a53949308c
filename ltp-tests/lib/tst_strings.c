// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Names of errnos and signals, description of wait() statuses, and the
 * helpers behind the TST_EXP_*() messages.  Written for sfork from LTP's
 * documented API (tst_strerrno(), tst_strsig(), tst_strstatus(),
 * tst_errno_in_set(), tst_errno_names()); no LTP code is used.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"

#define NAME(x) case x: return #x

const char *tst_strerrno(int err)
{
	switch (err) {
	case 0: return "SUCCESS";
	NAME(EPERM); NAME(ENOENT); NAME(ESRCH); NAME(EINTR); NAME(EIO);
	NAME(ENXIO); NAME(E2BIG); NAME(ENOEXEC); NAME(EBADF); NAME(ECHILD);
	NAME(EAGAIN); NAME(ENOMEM); NAME(EACCES); NAME(EFAULT);
	NAME(ENOTBLK); NAME(EBUSY); NAME(EEXIST); NAME(EXDEV); NAME(ENODEV);
	NAME(ENOTDIR); NAME(EISDIR); NAME(EINVAL); NAME(ENFILE);
	NAME(EMFILE); NAME(ENOTTY); NAME(ETXTBSY); NAME(EFBIG);
	NAME(ENOSPC); NAME(ESPIPE); NAME(EROFS); NAME(EMLINK); NAME(EPIPE);
	NAME(EDOM); NAME(ERANGE); NAME(EDEADLK); NAME(ENAMETOOLONG);
	NAME(ENOLCK); NAME(ENOSYS); NAME(ENOTEMPTY); NAME(ELOOP);
	NAME(ENOMSG); NAME(EIDRM); NAME(ENOSTR); NAME(ENODATA);
	NAME(ETIME); NAME(ENOSR); NAME(ENOLINK); NAME(EPROTO);
	NAME(EBADMSG); NAME(EOVERFLOW); NAME(EILSEQ); NAME(EUSERS);
	NAME(ENOTSOCK); NAME(EDESTADDRREQ); NAME(EMSGSIZE);
	NAME(EPROTOTYPE); NAME(ENOPROTOOPT); NAME(EPROTONOSUPPORT);
	NAME(ESOCKTNOSUPPORT); NAME(EOPNOTSUPP); NAME(EPFNOSUPPORT);
	NAME(EAFNOSUPPORT); NAME(EADDRINUSE); NAME(EADDRNOTAVAIL);
	NAME(ENETDOWN); NAME(ENETUNREACH); NAME(ENETRESET);
	NAME(ECONNABORTED); NAME(ECONNRESET); NAME(ENOBUFS); NAME(EISCONN);
	NAME(ENOTCONN); NAME(ESHUTDOWN); NAME(ETOOMANYREFS);
	NAME(ETIMEDOUT); NAME(ECONNREFUSED); NAME(EHOSTDOWN);
	NAME(EHOSTUNREACH); NAME(EALREADY); NAME(EINPROGRESS);
	NAME(ESTALE); NAME(EDQUOT); NAME(ECANCELED); NAME(ENOKEY);
	NAME(EKEYEXPIRED); NAME(EKEYREVOKED); NAME(EKEYREJECTED);
	NAME(EOWNERDEAD); NAME(ENOTRECOVERABLE); NAME(ERFKILL);
	NAME(EHWPOISON); NAME(ENOMEDIUM); NAME(EMEDIUMTYPE);
	}
	return "???";
}

const char *tst_strsig(int sig)
{
	switch (sig) {
	NAME(SIGHUP); NAME(SIGINT); NAME(SIGQUIT); NAME(SIGILL);
	NAME(SIGTRAP); NAME(SIGABRT); NAME(SIGBUS); NAME(SIGFPE);
	NAME(SIGKILL); NAME(SIGUSR1); NAME(SIGSEGV); NAME(SIGUSR2);
	NAME(SIGPIPE); NAME(SIGALRM); NAME(SIGTERM); NAME(SIGSTKFLT);
	NAME(SIGCHLD); NAME(SIGCONT); NAME(SIGSTOP); NAME(SIGTSTP);
	NAME(SIGTTIN); NAME(SIGTTOU); NAME(SIGURG); NAME(SIGXCPU);
	NAME(SIGXFSZ); NAME(SIGVTALRM); NAME(SIGPROF); NAME(SIGWINCH);
	NAME(SIGIO); NAME(SIGPWR); NAME(SIGSYS);
	}
	return "??";
}

const char *tst_strstatus(int status)
{
	static char buf[64];

	if (WIFEXITED(status))
		snprintf(buf, sizeof(buf), "exited with %i", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by %s",
			 tst_strsig(WTERMSIG(status)));
	else if (WIFSTOPPED(status))
		return "is stopped";
	else if (WIFCONTINUED(status))
		return "is resumed";
	else
		snprintf(buf, sizeof(buf), "invalid status 0x%x", status);

	return buf;
}

bool tst_errno_in_set(int err, const int *errs, int cnt)
{
	int i;

	for (i = 0; i < cnt; i++) {
		if (errs[i] == err)
			return true;
	}
	return false;
}

const char *tst_errno_names(char *buf, const int *errs, int cnt)
{
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < cnt; i++) {
		/* each name is at most 15 characters, plus ", " */
		len += (size_t)sprintf(buf + len, "%s%.15s", i ? ", " : "",
				       tst_strerrno(errs[i]));
	}
	return buf;
}

const char *tst_exp_desc_(char *buf, size_t size, const char *scall, ...)
{
	const char *fmt;
	va_list va;

	va_start(va, scall);
	fmt = va_arg(va, const char *);
	if (fmt)
		vsnprintf(buf, size, fmt, va);
	else
		snprintf(buf, size, "%s", scall);
	va_end(va);

	return buf;
}
