// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The core of our LTP-API library: results and their output, option
 * parsing, the library process / test process split with its watchdog,
 * reaping of children, the Summary and the exit code.
 *
 * Written for sfork from LTP's documented API and behaviour (doc/,
 * include/tst_test.h); no LTP code is used.
 *
 * Processes: the process started by the user is the "library process".  It
 * parses options, prepares the temporary directory and cgroups, then forks
 * the "test process" (its own process group) that runs setup(), the test
 * functions and cleanup().  The library process waits for it under an
 * alarm: on expiry it kills the test's process group ("Test killed!
 * (timeout?)").  Results are counted in a MAP_SHARED page so that every
 * process the test forks adds to the same counters; the same page holds
 * the checkpoint futexes.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"
#include "tst_private.h"

#define DEFAULT_TIMEOUT	30
#define IPC_MAGIC	0x4c54504dU

struct results {
	int passed;
	int failed;
	int broken;
	int skipped;
	int warnings;
};

/* The shared page: state every process of the test needs. */
struct ipc_region {
	uint32_t magic;
	pid_t lib_pid;
	pid_t main_pid;
	int abort_flag;
	int tdebug;
	unsigned int overall_time;
	int runtime;
	struct timespec start_time;
	struct results results;
	uint32_t futexes[];
};

struct tst_test *tst_test;
volatile uint32_t *tst_futexes;
unsigned int tst_max_futexes;

long TST_RET;
int TST_ERR;
int TST_PASS;
void *TST_RET_PTR;

static struct ipc_region *ipc;
static const char *tcid;
static int iterations = 1;
static char startwd[PATH_MAX];
static char *tmpdir;
static pid_t test_pid;
static volatile sig_atomic_t sigkill_retries;
static int in_test_cleanup;

static void do_exit(int ret) __attribute__((noreturn));

/* ---- result output ---- */

static const char *ttype_name(int ttype)
{
	switch (TTYPE_RESULT(ttype)) {
	case TPASS: return "TPASS";
	case TFAIL: return "TFAIL";
	case TBROK: return "TBROK";
	case TWARN: return "TWARN";
	case TDEBUG: return "TDEBUG";
	case TINFO: return "TINFO";
	case TCONF: return "TCONF";
	}
	return "???";
}

/* Formats one result line and write()s it (usable from signal handlers). */
static void print_result(const char *file, const int lineno, int ttype,
			 const char *fmt, va_list va)
{
	char buf[1024];
	size_t len = 0, size = sizeof(buf) - 1;	/* room for the '\n' */
	int err = errno, n, have_err = 0;
	ssize_t w;
	char *p;

	if (ttype & TERRNO) {
		have_err = 1;
	} else if (ttype & TTERRNO) {
		err = TST_ERR;
		have_err = 1;
	} else if (ttype & TRERRNO) {
		err = TST_RET < 0 ? -(int)TST_RET : (int)TST_RET;
		have_err = 1;
	}

	n = snprintf(buf, size, "%s:%i: %s: ", file, lineno,
		     ttype_name(ttype));
	len = (size_t)n < size ? (size_t)n : size - 1;

	n = vsnprintf(buf + len, size - len, fmt, va);
	len = len + (size_t)n < size ? len + (size_t)n : size - 1;

	if (have_err && len < size - 1) {
		n = snprintf(buf + len, size - len, ": %s (%d)",
			     tst_strerrno(err), err);
		len = len + (size_t)n < size ? len + (size_t)n : size - 1;
	}
	buf[len++] = '\n';

	for (p = buf; len; p += w, len -= (size_t)w) {
		w = write(STDERR_FILENO, p, len);
		if (w <= 0)
			break;
	}
}

static void count_result(int ttype)
{
	int *counter;

	if (!ipc)
		return;

	switch (TTYPE_RESULT(ttype)) {
	case TPASS: counter = &ipc->results.passed; break;
	case TFAIL: counter = &ipc->results.failed; break;
	case TBROK: counter = &ipc->results.broken; break;
	case TWARN: counter = &ipc->results.warnings; break;
	case TCONF: counter = &ipc->results.skipped; break;
	default: return;
	}
	__atomic_add_fetch(counter, 1, __ATOMIC_SEQ_CST);
}

