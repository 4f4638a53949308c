/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The LTP "new" test API, the subset the sfork tests use.  Written for
 * sfork from LTP's documented API (doc/ and include/tst_test.h: names,
 * fields, semantics, output format); the implementation (tst_test.c and
 * friends) is our own.  The same test sources build unchanged inside an
 * LTP tree.  lib/README.md lists exactly what is implemented.
 *
 * A test defines one "static struct tst_test test = { ... };" and no
 * main(): the library parses options, runs setup() once, test(i) for
 * i < tcnt (or test_all()) in a forked test process under a watchdog,
 * reaps leftover children, runs cleanup(), prints the Summary and exits
 * with the OR of TFAIL/TBROK/TWARN (TCONF alone when only skipped).
 */
#ifndef TST_TEST_H__
#define TST_TEST_H__

#include <unistd.h>
#include <limits.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>

#include "tst_common.h"
#include "tst_res_flags.h"
#include "tst_minmax.h"
#include "tst_test_macros.h"
#include "tst_checkpoint.h"

/* Reports a result: "file:line: TPASS: message[: ERRNO (n)]" to stderr. */
void tst_res_(const char *file, const int lineno, int ttype,
	      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * As in current LTP, tst_res() refuses TBROK at build time (use tst_brk())
 * and tst_brk() accepts only TBROK, TCONF and TFAIL.
 */
void tst_res_bad_ttype_(void)
	__attribute__((error("tst_res() takes TPASS, TFAIL, TWARN, TINFO, "
			     "TDEBUG or TCONF; use tst_brk() for TBROK")));
void tst_brk_bad_ttype_(void)
	__attribute__((error("tst_brk() takes TBROK, TCONF or TFAIL")));

#define tst_res(ttype, arg_fmt, ...) \
	({ \
		if (__builtin_constant_p(ttype) && \
		    TTYPE_RESULT(ttype) == TBROK) \
			tst_res_bad_ttype_(); \
		tst_res_(__FILE__, __LINE__, (ttype), (arg_fmt), \
			 ##__VA_ARGS__); \
	})

/*
 * Reports a result and ends the process: the test with TBROK/TCONF (a
 * TBROK from a child of the test kills the test process), a child with
 * exit(0).  Inside cleanup() a TBROK is turned into TWARN and returns.
 */
void tst_brk_(const char *file, const int lineno, int ttype,
	      const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define tst_brk(ttype, arg_fmt, ...) \
	({ \
		if (__builtin_constant_p(ttype) && \
		    !(TTYPE_RESULT(ttype) & (TBROK | TCONF | TFAIL))) \
			tst_brk_bad_ttype_(); \
		tst_brk_(__FILE__, __LINE__, (ttype), (arg_fmt), \
			 ##__VA_ARGS__); \
	})

void tst_printf(const char *const fmt, ...)
	__attribute__((nonnull(1), format(printf, 1, 2)));

/* flushes stdout and stderr (done before every SAFE_FORK()) */
void tst_flush(void);

/* fork(), TBROK on failure; needs .forks_child */
pid_t safe_fork(const char *filename, unsigned int lineno);
#define SAFE_FORK() safe_fork(__FILE__, __LINE__)

/* "EINVAL", "SIGSEGV", "exited with 1" / "killed by SIGKILL" ... */
const char *tst_strerrno(int err);
const char *tst_strsig(int sig);
const char *tst_strstatus(int status);	/* not thread safe */

#include "tst_safe_macros.h"
#include "tst_safe_file_ops.h"
#include "tst_cgroup.h"

/*
 * Waits for every child; a child killed by a signal or exiting non-zero
 * ends the test with TBROK.
 */
void tst_reap_children(void);

struct tst_option {
	char *optstr;	/* "s:" takes an argument, "v" does not */
	char **arg;	/* set to the argument ("" for a flag) when given */
	char *help;
};

/* 0 or an errno (EINVAL, ERANGE); str == NULL is a no-op returning 0 */
int tst_parse_int(const char *str, int *val, int min, int max);
int tst_parse_long(const char *str, long *val, long min, long max);
int tst_parse_float(const char *str, float *val, float min, float max);
/* k/K, m/M, g/G suffixes multiply by 1024, 1024^2, 1024^3 */
int tst_parse_filesize(const char *str, long long *val, long long min,
		       long long max);

struct tst_tag {
	const char *name;
	const char *value;
};

#define TST_UNLIMITED_TIMEOUT	(-1)

struct tst_test {
	/* number of cases for test() */
	unsigned int tcnt;

	struct tst_option *options;

	unsigned int needs_tmpdir:1;
	unsigned int needs_root:1;
	unsigned int forks_child:1;
	unsigned int needs_checkpoints:1;

	/*
	 * Watchdog, as in current LTP: the test may run 30 s plus this many
	 * seconds, times $LTP_TIMEOUT_MUL; TST_UNLIMITED_TIMEOUT disables it.
	 */
	int timeout;
	/* expected runtime in seconds, added to the watchdog (see tst_remaining_runtime) */
	int runtime;

	void (*setup)(void);
	void (*cleanup)(void);

	void (*test)(unsigned int test_nr);
	void (*test_all)(void);

	/* NULL terminated; cgroup v2 controllers the test needs */
	const char *const *needs_cgroup_ctrls;
	const enum tst_cg_ver needs_cgroup_ver;

	/* {NULL, NULL} terminated, printed by -h only */
	const struct tst_tag *tags;
};

void tst_run_tcases(int argc, char *argv[], struct tst_test *self)
	__attribute__((noreturn));

/* seconds left of .runtime (TBROK when .runtime is not set) */
unsigned int tst_remaining_runtime(void);

/* timeout times $LTP_TIMEOUT_MUL, and times 4 on a slow kernel config */
unsigned int tst_multiply_timeout(unsigned int timeout);

#ifndef TST_NO_DEFAULT_MAIN

static struct tst_test test;

int main(int argc, char *argv[])
{
	tst_run_tcases(argc, argv, &test);
}

#endif /* TST_NO_DEFAULT_MAIN */

#endif /* TST_TEST_H__ */
