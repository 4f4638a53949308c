/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * MIN()/MAX() as LTP's tst_minmax.h provides them.  Written for sfork from
 * LTP's documented API; no LTP code is used.
 */
#ifndef TST_MINMAX_H__
#define TST_MINMAX_H__

#include <sys/param.h>

#ifndef MIN
# define MIN(a, b) ({ typeof(a) tst_a_ = (a); typeof(b) tst_b_ = (b); \
		      tst_a_ < tst_b_ ? tst_a_ : tst_b_; })
#endif
#ifndef MAX
# define MAX(a, b) ({ typeof(a) tst_a_ = (a); typeof(b) tst_b_ = (b); \
		      tst_a_ > tst_b_ ? tst_a_ : tst_b_; })
#endif

#endif /* TST_MINMAX_H__ */
