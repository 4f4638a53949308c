/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * TEST() and the TST_EXP_*() checks of the LTP test API.  Written for sfork
 * from LTP's documented API (doc/ and include/tst_test_macros.h: names,
 * arguments, what is printed); the implementation is our own.
 *
 * Every TST_EXP_*(SCALL, ...) takes optional printf-like arguments after
 * its fixed ones: when given they describe the call in the messages,
 * otherwise the call's text (#SCALL) does.  Messages printed:
 *   TST_EXP_PASS      "<desc> passed" | "<desc> failed: ERR" | "<desc> invalid retval N: ERR"
 *   TST_EXP_FD/PID/POSITIVE "<desc> returned fd|pid| N" | "<desc> failed: ERR" | "<desc> invalid retval N: ERR"
 *   TST_EXP_VAL       "<desc> passed" | "<desc> retval N != V: ERR"
 *   TST_EXP_FAIL(2)   "<desc> : ERR" | "<desc> succeeded" | "<desc> invalid retval N: ERR"
 *                     | "<desc> expected EXPECTED: ERR"
 *   TST_EXP_EQ_*      "A == B (v)" | "A (a) != B (b)"
 *   TST_EXP_EXPR      "Expect: <fmt>" as TPASS or TFAIL
 * Each sets TST_PASS to 1 when the check passed, 0 otherwise.
 */
#ifndef TST_TEST_MACROS_H__
#define TST_TEST_MACROS_H__

#include <stdbool.h>
#include <stddef.h>
#include <errno.h>

extern long TST_RET;
extern int TST_ERR;
extern int TST_PASS;
extern void *TST_RET_PTR;

#define TEST(SCALL) \
	do { \
		errno = 0; \
		TST_RET = (SCALL); \
		TST_ERR = errno; \
	} while (0)

#define TESTPTR(SCALL) \
	do { \
		errno = 0; \
		TST_RET_PTR = (void *)(SCALL); \
		TST_ERR = errno; \
	} while (0)

/* true if err is one of the cnt errnos in errs */
bool tst_errno_in_set(int err, const int *errs, int cnt);
/* "EINVAL, EFAULT" into buf, which must hold 20 bytes per errno */
const char *tst_errno_names(char *buf, const int *errs, int cnt);

/*
 * Writes the description into buf: the optional printf-like arguments that
 * follow scall (terminated by a NULL the macros add), or scall itself.
 */
const char *tst_exp_desc_(char *buf, size_t size, const char *scall, ...);

#define TST_DESC_SIZE_ 512
#define TST_DESC_(SSCALL, ...) \
	tst_exp_desc_(tst_desc__, sizeof(tst_desc__), (SSCALL), \
		      ##__VA_ARGS__, (const char *)NULL)

/* Reports through tst_res_() at the macro user's file and line. */
#define TST_EXP_MSG_(TTYPE, SSCALL, FMT, ...) \
	tst_res_(__FILE__, __LINE__, (TTYPE), FMT, ##__VA_ARGS__)

/* ---- success expected, non-negative return ---- */

/*
 * The call must not return -1 (TFAIL "failed") nor a value for which
 * BAD_RET holds (TFAIL "invalid retval"): TST_RET < 0 for the fd/pid forms,
 * TST_RET != 0 for TST_EXP_PASS.
 */
#define TST_EXP_OK_CHECK_(BAD_RET, SCALL, SSCALL, ...) \
	do { \
		char tst_desc__[TST_DESC_SIZE_]; \
		TEST(SCALL); \
		TST_PASS = 0; \
		if (TST_RET == -1) { \
			TST_EXP_MSG_(TFAIL | TTERRNO, SSCALL, "%s failed", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__)); \
			break; \
		} \
		if (BAD_RET) { \
			TST_EXP_MSG_(TFAIL | TTERRNO, SSCALL, \
				     "%s invalid retval %ld", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__), TST_RET); \
			break; \
		} \
		TST_PASS = 1; \
	} while (0)