static void vres(const char *file, const int lineno, int ttype,
		 const char *fmt, va_list va)
{
	if (TTYPE_RESULT(ttype) == TDEBUG && (!ipc || !ipc->tdebug))
		return;

	print_result(file, lineno, ttype, fmt, va);
	count_result(ttype);
}

void tst_res_(const char *file, const int lineno, int ttype,
	      const char *fmt, ...)
{
	va_list va;

	va_start(va, fmt);
	vres(file, lineno, ttype, fmt, va);
	va_end(va);
}

static void do_test_cleanup(void)
{
	in_test_cleanup = 1;
	if (tst_test->cleanup)
		tst_test->cleanup();
	in_test_cleanup = 0;
}

void tst_brk_(const char *file, const int lineno, int ttype,
	      const char *fmt, ...)
{
	pid_t self = getpid();
	va_list va;

	/* tst_brk() from cleanup() reports a warning and returns */
	if (in_test_cleanup) {
		if (TTYPE_RESULT(ttype) == TBROK)
			ttype = (ttype & ~TTYPE_MASK) | TWARN;
		va_start(va, fmt);
		vres(file, lineno, ttype, fmt, va);
		va_end(va);
		return;
	}

	va_start(va, fmt);
	print_result(file, lineno, ttype, fmt, va);
	va_end(va);

	/* before the library is set up there is nothing to clean */
	if (!ipc)
		exit(TTYPE_RESULT(ttype));

	count_result(ttype);

	if (self == ipc->main_pid)
		do_test_cleanup();

	if (self == ipc->lib_pid)
		do_exit(TTYPE_RESULT(ttype));

	if (TTYPE_RESULT(ttype) == TBROK) {
		__atomic_add_fetch(&ipc->abort_flag, 1, __ATOMIC_SEQ_CST);
		if (ipc->main_pid && self != ipc->main_pid) {
			tst_res(TINFO, "Child process reported TBROK killing the test");
			kill(ipc->main_pid, SIGKILL);
		}
	}

	exit(0);
}

void tst_printf(const char *const fmt, ...)
{
	va_list va;

	va_start(va, fmt);
	vdprintf(STDERR_FILENO, fmt, va);
	va_end(va);
}

void tst_flush(void)
{
	if (fflush(stderr))
		tst_brk(TBROK | TERRNO, "fflush(stderr) failed");
	if (fflush(stdout))
		tst_brk(TBROK | TERRNO, "fflush(stdout) failed");
}

/* ---- children ---- */

static void check_child_status(pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		tst_brk(TBROK, "Child (%i) killed by signal %s", pid,
			tst_strsig(WTERMSIG(status)));
	if (!WIFEXITED(status))
		tst_brk(TBROK, "Child (%i) exited abnormally", pid);
	if (WEXITSTATUS(status))
		tst_brk(TBROK, "Invalid child (%i) exit value %i", pid,
			WEXITSTATUS(status));
}

void tst_reap_children(void)
{
	int status;
	pid_t pid;

	for (;;) {
		pid = wait(&status);
		if (pid > 0) {
			check_child_status(pid, status);
			continue;
		}
		if (errno == ECHILD)
			return;
		if (errno != EINTR)
			tst_brk(TBROK | TERRNO, "wait() failed");
	}
}

pid_t safe_fork(const char *filename, unsigned int lineno)
{
	pid_t pid;

	if (!tst_test->forks_child)
		tst_brk(TBROK, "test.forks_child must be set!");

	tst_flush();

	pid = fork();
	if (pid < 0)
		tst_brk_(filename, lineno, TBROK | TERRNO, "fork() failed");

	return pid;
}

/* ---- option parsing ---- */

int tst_parse_long(const char *str, long *val, long min, long max)
{
	long v;
	char *end;

	if (!str)
		return 0;

	errno = 0;
	v = strtol(str, &end, 10);
	if (end == str || *end)
		return EINVAL;
	if (errno)
		return errno;
	if (v < min || v > max)
		return ERANGE;

	*val = v;
	return 0;
}

