/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copyright (c) 2026 sfork developers
 *
 * sfork_huge.h - what the huge-page tests (sfork22, sfork23, sfork24) share: the
 * module parameter huge_pages set for the test and restored afterwards,
 * and a mapping's ShmemPmdMapped.  Include after sfork_test.h.
 */
#ifndef SFORK_HUGE_H__
#define SFORK_HUGE_H__

#define SFORK_HUGE_SIZE		(2UL << 20)
#define SFORK_HUGE_PARAM	SFORK_PARAMS_DIR "/huge_pages"

static long long sfork_huge_saved = -1;

/* huge_pages at policy for the test (TCONF without the parameter) */
static inline void sfork_huge_setup(unsigned int policy)
{
	if (access(SFORK_HUGE_PARAM, W_OK))
		tst_brk(TCONF | TERRNO, "no %s", SFORK_HUGE_PARAM);
	sfork_huge_saved = (long long)sfork_param("huge_pages");
	SAFE_FILE_PRINTF(SFORK_HUGE_PARAM, "%u", policy);
}

/* .cleanup: huge_pages back to what it was */
static inline void sfork_huge_cleanup(void)
{
	if (sfork_huge_saved >= 0)
		SAFE_FILE_PRINTF(SFORK_HUGE_PARAM, "%lld", sfork_huge_saved);
}

/* ShmemPmdMapped of the mapping that holds addr, in kB; -1 if none */
static inline long long sfork_pmd_mapped_kb(const void *addr)
{
	return sfork_smaps_kb(addr, "ShmemPmdMapped");
}

#endif /* SFORK_HUGE_H__ */