#define TST_EXP_POSITIVE_CHECK_(SCALL, SSCALL, ...) \
	TST_EXP_OK_CHECK_(TST_RET < 0, SCALL, SSCALL, ##__VA_ARGS__)

#define TST_EXP_POSITIVE_REPORT_(WHAT, SCALL, SSCALL, ...) \
	({ \
		TST_EXP_POSITIVE_CHECK_(SCALL, SSCALL, ##__VA_ARGS__); \
		if (TST_PASS) { \
			char tst_desc__[TST_DESC_SIZE_]; \
			TST_EXP_MSG_(TPASS, SSCALL, "%s returned " WHAT "%ld", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__), TST_RET); \
		} \
		TST_RET; \
	})

#define TST_EXP_POSITIVE(SCALL, ...) \
	TST_EXP_POSITIVE_REPORT_("", SCALL, #SCALL, ##__VA_ARGS__)

#define TST_EXP_FD(SCALL, ...) \
	TST_EXP_POSITIVE_REPORT_("fd ", SCALL, #SCALL, ##__VA_ARGS__)

#define TST_EXP_PID(SCALL, ...) \
	TST_EXP_POSITIVE_REPORT_("pid ", SCALL, #SCALL, ##__VA_ARGS__)

#define TST_EXP_FD_SILENT(SCALL, ...) \
	({ TST_EXP_POSITIVE_CHECK_(SCALL, #SCALL, ##__VA_ARGS__); TST_RET; })

#define TST_EXP_PID_SILENT(SCALL, ...) \
	({ TST_EXP_POSITIVE_CHECK_(SCALL, #SCALL, ##__VA_ARGS__); TST_RET; })

/* ---- exact return value expected ---- */

#define TST_EXP_VAL_SILENT_(SCALL, VAL, SSCALL, ...) \
	do { \
		char tst_desc__[TST_DESC_SIZE_]; \
		long tst_exp_val__ = (long)(VAL); \
		TEST(SCALL); \
		TST_PASS = 0; \
		if (TST_RET != tst_exp_val__) { \
			TST_EXP_MSG_(TFAIL | TTERRNO, SSCALL, \
				     "%s retval %ld != %ld", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__), \
				     TST_RET, tst_exp_val__); \
			break; \
		} \
		TST_PASS = 1; \
	} while (0)

#define TST_EXP_VAL_SILENT(SCALL, VAL, ...) \
	TST_EXP_VAL_SILENT_(SCALL, VAL, #SCALL, ##__VA_ARGS__)

#define TST_EXP_VAL(SCALL, VAL, ...) \
	do { \
		TST_EXP_VAL_SILENT_(SCALL, VAL, #SCALL, ##__VA_ARGS__); \
		if (TST_PASS) { \
			char tst_desc__[TST_DESC_SIZE_]; \
			TST_EXP_MSG_(TPASS, #SCALL, "%s passed", \
				     TST_DESC_(#SCALL, ##__VA_ARGS__)); \
		} \
	} while (0)

/* ---- zero return expected ---- */

#define TST_EXP_PASS_SILENT_(SCALL, SSCALL, ...) \
	TST_EXP_OK_CHECK_(TST_RET != 0, SCALL, SSCALL, ##__VA_ARGS__)

#define TST_EXP_PASS_SILENT(SCALL, ...) \
	TST_EXP_PASS_SILENT_(SCALL, #SCALL, ##__VA_ARGS__)

#define TST_EXP_PASS(SCALL, ...) \
	do { \
		TST_EXP_PASS_SILENT_(SCALL, #SCALL, ##__VA_ARGS__); \
		if (TST_PASS) { \
			char tst_desc__[TST_DESC_SIZE_]; \
			TST_EXP_MSG_(TPASS, #SCALL, "%s passed", \
				     TST_DESC_(#SCALL, ##__VA_ARGS__)); \
		} \
	} while (0)

/* ---- failure with an errno expected ---- */

/*
 * The failed call's errno: TST_PASS = 1 when it is one of ERRS[CNT], else
 * TFAIL "expected ...".  Uses the caller's tst_desc__.
 */
#define TST_EXP_ERRNO_(SSCALL, ERRS, CNT, ...) \
	do { \
		if (!tst_errno_in_set(TST_ERR, (ERRS), (CNT))) { \
			char tst_names__[20 * (CNT) + 1]; \
			TST_EXP_MSG_(TFAIL | TTERRNO, SSCALL, "%s expected %s", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__), \
				     tst_errno_names(tst_names__, (ERRS), (CNT))); \
			break; \
		} \
		TST_PASS = 1; \
	} while (0)

/*
 * SUCCEEDED is the condition (on TST_RET) under which the call counts as
 * having succeeded: TST_RET == 0 for TST_EXP_FAIL, TST_RET >= 0 for
 * TST_EXP_FAIL2.
 */
#define TST_EXP_FAIL_CHECK_(SUCCEEDED, SCALL, SSCALL, ERRS, CNT, ...) \
	do { \
		char tst_desc__[TST_DESC_SIZE_]; \
		TEST(SCALL); \
		TST_PASS = 0; \
		if (SUCCEEDED) { \
			TST_EXP_MSG_(TFAIL, SSCALL, "%s succeeded", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__)); \
			break; \
		} \
		if (TST_RET != -1) { \
			TST_EXP_MSG_(TFAIL | TTERRNO, SSCALL, \
				     "%s invalid retval %ld", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__), TST_RET); \
			break; \
		} \
		TST_EXP_ERRNO_(SSCALL, ERRS, CNT, ##__VA_ARGS__); \
	} while (0)

#define TST_EXP_FAIL_REPORT_(SUCCEEDED, SCALL, SSCALL, ERRS, CNT, ...) \
	do { \
		TST_EXP_FAIL_CHECK_(SUCCEEDED, SCALL, SSCALL, ERRS, CNT, \
				    ##__VA_ARGS__); \
		if (TST_PASS) { \
			char tst_desc__[TST_DESC_SIZE_]; \
			TST_EXP_MSG_(TPASS | TTERRNO, SSCALL, "%s ", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__)); \
		} \
	} while (0)

/*
 * One expected errno: WHAT is TST_EXP_FAIL_REPORT_ (TPASS on success) or
 * TST_EXP_FAIL_CHECK_ (TST_PASS only, the _SILENT forms).
 */
#define TST_EXP_FAIL_ONE_(WHAT, SUCCEEDED, SCALL, SSCALL, EXP_ERR, ...) \
	do { \
		int tst_exp_err__ = (EXP_ERR); \
		WHAT(SUCCEEDED, SCALL, SSCALL, &tst_exp_err__, 1, \
		     ##__VA_ARGS__); \
	} while (0)

#define TST_EXP_FAIL(SCALL, EXP_ERR, ...) \
	TST_EXP_FAIL_ONE_(TST_EXP_FAIL_REPORT_, TST_RET == 0, SCALL, #SCALL, \
			  EXP_ERR, ##__VA_ARGS__)

#define TST_EXP_FAIL2(SCALL, EXP_ERR, ...) \
	TST_EXP_FAIL_ONE_(TST_EXP_FAIL_REPORT_, TST_RET >= 0, SCALL, #SCALL, \
			  EXP_ERR, ##__VA_ARGS__)

#define TST_EXP_FAIL_SILENT(SCALL, EXP_ERR, ...) \
	TST_EXP_FAIL_ONE_(TST_EXP_FAIL_CHECK_, TST_RET == 0, SCALL, #SCALL, \
			  EXP_ERR, ##__VA_ARGS__)

#define TST_EXP_FAIL2_SILENT(SCALL, EXP_ERR, ...) \
	TST_EXP_FAIL_ONE_(TST_EXP_FAIL_CHECK_, TST_RET >= 0, SCALL, #SCALL, \
			  EXP_ERR, ##__VA_ARGS__)

#define TST_EXP_FAIL_ARR(SCALL, EXP_ERRS, EXP_ERRS_CNT, ...) \
	TST_EXP_FAIL_REPORT_(TST_RET == 0, SCALL, #SCALL, \
			     (EXP_ERRS), (EXP_ERRS_CNT), ##__VA_ARGS__)

#define TST_EXP_FAIL2_ARR(SCALL, EXP_ERRS, EXP_ERRS_CNT, ...) \
	TST_EXP_FAIL_REPORT_(TST_RET >= 0, SCALL, #SCALL, \
			     (EXP_ERRS), (EXP_ERRS_CNT), ##__VA_ARGS__)

/* ---- pointer-returning call expected to fail with FAIL_PTR ---- */

#define TST_EXP_FAIL_PTR_(SCALL, SSCALL, FAIL_PTR, ERRS, CNT, ...) \
	do { \
		char tst_desc__[TST_DESC_SIZE_]; \
		TESTPTR(SCALL); \
		TST_PASS = 0; \
		if (TST_RET_PTR != (void *)(FAIL_PTR)) { \
			TST_EXP_MSG_(TFAIL, SSCALL, "%s succeeded", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__)); \
			break; \
		} \
		TST_EXP_ERRNO_(SSCALL, ERRS, CNT, ##__VA_ARGS__); \
		if (TST_PASS) \
			TST_EXP_MSG_(TPASS | TTERRNO, SSCALL, "%s ", \
				     TST_DESC_(SSCALL, ##__VA_ARGS__)); \
	} while (0)

#define TST_EXP_FAIL_PTR_NULL(SCALL, EXP_ERR, ...) \
	do { \
		int tst_exp_err__ = (EXP_ERR); \
		TST_EXP_FAIL_PTR_(SCALL, #SCALL, NULL, &tst_exp_err__, 1, \
				  ##__VA_ARGS__); \
	} while (0)

#define TST_EXP_FAIL_PTR_VOID(SCALL, EXP_ERR, ...) \
	do { \
		int tst_exp_err__ = (EXP_ERR); \
		TST_EXP_FAIL_PTR_(SCALL, #SCALL, (void *)-1, &tst_exp_err__, 1, \
				  ##__VA_ARGS__); \
	} while (0)

/* ---- plain expressions ---- */

/* FMT and its arguments are optional; without them #EXPR is printed */
#define TST_EXP_EXPR(EXPR, ...) \
	do { \
		char tst_desc__[TST_DESC_SIZE_]; \
		TST_PASS = !!(EXPR); \
		tst_res_(__FILE__, __LINE__, TST_PASS ? TPASS : TFAIL, \
			 "Expect: %s", TST_DESC_(#EXPR, ##__VA_ARGS__)); \
	} while (0)

#define TST_EXP_EQ_(A, SA, B, SB, TYPE, PFS) \
	do { \
		TYPE tst_a__ = (A); \
		TYPE tst_b__ = (B); \
		if (tst_a__ == tst_b__) { \
			TST_PASS = 1; \
			tst_res_(__FILE__, __LINE__, TPASS, \
				 SA " == " SB " (" PFS ")", tst_a__); \
		} else { \
			TST_PASS = 0; \
			tst_res_(__FILE__, __LINE__, TFAIL, \
				 SA " (" PFS ") != " SB " (" PFS ")", \
				 tst_a__, tst_b__); \
		} \
	} while (0)

#define TST_EXP_EQ_LI(A, B) TST_EXP_EQ_(A, #A, B, #B, long long, "%lli")
#define TST_EXP_EQ_LU(A, B) TST_EXP_EQ_(A, #A, B, #B, unsigned long long, "%llu")
#define TST_EXP_EQ_SZ(A, B) TST_EXP_EQ_(A, #A, B, #B, size_t, "%zu")
#define TST_EXP_EQ_SSZ(A, B) TST_EXP_EQ_(A, #A, B, #B, ssize_t, "%zi")

#endif /* TST_TEST_MACROS_H__ */