int tst_parse_int(const char *str, int *val, int min, int max)
{
	long v;
	int ret;

	if (!str)
		return 0;

	ret = tst_parse_long(str, &v, min, max);
	if (ret)
		return ret;

	*val = (int)v;
	return 0;
}

int tst_parse_float(const char *str, float *val, float min, float max)
{
	double v;
	char *end;

	if (!str)
		return 0;

	errno = 0;
	v = strtod(str, &end);
	if (end == str || *end)
		return EINVAL;
	if (errno)
		return errno;
	if (v < (double)min || v > (double)max)
		return ERANGE;

	*val = (float)v;
	return 0;
}

int tst_parse_filesize(const char *str, long long *val, long long min,
		       long long max)
{
	long long v, mul = 1;
	char *end;

	if (!str)
		return 0;

	errno = 0;
	v = strtoll(str, &end, 0);
	if (end == str || (end[0] && end[1]))
		return EINVAL;
	if (errno)
		return errno;

	switch (*end) {
	case 'k': case 'K': mul = 1LL << 10; break;
	case 'm': case 'M': mul = 1LL << 20; break;
	case 'g': case 'G': mul = 1LL << 30; break;
	case '\0': break;
	default: return EINVAL;
	}
	if (__builtin_mul_overflow(v, mul, &v))
		return ERANGE;
	if (v < min || v > max)
		return ERANGE;

	*val = v;
	return 0;
}

static const struct {
	const char *optstr;
	const char *help;
} lib_options[] = {
	{"h", "-h       Prints this help"},
	{"i:", "-i n     Execute test n times"},
	{"D", "-D       Prints debug information"},
	{"V", "-V       Prints LTP version"},
};

static void print_help(void)
{
	struct tst_option *o = tst_test->options;
	unsigned int i;

	fprintf(stderr, "Environment Variables\n");
	fprintf(stderr, "---------------------\n");
	fprintf(stderr, "LTPROOT                  Prefix for installed LTP (modules are looked for in $LTPROOT/testcases/bin)\n");
	fprintf(stderr, "LTP_TIMEOUT_MUL          Timeout multiplier (must be a number >=1)\n");
	fprintf(stderr, "TMPDIR                   Base directory for template directory (for .needs_tmpdir, default: /tmp)\n");
	fprintf(stderr, "\n");

	fprintf(stderr, "Options\n");
	fprintf(stderr, "-------\n");
	for (i = 0; i < ARRAY_SIZE(lib_options); i++)
		fprintf(stderr, "%s\n", lib_options[i].help);
	for (i = 0; o && o[i].optstr; i++)
		fprintf(stderr, "-%c\t %s\n", o[i].optstr[0],
			o[i].help ? o[i].help : "");
}

static void print_tags(void)
{
	const struct tst_tag *t = tst_test->tags;

	if (!t)
		return;

	fprintf(stderr, "\nTags\n----\n");
	for (; t->name; t++)
		fprintf(stderr, "%s: %s\n", t->name, t->value);
	fprintf(stderr, "\n");
}

