/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Result flags of the LTP test API.  Written for sfork from LTP's documented
 * API (include/tst_res_flags.h names and values); no LTP code is used.
 */
#ifndef TST_RES_FLAGS_H
#define TST_RES_FLAGS_H

#define TTYPE_MASK	0x3f
#define TPASS		0
#define TFAIL		1
#define TBROK		2
#define TWARN		4
#define TDEBUG		8
#define TINFO		16
#define TCONF		32
#define TTYPE_RESULT(ttype)	((ttype) & TTYPE_MASK)

#define TERRNO		0x100	/* append errno */
#define TTERRNO		0x200	/* append TST_ERR */
#define TRERRNO		0x400	/* append the errno held in TST_RET */

#endif /* TST_RES_FLAGS_H */
