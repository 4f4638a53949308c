// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Checkpoints on futexes in the test's shared page (set up by tst_test.c
 * when .needs_checkpoints).  Written for sfork from LTP's documented API
 * (include/tst_checkpoint.h: 10 s default wait timeout, wake retried for
 * 10 s until nr_wake waiters were woken); no LTP code is used.
 *
 * The futexes are process-shared (no FUTEX_PRIVATE_FLAG) because the page
 * is a MAP_SHARED mapping inherited by every process the test forks.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"
#include "tst_private.h"

#define DEFAULT_MSEC_TIMEOUT 10000

static long futex(volatile uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *timeout)
{
	return syscall(SYS_futex, uaddr, op, val, timeout, NULL, 0);
}

static int check_id(unsigned int id)
{
	if (!tst_max_futexes)
		tst_brk(TBROK, "Set test.needs_checkpoints = 1");

	if (id >= tst_max_futexes) {
		errno = EOVERFLOW;
		return -1;
	}
	return 0;
}

/* As in LTP, checkpoint timeouts go through tst_multiply_timeout(). */
static unsigned int scaled(unsigned int msec)
{
	return msec ? tst_multiply_timeout(msec) : 0;
}

int tst_checkpoint_wait(unsigned int id, unsigned int msec_timeout)
{
	struct timespec ts;
	long ret;

	if (check_id(id))
		return -1;
	msec_timeout = scaled(msec_timeout);
	ts.tv_sec = msec_timeout / 1000;
	ts.tv_nsec = (long)(msec_timeout % 1000) * 1000000;

	/*
	 * The futex word never changes: a waiter sleeps until a wake, which
	 * WAKE retries until it found enough sleepers.
	 */
	do {
		ret = futex(&tst_futexes[id], FUTEX_WAIT, tst_futexes[id], &ts);
	} while (ret == -1 && errno == EINTR);

	return ret ? -1 : 0;
}

int tst_checkpoint_wake(unsigned int id, unsigned int nr_wake,
			unsigned int msec_timeout)
{
	unsigned int woken = 0, waited_ms = 0;
	long ret;

	if (check_id(id))
		return -1;
	msec_timeout = scaled(msec_timeout);

	for (;;) {
		ret = futex(&tst_futexes[id], FUTEX_WAKE, nr_wake - woken, NULL);
		if (ret < 0)
			return -1;
		woken += (unsigned int)ret;
		if (woken >= nr_wake)
			return 0;

		if (waited_ms >= msec_timeout) {
			errno = ETIMEDOUT;
			return -1;
		}
		usleep(1000);
		waited_ms++;
	}
}

void tst_safe_checkpoint_wait(const char *file, const int lineno,
			      void (*cleanup_fn)(void), unsigned int id,
			      unsigned int msec_timeout)
{
	(void)cleanup_fn;

	if (!msec_timeout)
		msec_timeout = DEFAULT_MSEC_TIMEOUT;

	if (tst_checkpoint_wait(id, msec_timeout))
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "tst_checkpoint_wait(%u, %i) failed (waited %u ms)", id,
			 msec_timeout, scaled(msec_timeout));
}

void tst_safe_checkpoint_wake(const char *file, const int lineno,
			      void (*cleanup_fn)(void), unsigned int id,
			      unsigned int nr_wake)
{
	(void)cleanup_fn;

	if (tst_checkpoint_wake(id, nr_wake, DEFAULT_MSEC_TIMEOUT))
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "tst_checkpoint_wake(%u, %u, %i) failed", id, nr_wake,
			 DEFAULT_MSEC_TIMEOUT);
}