static void parse_opts(int argc, char *argv[])
{
	struct tst_option *o = tst_test->options;
	char optstr[256] = "";
	unsigned int i, j;
	int opt;

	for (i = 0; i < ARRAY_SIZE(lib_options); i++)
		strcat(optstr, lib_options[i].optstr);

	for (i = 0; o && o[i].optstr; i++) {
		for (j = 0; j < ARRAY_SIZE(lib_options); j++) {
			if (o[i].optstr[0] == lib_options[j].optstr[0])
				tst_brk(TBROK, "Option collision '%s'",
					lib_options[j].help);
		}
		if (strlen(optstr) + strlen(o[i].optstr) >= sizeof(optstr))
			tst_brk(TBROK, "Too many options");
		strcat(optstr, o[i].optstr);
	}

	while ((opt = getopt(argc, argv, optstr)) > 0) {
		switch (opt) {
		case '?':
			print_help();
			tst_brk(TBROK, "Invalid option");
			break;
		case 'h':
			print_help();
			print_tags();
			exit(0);
		case 'i':
			iterations = SAFE_STRTOL(optarg, 0, INT_MAX);
			break;
		case 'D':
			tst_res(TINFO, "Enabling debug info");
			ipc->tdebug = 1;
			break;
		case 'V':
			fprintf(stderr, "LTP version: sfork ltp-tests/lib\n");
			exit(0);
		default:
			for (i = 0; o && o[i].optstr; i++) {
				if (o[i].optstr[0] != opt)
					continue;
				if (*o[i].arg)
					tst_res(TWARN, "Option -%c passed multiple times", opt);
				*o[i].arg = optarg ? optarg : "";
				break;
			}
			if (!o || !o[i].optstr)
				tst_brk(TBROK, "Invalid option '%c' (should not happen)", opt);
		}
	}

	if (optind < argc)
		tst_brk(TBROK, "Unexpected argument(s) '%s'...", argv[optind]);
}

/* ---- temporary directory ---- */

const char *tst_get_startwd(void)
{
	return startwd;
}

int tst_tmpdir_created(void)
{
	return tmpdir != NULL;
}

static void make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char path[PATH_MAX];

	if (!base || base[0] != '/')
		base = "/tmp";

	snprintf(path, sizeof(path), "%s/LTP_%.3sXXXXXX", base, tcid);
	if (!mkdtemp(path))
		tst_brk(TBROK | TERRNO, "mkdtemp(%s) failed", path);
	tmpdir = strdup(path);
	if (!tmpdir)
		tst_brk(TBROK | TERRNO, "strdup() failed");
	SAFE_CHMOD(tmpdir, 0777);
	SAFE_CHDIR(tmpdir);
}

static int rm_entry(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)st; (void)type; (void)ftw;

	if (remove(path))
		tst_res(TWARN | TERRNO, "remove(%s) failed", path);
	return 0;
}

static void remove_tmpdir(void)
{
	if (!tmpdir)
		return;
	if (chdir(startwd))
		tst_res(TWARN | TERRNO, "chdir(%s) failed", startwd);
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmpdir);
	tmpdir = NULL;
}

/* ---- shared page ---- */

static void setup_ipc(void)
{
	size_t size = (size_t)getpagesize();

	ipc = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ipc == MAP_FAILED) {
		ipc = NULL;
		tst_brk(TBROK | TERRNO, "mmap() of the results page failed");
	}

	ipc->magic = IPC_MAGIC;
	ipc->lib_pid = getpid();

	if (tst_test->needs_checkpoints) {
		tst_futexes = ipc->futexes;
		tst_max_futexes = (size - offsetof(struct ipc_region, futexes)) /
				  sizeof(uint32_t);
	}
}

/* ---- exit ---- */

static void do_cleanup(void)
{
	if (tst_test->needs_cgroup_ctrls)
		tst_cg_cleanup();
	remove_tmpdir();
}

static void do_exit(int ret)
{
	static int exiting;
	struct results *r;

	/* a tst_brk() from the library's own cleanup must not loop */
	if (exiting)
		exit(ret);
	exiting = 1;

	if (ipc) {
		r = &ipc->results;

		if (r->passed && ret == TCONF)
			ret = 0;
		if (r->failed)
			ret |= TFAIL;
		if (r->skipped && !r->passed)
			ret |= TCONF;
		if (r->warnings)
			ret |= TWARN;
		if (r->broken)
			ret |= TBROK;

		fprintf(stderr, "\nSummary:\n");
		fprintf(stderr, "passed   %d\n", r->passed);
		fprintf(stderr, "failed   %d\n", r->failed);
		fprintf(stderr, "broken   %d\n", r->broken);
		fprintf(stderr, "skipped  %d\n", r->skipped);
		fprintf(stderr, "warnings %d\n", r->warnings);
	}

	do_cleanup();
	exit(ret);
}

/* ---- timeout ---- */

/*
 * Kernel options LTP's lib/tst_kconfig.c names as slowing tests down: with
 * any of them =y, every timeout is multiplied by 4 (as tst_multiply_timeout()
 * there does).
 */
