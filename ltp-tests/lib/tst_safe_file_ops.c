// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * One-call file reads and writes: SAFE_FILE_PRINTF, SAFE_FILE_SCANF,
 * (SAFE_)FILE_LINES_SCANF and their non-fatal forms.  Written for sfork
 * from LTP's documented API (include/tst_safe_file_ops.h); no LTP code is
 * used.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TST_NO_DEFAULT_MAIN
#include "tst_test.h"

/* A failure: tst_brk() when strict, otherwise a silent return of 1. */
#define FAIL(strict, ttype, ...) \
	do { \
		if (strict) \
			tst_brk_(file, lineno, (ttype), __VA_ARGS__); \
		return 1; \
	} while (0)

/* Number of assignments a scanf format makes (%% and %*... excluded). */
static int count_conversions(const char *fmt)
{
	int n = 0;

	for (; *fmt; fmt++) {
		if (*fmt != '%')
			continue;
		fmt++;
		if (*fmt == '%' || *fmt == '*' || !*fmt) {
			if (!*fmt)
				break;
			continue;
		}
		n++;
	}
	return n;
}

/* fopen() or a failure: tst_brk() when strict, else NULL */
static FILE *open_file(const char *file, const int lineno, int strict,
		       const char *path, const char *mode)
{
	FILE *f = fopen(path, mode);

	if (!f && strict)
		tst_brk_(file, lineno, TBROK | TERRNO,
			 "Failed to open FILE '%s' for %s", path,
			 *mode == 'r' ? "reading" : "writing");
	return f;
}

/* got conversions of the expected ones (EOF: nothing to read) */
static int check_conversions(const char *file, const int lineno, int strict,
			     const char *path, int expected, int got)
{
	if (got == EOF)
		FAIL(strict, TBROK, "The FILE '%s' ended prematurely", path);
	if (got != expected)
		FAIL(strict, TBROK, "Expected %i conversions got %i FILE '%s'",
		     expected, got, path);
	return 0;
}

int tst_file_scanf_(const char *file, const int lineno, int strict,
		    const char *path, const char *fmt, ...)
{
	int got;
	va_list va;
	FILE *f = open_file(file, lineno, strict, path, "r");

	if (!f)
		return 1;
	va_start(va, fmt);
	got = vfscanf(f, fmt, va);
	va_end(va);
	fclose(f);
	return check_conversions(file, lineno, strict, path,
				 count_conversions(fmt), got);
}

int tst_file_lines_scanf_(const char *file, const int lineno, int strict,
			  const char *path, const char *fmt, ...)
{
	int expected = count_conversions(fmt), got = 0;
	char line[4096];
	va_list va;
	FILE *f = open_file(file, lineno, strict, path, "r");

	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		va_start(va, fmt);
		got = vsscanf(line, fmt, va);
		va_end(va);
		if (got == expected)
			break;
	}
	fclose(f);
	/* no line matched is a mismatch, never "ended prematurely" */
	return check_conversions(file, lineno, strict, path, expected,
				 got == EOF ? 0 : got);
}

int tst_file_printf_(const char *file, const int lineno, int strict,
		     const char *path, const char *fmt, ...)
{
	va_list va;
	int ret;
	FILE *f;

	f = open_file(file, lineno, strict, path, "w");
	if (!f)
		return 1;

	va_start(va, fmt);
	ret = vfprintf(f, fmt, va);
	va_end(va);

	if (ret < 0) {
		fclose(f);
		FAIL(strict, TBROK, "Failed to print to FILE '%s'", path);
	}
	/* sysfs/cgroup files report a refused write at flush time */
	if (fclose(f))
		FAIL(strict, TBROK | TERRNO, "Failed to close FILE '%s'", path);
	return 0;
}
