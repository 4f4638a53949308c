/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * SAFE_PTHREAD_*() of the LTP test API: the call, or TBROK with the pthread
 * error at the caller's file:line.  Written for sfork from LTP's documented
 * API (include/tst_safe_pthread.h); the implementation is our own.
 */
#ifndef TST_SAFE_PTHREAD_H__
#define TST_SAFE_PTHREAD_H__

#include <pthread.h>

int safe_pthread_create(const char *file, const int lineno,
			pthread_t *thread_id, const pthread_attr_t *attr,
			void *(*thread_fn)(void *), void *arg);
#define SAFE_PTHREAD_CREATE(thread_id, attr, thread_fn, arg) \
	safe_pthread_create(__FILE__, __LINE__, (thread_id), (attr), \
			    (thread_fn), (arg))

int safe_pthread_join(const char *file, const int lineno,
		      pthread_t thread_id, void **retval);
#define SAFE_PTHREAD_JOIN(thread_id, retval) \
	safe_pthread_join(__FILE__, __LINE__, (thread_id), (retval))

int safe_pthread_mutexattr_init(const char *file, const int lineno,
				pthread_mutexattr_t *attr);
#define SAFE_PTHREAD_MUTEXATTR_INIT(attr) \
	safe_pthread_mutexattr_init(__FILE__, __LINE__, (attr))

int safe_pthread_mutexattr_destroy(const char *file, const int lineno,
				   pthread_mutexattr_t *attr);
#define SAFE_PTHREAD_MUTEXATTR_DESTROY(attr) \
	safe_pthread_mutexattr_destroy(__FILE__, __LINE__, (attr))

int safe_pthread_mutexattr_settype(const char *file, const int lineno,
				   pthread_mutexattr_t *attr, int type);
#define SAFE_PTHREAD_MUTEXATTR_SETTYPE(attr, type) \
	safe_pthread_mutexattr_settype(__FILE__, __LINE__, (attr), (type))

int safe_pthread_mutex_init(const char *file, const int lineno,
			    pthread_mutex_t *mutex,
			    const pthread_mutexattr_t *attr);
#define SAFE_PTHREAD_MUTEX_INIT(mutex, attr) \
	safe_pthread_mutex_init(__FILE__, __LINE__, (mutex), (attr))

int safe_pthread_mutex_destroy(const char *file, const int lineno,
			       pthread_mutex_t *mutex);
#define SAFE_PTHREAD_MUTEX_DESTROY(mutex) \
	safe_pthread_mutex_destroy(__FILE__, __LINE__, (mutex))

int safe_pthread_mutex_lock(const char *file, const int lineno,
			    pthread_mutex_t *mutex);
#define SAFE_PTHREAD_MUTEX_LOCK(mutex) \
	safe_pthread_mutex_lock(__FILE__, __LINE__, (mutex))

/* returns 0 or EBUSY; any other error is TBROK */
int safe_pthread_mutex_trylock(const char *file, const int lineno,
			       pthread_mutex_t *mutex);
#define SAFE_PTHREAD_MUTEX_TRYLOCK(mutex) \
	safe_pthread_mutex_trylock(__FILE__, __LINE__, (mutex))

int safe_pthread_mutex_unlock(const char *file, const int lineno,
			      pthread_mutex_t *mutex);
#define SAFE_PTHREAD_MUTEX_UNLOCK(mutex) \
	safe_pthread_mutex_unlock(__FILE__, __LINE__, (mutex))

int safe_pthread_kill(const char *file, const int lineno,
		      pthread_t thread, int sig);
#define SAFE_PTHREAD_KILL(thread, sig) \
	safe_pthread_kill(__FILE__, __LINE__, (thread), (sig))

#endif /* TST_SAFE_PTHREAD_H__ */