static const char *const slow_kconfigs[] = {
	"CONFIG_PROVE_LOCKING", "CONFIG_LOCKDEP", "CONFIG_DEBUG_SPINLOCK",
	"CONFIG_DEBUG_RT_MUTEXES", "CONFIG_DEBUG_MUTEXES", "CONFIG_KASAN",
	"CONFIG_SLUB_RCU_DEBUG", "CONFIG_TRACE_IRQFLAGS", "CONFIG_DEBUG_NET",
	"CONFIG_EXT4_DEBUG", "CONFIG_QUOTA_DEBUG", "CONFIG_FAULT_INJECTION",
	"CONFIG_DEBUG_OBJECTS", NULL
};

/* The kernel config file, searched as LTP does; NULL when there is none. */
static const char *kconfig_path(char *buf, size_t size)
{
	const char *env = getenv("KCONFIG_PATH");
	static const char *const fmts[] = {
		"/lib/modules/%s/build/.config", "/lib/modules/%s/config",
		"/boot/config-%s", "/lib/kernel/config-%s", NULL
	};
	struct utsname un;
	int i;

	if (env) {
		if (!access(env, F_OK))
			return env;
		tst_res(TWARN, "KCONFIG_PATH='%s' does not exist", env);
	}
	if (!access("/proc/config.gz", F_OK))
		return "/proc/config.gz";
	uname(&un);
	for (i = 0; fmts[i]; i++) {
		snprintf(buf, size, fmts[i], un.release);
		if (!access(buf, F_OK))
			return buf;
	}
	tst_res(TINFO, "Couldn't locate kernel config!");
	return NULL;
}

/* The first slow option set to y, or NULL; a gzipped config through zcat. */
static const char *find_slow_kconfig(const char *path)
{
	char cmd[PATH_MAX + 16], line[256];
	const char *found = NULL;
	size_t len = strlen(path);
	int gz = len > 3 && !strcmp(path + len - 3, ".gz");
	FILE *f;
	int i;

	snprintf(cmd, sizeof(cmd), "zcat '%s'", path);
	f = gz ? popen(cmd, "r") : fopen(path, "r");
	if (!f) {
		tst_res(TWARN | TERRNO, "Cannot read kernel config %s", path);
		return NULL;
	}
	while (!found && fgets(line, sizeof(line), f)) {
		for (i = 0; slow_kconfigs[i]; i++) {
			len = strlen(slow_kconfigs[i]);
			if (!strncmp(line, slow_kconfigs[i], len) &&
			    !strcmp(line + len, "=y\n")) {
				found = slow_kconfigs[i];
				break;
			}
		}
	}
	if (gz)
		pclose(f);
	else
		fclose(f);
	return found;
}

static int has_slow_kconfig(void)
{
	static int cached = -1;
	const char *path, *opt;
	char buf[PATH_MAX];

	if (cached >= 0)
		return cached;
	cached = 0;
	path = kconfig_path(buf, sizeof(buf));
	opt = path ? find_slow_kconfig(path) : NULL;
	if (opt) {
		tst_res(TINFO,
			"%s kernel option detected which might slow the execution",
			opt);
		cached = 1;
	}
	return cached;
}

static float parse_mul(const char *name, float min, float max)
{
	const char *env = getenv(name);
	float mul = 1;
	int ret;

	if (env) {
		ret = tst_parse_float(env, &mul, min, max);
		if (ret)
			tst_brk(TBROK, "Failed to parse %s: %s", name,
				tst_strerrno(ret));
	}
	return mul;
}

unsigned int tst_multiply_timeout(unsigned int timeout)
{
	float mul = parse_mul("LTP_TIMEOUT_MUL", 0.099, 10000);

	if (timeout < 1)
		tst_brk(TBROK, "timeout must to be >= 1! (%d)", timeout);
	if (has_slow_kconfig())
		timeout *= 4;

	return (unsigned int)((float)timeout * mul);
}

