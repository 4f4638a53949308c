/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading and writing small files (/proc, /sys, cgroup files) in one call.
 * Written for sfork from LTP's documented API (include/tst_safe_file_ops.h
 * names and semantics); the implementation (tst_safe_file_ops.c) is our own.
 *
 * *_SCANF count the conversions in fmt (%% and %*x excluded) and require
 * all of them.  FILE_LINES_SCANF/SAFE_FILE_LINES_SCANF try fmt on each line
 * and stop at the first line where every conversion matches.  The SAFE_
 * forms end the test with TBROK on failure; FILE_LINES_SCANF, FILE_SCANF
 * and FILE_PRINTF return non-zero instead.
 */
#ifndef TST_SAFE_FILE_OPS_H__
#define TST_SAFE_FILE_OPS_H__

#include <stddef.h>

int tst_file_scanf_(const char *file, const int lineno, int strict,
		    const char *path, const char *fmt, ...)
	__attribute__((format(scanf, 5, 6)));
int tst_file_lines_scanf_(const char *file, const int lineno, int strict,
			  const char *path, const char *fmt, ...)
	__attribute__((format(scanf, 5, 6)));
int tst_file_printf_(const char *file, const int lineno, int strict,
		     const char *path, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

#define SAFE_FILE_SCANF(path, fmt, ...) \
	tst_file_scanf_(__FILE__, __LINE__, 1, (path), (fmt), ##__VA_ARGS__)

#define FILE_SCANF(path, fmt, ...) \
	tst_file_scanf_(__FILE__, __LINE__, 0, (path), (fmt), ##__VA_ARGS__)

#define SAFE_FILE_LINES_SCANF(path, fmt, ...) \
	tst_file_lines_scanf_(__FILE__, __LINE__, 1, (path), (fmt), \
			      ##__VA_ARGS__)

#define FILE_LINES_SCANF(path, fmt, ...) \
	tst_file_lines_scanf_(__FILE__, __LINE__, 0, (path), (fmt), \
			      ##__VA_ARGS__)

#define SAFE_FILE_PRINTF(path, fmt, ...) \
	tst_file_printf_(__FILE__, __LINE__, 1, (path), (fmt), ##__VA_ARGS__)

#define FILE_PRINTF(path, fmt, ...) \
	tst_file_printf_(__FILE__, __LINE__, 0, (path), (fmt), ##__VA_ARGS__)

/* value of a /proc/meminfo line, e.g. SAFE_READ_MEMINFO("MemFree:") in kB */
#define SAFE_READ_MEMINFO(item) \
	({ \
		long tst_meminfo_val__; \
		SAFE_FILE_LINES_SCANF("/proc/meminfo", item " %ld", \
				      &tst_meminfo_val__); \
		tst_meminfo_val__; \
	})

/* value of a /proc/PID/status line, e.g. SAFE_READ_PROC_STATUS(pid, "VmRSS:") */
#define SAFE_READ_PROC_STATUS(pid, item) \
	({ \
		long tst_status_val__; \
		char tst_status_path__[64]; \
		snprintf(tst_status_path__, sizeof(tst_status_path__), \
			 "/proc/%d/status", (int)(pid)); \
		SAFE_FILE_LINES_SCANF(tst_status_path__, item " %ld", \
				      &tst_status_val__); \
		tst_status_val__; \
	})

#endif /* TST_SAFE_FILE_OPS_H__ */
