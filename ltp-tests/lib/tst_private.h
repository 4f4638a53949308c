/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internal interfaces between the files of our LTP-API library (not part
 * of LTP's API; tests must not include this).
 */
#ifndef TST_PRIVATE_H__
#define TST_PRIVATE_H__

#include <stdint.h>

/* checkpoint futexes: set up by tst_test.c when .needs_checkpoints */
extern volatile uint32_t *tst_futexes;
extern unsigned int tst_max_futexes;

/* the running test's description (NULL before tst_run_tcases) */
extern struct tst_test *tst_test;

/* the directory the test was started from */
const char *tst_get_startwd(void);

/* 1 when the library made the test's temporary directory */
int tst_tmpdir_created(void);

#endif /* TST_PRIVATE_H__ */