/* .runtime times $LTP_RUNTIME_MUL, at least 1 s */
static int multiply_runtime(int runtime)
{
	float r = (float)runtime * parse_mul("LTP_RUNTIME_MUL", 0.0099, 100);

	return r < 1 ? 1 : (int)r;
}

static void set_overall_timeout(void)
{
	unsigned int t;

	if (tst_test->timeout < TST_UNLIMITED_TIMEOUT)
		tst_brk(TBROK, "Invalid timeout value %i", tst_test->timeout);

	if (tst_test->timeout == TST_UNLIMITED_TIMEOUT) {
		ipc->overall_time = 0;
		tst_res(TINFO, "Test timeout is not limited");
		return;
	}

	t = tst_multiply_timeout(DEFAULT_TIMEOUT + tst_test->timeout) +
	    (unsigned int)ipc->runtime;
	ipc->overall_time = t;
	tst_res(TINFO, "Overall timeout per run is %uh %02um %02us",
		t / 3600, (t % 3600) / 60, t % 60);
}

unsigned int tst_remaining_runtime(void)
{
	struct timespec now;
	long elapsed;

	if (!ipc->runtime)
		tst_brk(TBROK, "Runtime not set!");

	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed = now.tv_sec - ipc->start_time.tv_sec;
	if (elapsed < ipc->runtime)
		return (unsigned int)(ipc->runtime - elapsed);
	return 0;
}

#define WRITE_MSG(msg) \
	do { \
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1)) {} \
	} while (0)

static void alarm_handler(int sig)
{
	(void)sig;

	WRITE_MSG("Test timeouted, sending SIGKILL!\n");
	kill(-test_pid, SIGKILL);
	alarm(5);

	if (++sigkill_retries > 10) {
		WRITE_MSG("Cannot kill test processes!\n");
		WRITE_MSG("Congratulation, likely test hit a kernel bug.\n");
		WRITE_MSG("Exiting uncleanly...\n");
		_exit(TFAIL);
	}
}

static void heartbeat_handler(int sig)
{
	(void)sig;

	alarm(ipc->overall_time);
	sigkill_retries = 0;
}

static void sigint_handler(int sig)
{
	(void)sig;

	if (test_pid > 0) {
		WRITE_MSG("Sending SIGKILL to test process...\n");
		kill(-test_pid, SIGKILL);
	}
}

/* Tells the library process the test is alive: restarts the watchdog. */
static void heartbeat(void)
{
	clock_gettime(CLOCK_MONOTONIC, &ipc->start_time);

	if (getppid() == 1) {
		tst_res(TFAIL, "Main test process might have exit!");
		kill(0, SIGKILL);
		exit(TBROK);
	}

	kill(getppid(), SIGUSR1);
}

/* ---- the test process ---- */

static int results_equal(const struct results *a, const struct results *b)
{
	return a->passed == b->passed && a->failed == b->failed &&
	       a->skipped == b->skipped && a->broken == b->broken;
}

static void run_tests(void)
{
	struct results saved;
	unsigned int i;

	if (!tst_test->test) {
		saved = ipc->results;
		heartbeat();
		tst_test->test_all();

		if (getpid() != ipc->main_pid)
			exit(0);

		tst_reap_children();

		if (results_equal(&saved, &ipc->results))
			tst_brk(TBROK, "Test haven't reported results!");
		return;
	}

	for (i = 0; i < tst_test->tcnt; i++) {
		saved = ipc->results;
		heartbeat();
		tst_test->test(i);

		if (getpid() != ipc->main_pid)
			exit(0);

		tst_reap_children();

		if (results_equal(&saved, &ipc->results))
			tst_brk(TBROK, "Test %i haven't reported results!", i);
	}
}

static void testrun(void)
{
	int i;

	ipc->main_pid = getpid();
	heartbeat();

	if (tst_test->setup)
		tst_test->setup();

	if (getpid() != ipc->main_pid)
		tst_brk(TBROK, "Runaway child in setup()!");

	for (i = 0; i < iterations; i++) {
		run_tests();
		heartbeat();
	}

	do_test_cleanup();
	exit(0);
}

