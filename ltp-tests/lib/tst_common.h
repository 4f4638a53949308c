/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers of the LTP test API (ARRAY_SIZE, attributes).  Written for
 * sfork from LTP's documented API; no LTP code is used.
 */
#ifndef TST_COMMON_H__
#define TST_COMMON_H__

#define LTP_ATTRIBUTE_NORETURN		__attribute__((noreturn))
#define LTP_ATTRIBUTE_UNUSED		__attribute__((unused))
#define LTP_ATTRIBUTE_UNUSED_RESULT	__attribute__((warn_unused_result))

#ifndef ARRAY_SIZE
# define ARRAY_SIZE(arr) (sizeof(arr) / sizeof((arr)[0]))
#endif

#define LTP_ALIGN(x, a)	(((x) + (a) - 1) & ~((typeof(x))(a) - 1))

#endif /* TST_COMMON_H__ */
