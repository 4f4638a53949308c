// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * Process-shared futexes, mutexes, condition variables and
 * semaphores work inside a region.
 *
 * Adapts LTP's futex tests (futex_wait01/futex_wake02: a FUTEX_WAKE wakes a
 * FUTEX_WAIT of another process on shared memory) and mem/shmt/shmt04 to
 * sfork.  All futex calls are without FUTEX_PRIVATE_FLAG.  The futex word
 * is in the last page of the region, which (lazy) nobody touched before.
 * For the direction -d (bi, p2c and c2p when -d is not given), -a and -s:
 *
 *  0. the read-only side (bi: the child) calls FUTEX_WAIT on the word and
 *     the other side's FUTEX_WAKE wakes it (the word is never changed, so
 *     only a wake through the same futex key ends the wait); then the
 *     writer stores a new value and the waiter's FUTEX_WAIT on the old
 *     value fails with EAGAIN at once (it reads the writer's value);
 *  1. the writer (bi: the parent) waits and the read-only side wakes it;
 *  2. 200 rounds of hand-off: the writer publishes a round number and
 *     wakes, the read-only side waits for it (FUTEX_WAIT) and wakes the
 *     writer back (FUTEX_WAKE on a second word);
 *  3. bidirectional only: a PTHREAD_PROCESS_SHARED mutex guards a counter
 *     both sides increment 2000 times each (a non-atomic read, yield,
 *     write), then a PTHREAD_PROCESS_SHARED condition variable makes them
 *     take 200 strict turns; the final count is exact;
 *  4. bidirectional only: the same counter guarded by
 *     sem_init(..., 1, 1).
 *
 * Every wait has a timeout, so a module whose region pages give the two
 * sides different futex keys (or EFAULT, for pages without a mapping)
 * fails with a timeout or an error instead of hanging; lost updates show
 * in the final count.
 */

#include <linux/futex.h>
#include <pthread.h>
#include <semaphore.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "tst_test.h"
#include "tst_safe_pthread.h"
#include "sfork_test.h"

#define CP_PARENT	0
#define CP_CHILD	1

#define WAIT_SEC	10
#define HANDOFF_ROUNDS	200
#define INCREMENTS	2000
#define TURNS		200

struct sync_area {
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	sem_t sem;
	uint32_t turn;
	uint64_t counter;
	uint64_t turns_taken[2];
};

static long futex(volatile uint32_t *uaddr, int op, uint32_t val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static long futex_wait(volatile uint32_t *uaddr, uint32_t val)
{
	struct timespec ts = { .tv_sec = WAIT_SEC };

	return futex(uaddr, FUTEX_WAIT, val, &ts);
}

/* FUTEX_WAKE until one waiter is woken; returns the tries or -1 */
static int wake_one(volatile uint32_t *uaddr, const char *who)
{
	int tries;
	long ret;

	for (tries = 1; tries <= WAIT_SEC * 1000; tries++) {
		ret = futex(uaddr, FUTEX_WAKE, 1, NULL);
		if (ret == 1)
			return tries;
		if (ret < 0) {
			tst_res(TFAIL | TERRNO, "%s: FUTEX_WAKE", who);
			return -1;
		}
		usleep(1000);
	}
	tst_res(TFAIL, "%s: FUTEX_WAKE woke nobody in %d s", who, WAIT_SEC);
	return -1;
}

static volatile uint32_t *word_at(void *p, unsigned int nr)
{
	return (volatile uint32_t *)((char *)p + sfork_region_size - 64) + nr;
}

static const char *side_name(int is_child, unsigned int flags)
{
	int ro = is_child ? !sfork_child_writes(flags) : !sfork_parent_writes(flags);

	if (is_child)
		return ro ? "read-only child" : "writing child";
	return ro ? "read-only parent" : "writing parent";
}

/* ---- cases 0 and 1 ---- */

static void waiter(void *p, unsigned int flags, int is_child, int check_again)
{
	const char *who = side_name(is_child, flags);
	volatile uint32_t *w = word_at(p, 0);

	TST_CHECKPOINT_WAKE(is_child ? CP_PARENT : CP_CHILD);
	TST_EXP_PASS(futex_wait(w, 0),
		     "%s: FUTEX_WAIT woken by the other side's FUTEX_WAKE", who);

	if (!check_again)
		return;

	TST_CHECKPOINT_WAIT2(is_child ? CP_CHILD : CP_PARENT, 30000);
	TST_EXP_FAIL(futex_wait(w, 0), EAGAIN,
		     "%s: FUTEX_WAIT on the old value (0)", who);
	TST_EXP_EQ_LU(*w, 7);
}

static void waker(void *p, unsigned int flags, int is_child, int store_after)
{
	const char *who = side_name(is_child, flags);
	volatile uint32_t *w = word_at(p, 0);
	int tries;

	TST_CHECKPOINT_WAIT2(is_child ? CP_CHILD : CP_PARENT, 30000);
	tries = wake_one(w, who);
	if (tries > 0)
		tst_res(TPASS, "%s: FUTEX_WAKE woke the other side's waiter (try %d)",
			who, tries);

	if (!store_after)
		return;

	*w = 7;
	TST_CHECKPOINT_WAKE(is_child ? CP_PARENT : CP_CHILD);
}

static void case_wait_wake(unsigned int flags, int ro_waits)
{
	/* the waiting process: the read-only side (bi: child) or the writer */
	int waiter_is_child;
	void *addr = NULL;
	int status;
	pid_t pid;

	if (flags & SFORK_BIDIRECTIONAL)
		waiter_is_child = ro_waits;
	else
		waiter_is_child = ro_waits == sfork_reader_is_child(flags);

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (waiter_is_child)
			waiter(addr, flags, 1, ro_waits);
		else
			waker(addr, flags, 1, ro_waits);
		exit(0);
	}

	if (waiter_is_child)
		waker(addr, flags, 0, ro_waits);
	else
		waiter(addr, flags, 0, ro_waits);

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- case 2: hand-off ---- */

/* writer: round number in word 0, wake; then wait for the wake on word 1 */
static void handoff_writer(void *p, const char *who)
{
	volatile uint32_t *round = word_at(p, 0), *back = word_at(p, 1);
	uint32_t i;

	for (i = 1; i <= HANDOFF_ROUNDS; i++) {
		__atomic_store_n(round, i, __ATOMIC_SEQ_CST);
		if (futex(round, FUTEX_WAKE, 1, NULL) < 0) {
			tst_res(TFAIL | TERRNO, "%s: FUTEX_WAKE round %u", who, i);
			return;
		}
		TEST(futex_wait(back, 0));
		if (TST_RET && TST_ERR != EINTR) {
			tst_res(TFAIL | TTERRNO, "%s: FUTEX_WAIT for the reply to round %u",
				who, i);
			return;
		}
	}
	tst_res(TPASS, "%s: %d rounds handed off and answered", who,
		HANDOFF_ROUNDS);
}

/* reader: wait until word 0 shows the round, then wake the writer */
static void handoff_reader(void *p, const char *who)
{
	volatile uint32_t *round = word_at(p, 0), *back = word_at(p, 1);
	uint32_t i, v;

	for (i = 1; i <= HANDOFF_ROUNDS; i++) {
		while ((v = __atomic_load_n(round, __ATOMIC_SEQ_CST)) != i) {
			if (v > i) {
				tst_res(TFAIL, "%s: round %u skipped (word %u)",
					who, i, v);
				return;
			}
			TEST(futex_wait(round, v));
			if (TST_RET && TST_ERR != EAGAIN && TST_ERR != EINTR) {
				tst_res(TFAIL | TTERRNO, "%s: FUTEX_WAIT for round %u (word %u)",
					who, i, v);
				return;
			}
		}
		if (wake_one(back, who) < 0)
			return;
	}
	tst_res(TPASS, "%s: saw all %d rounds through FUTEX_WAIT and answered each with FUTEX_WAKE",
		who, HANDOFF_ROUNDS);
}

static void case_handoff(unsigned int flags)
{
	int writer_is_child = !sfork_parent_writes(flags);
	void *addr = NULL;
	int status;
	pid_t pid;

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	if (!pid) {
		if (writer_is_child)
			handoff_writer(addr, side_name(1, flags));
		else
			handoff_reader(addr, side_name(1, flags));
		exit(0);
	}

	if (writer_is_child)
		handoff_reader(addr, side_name(0, flags));
	else
		handoff_writer(addr, side_name(0, flags));

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);
	SAFE_MUNMAP(addr, sfork_region_size);
}

/* ---- cases 3 and 4: pthread and semaphore, bidirectional ---- */

static void deadline(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += 30;
}

/*
 * 0 when call succeeded, else TFAIL and 1: ret is what it returned, -1 with
 * errno for sem_*(), the error number for pthread_*().
 */
static int sync_failed(int ret, int use_sem, const char *who, const char *call)
{
	if (!ret)
		return 0;
	if (use_sem)
		tst_res(TFAIL | TERRNO, "%s: %s", who, call);
	else
		tst_res(TFAIL, "%s: %s: %s", who, call, tst_strerrno(ret));
	return 1;
}

static int lock(struct sync_area *s, int use_sem, const char *who)
{
	struct timespec ts;

	deadline(&ts);
	if (use_sem)
		return sync_failed(sem_timedwait(&s->sem, &ts), 1, who,
				   "sem_timedwait");
	return sync_failed(pthread_mutex_timedlock(&s->mutex, &ts), 0, who,
			   "pthread_mutex_timedlock");
}

static int unlock(struct sync_area *s, int use_sem, const char *who)
{
	if (use_sem)
		return sync_failed(sem_post(&s->sem), 1, who, "sem_post");
	return sync_failed(pthread_mutex_unlock(&s->mutex), 0, who,
			   "pthread_mutex_unlock");
}

static int increment(struct sync_area *s, int use_sem, const char *who)
{
	volatile uint64_t *counter = &s->counter;
	uint64_t v;
	int i;

	for (i = 0; i < INCREMENTS; i++) {
		if (lock(s, use_sem, who))
			return 1;
		v = *counter;
		if (!(i % 64))
			sched_yield();
		*counter = v + 1;
		if (unlock(s, use_sem, who))
			return 1;
	}
	return 0;
}

/* TURNS strict turns through the condition variable: me is 0 or 1 */
static int take_turns(struct sync_area *s, unsigned int me, const char *who)
{
	volatile uint32_t *turn = &s->turn;
	struct timespec ts;
	int i, ret;

	for (i = 0; i < TURNS; i++) {
		if (lock(s, 0, who))
			return 1;
		deadline(&ts);
		while (*turn != me) {
			ret = pthread_cond_timedwait(&s->cond, &s->mutex, &ts);
			if (ret) {
				tst_res(TFAIL, "%s: pthread_cond_timedwait (turn %d): %s",
					who, i, tst_strerrno(ret));
				pthread_mutex_unlock(&s->mutex);
				return 1;
			}
		}
		s->counter++;
		s->turns_taken[me]++;
		*turn = !me;
		ret = pthread_cond_broadcast(&s->cond);
		if (ret) {
			tst_res(TFAIL, "%s: pthread_cond_broadcast: %s", who,
				tst_strerrno(ret));
			pthread_mutex_unlock(&s->mutex);
			return 1;
		}
		if (unlock(s, 0, who))
			return 1;
	}
	return 0;
}

static void init_sync(struct sync_area *s, int use_sem)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	int ret;

	if (use_sem) {
		if (sem_init(&s->sem, 1, 1))
			tst_brk(TBROK | TERRNO, "sem_init(..., 1, 1)");
		return;
	}

	SAFE_PTHREAD_MUTEXATTR_INIT(&ma);
	ret = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	if (ret)
		tst_brk(TBROK, "pthread_mutexattr_setpshared: %s", tst_strerrno(ret));
	SAFE_PTHREAD_MUTEX_INIT(&s->mutex, &ma);
	SAFE_PTHREAD_MUTEXATTR_DESTROY(&ma);

	ret = pthread_condattr_init(&ca);
	if (!ret)
		ret = pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	if (!ret)
		ret = pthread_cond_init(&s->cond, &ca);
	if (ret)
		tst_brk(TBROK, "pthread_cond_init (shared): %s", tst_strerrno(ret));
	pthread_condattr_destroy(&ca);
}

