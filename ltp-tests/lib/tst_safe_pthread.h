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

int safe_pthread_mutex_init(const char *file, const int lineno,
			    pthread_mutex_t *mutex,
			    const pthread_mutexattr_t *attr);
#define SAFE_PTHREAD_MUTEX_INIT(mutex, attr) \
	safe_pthread_mutex_init(__FILE__, __LINE__, (mutex), (attr))

#endif /* TST_SAFE_PTHREAD_H__ */
