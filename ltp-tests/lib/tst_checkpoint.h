/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Checkpoints: futex-based waits and wakes between the processes (and
 * threads) of a test, on a page shared by every process the test forks.
 * Written for sfork from LTP's documented API (include/tst_checkpoint.h);
 * the implementation (tst_checkpoint.c) is our own.
 *
 * Needs .needs_checkpoints = 1.  WAIT gives up after 10 s, WAKE retries for
 * 10 s until the requested number of waiters was woken; both end the test
 * with TBROK on error or timeout.
 */
#ifndef TST_CHECKPOINT__
#define TST_CHECKPOINT__

void tst_safe_checkpoint_wait(const char *file, const int lineno,
			      void (*cleanup_fn)(void), unsigned int id,
			      unsigned int msec_timeout);
void tst_safe_checkpoint_wake(const char *file, const int lineno,
			      void (*cleanup_fn)(void), unsigned int id,
			      unsigned int nr_wake);

/* raw forms: 0 or -1 with errno (ETIMEDOUT, EOVERFLOW for a bad id) */
int tst_checkpoint_wait(unsigned int id, unsigned int msec_timeout);
int tst_checkpoint_wake(unsigned int id, unsigned int nr_wake,
			unsigned int msec_timeout);

#define TST_CHECKPOINT_WAIT(id) \
	tst_safe_checkpoint_wait(__FILE__, __LINE__, NULL, (id), 0)

#define TST_CHECKPOINT_WAIT2(id, msec_timeout) \
	tst_safe_checkpoint_wait(__FILE__, __LINE__, NULL, (id), (msec_timeout))

#define TST_CHECKPOINT_WAKE(id) \
	tst_safe_checkpoint_wake(__FILE__, __LINE__, NULL, (id), 1)

#define TST_CHECKPOINT_WAKE2(id, nr_wake) \
	tst_safe_checkpoint_wake(__FILE__, __LINE__, NULL, (id), (nr_wake))

#define TST_CHECKPOINT_WAKE_AND_WAIT(id) \
	do { \
		tst_safe_checkpoint_wake(__FILE__, __LINE__, NULL, (id), 1); \
		tst_safe_checkpoint_wait(__FILE__, __LINE__, NULL, (id), 0); \
	} while (0)

#endif /* TST_CHECKPOINT__ */
