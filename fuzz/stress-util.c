// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The helpers every sfork-stress mode uses: messages, clocks, procfs and
 * debugfs readers, reaping, the store probe of a read-only side and the
 * futex flag through which the two sides of a region hand over.
 */
#include "stress.h"

const char *code_name(int c)
{
	switch (c) {
	case E_TIMEOUT: return "timed out waiting for the other side";
	case E_MISMATCH: return "data mismatch";
	case E_NOTZERO: return "fresh region not zero-filled";
	case E_PARENT_GONE: return "parent died while the child waited";
	case E_WRITE_FAULTED: return "store on a writable side faulted";
	case E_RO_STORE_OK: return "store on a read-only side went through";
	case E_WRONG_SIGNAL: return "store on a read-only side raised SIGBUS, not SIGSEGV";
	case E_WRONG_CODE: return "read-only store: SIGSEGV si_code is not SEGV_ACCERR";
	case E_WRONG_ADDR: return "read-only store: si_addr is not the faulting address";
	case E_RO_CHANGED: return "read-only store faulted but changed the byte";
	case E_SFORK: return "sfork failed";
	case E_OVER_LIMIT: return "more pages touched than memory.max allows";
	case E_CHILD_STATUS: return "a child ended unexpectedly";
	case E_EAGER_OK: return "eager region beyond memory.max was created";
	case E_EAGER_ERRNO: return "eager region beyond memory.max failed, but not with ENOMEM";
	case E_LEFTOVER: return "a failed sfork left a child or a mapping behind";
	default: return "unexpected exit code";
	}
}

const unsigned int dir_flag[3] = { SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD,
					  SFORK_CHILD_TO_PARENT };
const char *const dir_name[3] = { "bi", "p2c", "c2p" };
const unsigned int alloc_flag[3] = { 0, SFORK_LAZY, SFORK_EAGER };
const char *const alloc_name[3] = { "auto", "lazy", "eager" };
int verbose;
const char *mode;

void failf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "sfork-stress %s: FAIL (pid %d): %s\n", mode, getpid(), buf);
}

void info(const char *fmt, ...)
{
	va_list ap;

	printf("sfork-stress %s: ", mode);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- small file helpers ------------------------------------------------- */

int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), err;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	err = errno;
	close(fd);
	errno = err;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

int read_str(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n = 1;

	if (fd < 0)
		return -1;
	/* procfs hands out a page or so per read(): read to the end. */
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0)
		return -1;
	buf[got] = 0;
	return 0;
}

/* The value of a `key value` line, or -1. */
long read_keyed(const char *path, const char *key)
{
	char buf[32768], *p;
	size_t kl = strlen(key);

	if (read_str(path, buf, sizeof(buf)))
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && (p[kl] == ' ' || p[kl] == '\t'))
			return strtol(p + kl + 1, NULL, 10);
	return -1;
}

long read_long(const char *path)
{
	char buf[64];

	if (read_str(path, buf, sizeof(buf)))
		return -1;
	return strtol(buf, NULL, 10);
}

long stat_get(const char *key)
{
	return read_keyed(STATS, key);
}

/* Wait (up to 2 s, as the contract allows) for regions_live to reach @want. */
long settle_regions(long want)
{
	long v = stat_get("regions_live");

	for (int i = 0; i < 40 && v != want && v >= 0; i++) {
		sleep_us(50000);
		v = stat_get("regions_live");
	}
	return v;
}

size_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; break;
	}
	return v;
}

/* Reap everything left (we are a subreaper): 0 if all went, -1 on timeout. */
int reap_all(double timeout, long *n)
{
	double end = now_s() + timeout;
	int st;

	for (;;) {
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p > 0) {
			if (n)
				(*n)++;
			continue;
		}
		if (p < 0 && errno == ECHILD)
			return 0;
		if (now_s() > end)
			return -1;
		sleep_us(2000);
	}
}

void kill_all_children(void)
{
	/* Only our own descendants: we are a subreaper, orphans are ours. */
	char path[64], buf[4096];
	int me = getpid();

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", me, me);
	if (read_str(path, buf, sizeof(buf)) == 0)
		for (char *p = strtok(buf, " \n"); p; p = strtok(NULL, " \n"))
			kill(atoi(p), SIGKILL);
}

/* ---- the read-only side's store ------------------------------------------ */

/* The contract's read-only side: SIGSEGV, SEGV_ACCERR, at the address, unchanged. */
int check_ro_store(char *p)
{
	char before = *(volatile char *)p;
	struct probe pr;
	int sig = probe_access(p, 1, (char)(before ^ 0x5a), &pr);

	if (!sig)
		return E_RO_STORE_OK;
	if (sig != SIGSEGV)
		return E_WRONG_SIGNAL;
	if (pr.code != SEGV_ACCERR)
		return E_WRONG_CODE;
	if (pr.addr != p)
		return E_WRONG_ADDR;
	if (*(volatile char *)p != before)
		return E_RO_CHANGED;
	return 0;
}

/* ---- futex flag inside a region (shared futex, contract) ----------------- */

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

void flag_set(uint32_t *flag)
{
	__atomic_store_n(flag, 1, __ATOMIC_RELEASE);
	futex(flag, FUTEX_WAKE, INT_MAX, NULL);
}

/* Wait for *flag != 0: 0, E_TIMEOUT or E_PARENT_GONE. */
int flag_wait(uint32_t *flag, double timeout, pid_t parent)
{
	double end = now_s() + timeout;
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		futex(flag, FUTEX_WAIT, 0, &ts);
		if (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
			break;
		if (parent && getppid() != parent)
			return E_PARENT_GONE;
		if (now_s() > end)
			return E_TIMEOUT;
	}
	return 0;
}