static void case_shared_sync(unsigned int flags, int use_sem)
{
	const char *what = use_sem ? "sem_init(..., 1, 1) semaphore" :
				     "PTHREAD_PROCESS_SHARED mutex";
	struct sync_area *s;
	void *addr = NULL;
	int status;
	pid_t pid;

	if (!(flags & SFORK_BIDIRECTIONAL)) {
		tst_res(TCONF, "%s needs -d bi (both sides store)", what);
		return;
	}
	if (sfork_region_size < sizeof(*s) + 64)
		tst_brk(TBROK, "region too small");

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	s = addr;
	if (!pid) {
		TST_CHECKPOINT_WAIT(CP_CHILD);
		if (increment(s, use_sem, "child"))
			exit(1);
		if (!use_sem && take_turns(s, 1, "child"))
			exit(1);
		exit(0);
	}

	init_sync(s, use_sem);
	TST_CHECKPOINT_WAKE(CP_CHILD);
	increment(s, use_sem, "parent");
	if (!use_sem)
		take_turns(s, 0, "parent");

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0("child", status);

	if (use_sem) {
		if (s->counter == 2 * INCREMENTS)
			tst_res(TPASS, "%s: counter %llu == 2 x %d", what,
				(unsigned long long)s->counter, INCREMENTS);
		else
			tst_res(TFAIL, "%s: counter %llu != 2 x %d", what,
				(unsigned long long)s->counter, INCREMENTS);
		sem_destroy(&s->sem);
	} else {
		if (s->counter == 2 * INCREMENTS + TURNS * 2 &&
		    s->turns_taken[0] == TURNS && s->turns_taken[1] == TURNS)
			tst_res(TPASS, "%s and condition variable: counter %llu == 2 x %d + 2 x %d turns",
				what, (unsigned long long)s->counter,
				INCREMENTS, TURNS);
		else
			tst_res(TFAIL, "%s and condition variable: counter %llu (expected %d), turns %llu/%llu",
				what, (unsigned long long)s->counter,
				2 * INCREMENTS + 2 * TURNS,
				(unsigned long long)s->turns_taken[0],
				(unsigned long long)s->turns_taken[1]);
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->mutex);
	}
	SAFE_MUNMAP(addr, sfork_region_size);
}

static const char *const case_names[] = {
	"read-only side waits, writer wakes",
	"writer waits, read-only side wakes",
	"hand-off in both directions",
	"process-shared mutex and condition variable",
	"process-shared semaphore",
};

static void run_case(unsigned int n, unsigned int flags)
{
	switch (n) {
	case 0:
	case 1:
		case_wait_wake(flags, n == 0);
		break;
	case 2:
		case_handoff(flags);
		break;
	case 3:
	case 4:
		case_shared_sync(flags, n == 4);
		break;
	}
}

static void run(unsigned int n)
{
	sfork_for_each_dir_case(n, case_names[n], run_case);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Direction bi|p2c|c2p (default: all three)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = sfork_setup_all_dirs,
	.test = run,
	.tcnt = ARRAY_SIZE(case_names),
	.forks_child = 1,
	.needs_checkpoints = 1,
	.timeout = 180,
};