static void fork_testrun(void)
{
	int status;

	SAFE_SIGNAL(SIGINT, sigint_handler);
	SAFE_SIGNAL(SIGTERM, sigint_handler);

	alarm(ipc->overall_time);

	tst_flush();
	test_pid = fork();
	if (test_pid < 0)
		tst_brk(TBROK | TERRNO, "fork()");

	if (!test_pid) {
		SAFE_SIGNAL(SIGALRM, SIG_DFL);
		SAFE_SIGNAL(SIGUSR1, SIG_DFL);
		SAFE_SIGNAL(SIGTERM, SIG_DFL);
		SAFE_SIGNAL(SIGINT, SIG_DFL);
		SAFE_SETPGID(0, 0);
		testrun();
	}

	SAFE_WAITPID(test_pid, &status, 0);
	alarm(0);
	SAFE_SIGNAL(SIGTERM, SIG_DFL);
	SAFE_SIGNAL(SIGINT, SIG_DFL);

	if (tst_test->forks_child && kill(-test_pid, SIGKILL) == 0)
		tst_res(TINFO, "Killed the leftover descendant processes");

	if (WIFEXITED(status) && WEXITSTATUS(status))
		tst_brk(TBROK, "Child returned with %i", WEXITSTATUS(status));

	if (ipc->abort_flag)
		return;

	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		tst_res(TINFO, "If you are running on slow machine, "
			"try exporting LTP_TIMEOUT_MUL > 1");
		tst_brk(TBROK, "Test killed! (timeout?)");
	}

	if (WIFSIGNALED(status))
		tst_brk(TBROK, "Test killed by %s!", tst_strsig(WTERMSIG(status)));
}

/* ---- entry ---- */

static void check_test_fn(void)
{
	if (!tst_test->test && !tst_test->test_all)
		tst_brk(TBROK, "No test function specified");
	if (tst_test->test && tst_test->test_all)
		tst_brk(TBROK, "You can define only one test function");
	if (tst_test->test && !tst_test->tcnt)
		tst_brk(TBROK, "Number of tests (tcnt) must be > 0");
	if (!tst_test->test && tst_test->tcnt)
		tst_brk(TBROK, "You can define tcnt only for test()");
}

void tst_run_tcases(int argc, char *argv[], struct tst_test *self)
{
	const char *const *ctrl;
	struct tst_cg_opts cg_opts = {0};
	struct utsname uts;
	const char *slash;

	tst_test = self;

	tcid = argv[0] && argv[0][0] ? argv[0] : "ltp_empty_argv";
	slash = strrchr(tcid, '/');
	if (slash)
		tcid = slash + 1;

	if (!getcwd(startwd, sizeof(startwd)))
		startwd[0] = '\0';

	check_test_fn();
	setup_ipc();
	parse_opts(argc, argv);

	if (tst_test->needs_root && geteuid() != 0)
		tst_brk(TCONF, "Test needs to be run as root");

	if (tst_test->runtime < 0)
		tst_brk(TBROK, "Invalid runtime value %i", tst_test->runtime);
	if (tst_test->runtime)
		ipc->runtime = multiply_runtime(tst_test->runtime);

	if (tst_test->needs_tmpdir || tst_test->needs_checkpoints)
		make_tmpdir();

	if (tst_test->needs_cgroup_ctrls) {
		cg_opts.needs_ver = tst_test->needs_cgroup_ver;
		for (ctrl = tst_test->needs_cgroup_ctrls; *ctrl; ctrl++)
			tst_cg_require(*ctrl, &cg_opts);
		tst_cg_init();
	} else if (tst_test->needs_cgroup_ver) {
		tst_brk(TBROK, "tst_test->needs_cgroup_ctrls must be set");
	}

	SAFE_SIGNAL(SIGALRM, alarm_handler);
	SAFE_SIGNAL(SIGUSR1, heartbeat_handler);

	tst_res(TINFO, "LTP version: sfork ltp-tests/lib");
	uname(&uts);
	tst_res(TINFO, "Tested kernel: %s %s %s", uts.release, uts.version,
		uts.machine);

	set_overall_timeout();
	fork_testrun();
	do_exit(0);
}
