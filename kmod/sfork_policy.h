/* SPDX-License-Identifier: GPL-2.0 */
/*
 * sfork's pure decisions, with no state of their own: which arguments
 * SFORK_IOC_CREATE refuses, which side may write, how a region without an
 * allocation flag is allocated, and which regions get 2 MiB pages.  The
 * module's parameters come in as arguments.  Included by sfork.c and by
 * its KUnit tests (sfork_kunit.c).
 */
#ifndef SFORK_POLICY_H
#define SFORK_POLICY_H

#include <linux/bitops.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/mm.h>
#include <linux/types.h>

#include <linux/sfork.h>

enum sfork_side_id { SFORK_CREATOR, SFORK_CHILD };

/* Whether the side @id of a region created with @flags may write. */
static inline bool sfork_side_may_write(unsigned int flags,
					enum sfork_side_id id)
{
	if (flags & SFORK_BIDIRECTIONAL)
		return true;
	if (flags & SFORK_PARENT_TO_CHILD)
		return id == SFORK_CREATOR;
	return id == SFORK_CHILD;
}

/* The errno CREATE gives for @arg (0: acceptable), @max_bytes the limit. */
static inline int sfork_check_args(const struct sfork_create *arg,
				   u64 max_bytes)
{
	unsigned int dir = arg->flags & SFORK_DIRECTION_MASK;

	if (!arg->len || !arg->addr_ptr)
		return -EINVAL;
	if (arg->flags & ~SFORK_VALID_FLAGS)
		return -EINVAL;
	if (hweight32(dir) != 1)
		return -EINVAL;
	if ((arg->flags & SFORK_ALLOC_MASK) == SFORK_ALLOC_MASK)
		return -EINVAL;
	if (arg->len > max_bytes || arg->len > ULONG_MAX - PAGE_SIZE + 1)
		return -ENOMEM;
	return 0;
}

/* @flags with an allocation flag: eager up to @eager_threshold bytes, else lazy. */
static inline unsigned int sfork_resolve_alloc(unsigned int flags, u64 len,
					       u64 eager_threshold)
{
	if (flags & SFORK_ALLOC_MASK)
		return flags;
	return flags | (len <= eager_threshold ? SFORK_EAGER : SFORK_LAZY);
}

/*
 * 2 MiB pages, by the huge_pages @policy: 0 never, 1 eager regions, 2 every
 * region; only regions of at least PMD_SIZE, and only with the module's
 * huge-page mount (@have_mount).
 */
static inline bool sfork_wants_huge(pgoff_t npages, unsigned int flags,
				    int policy, bool have_mount)
{
	if (!have_mount || npages < (PMD_SIZE >> PAGE_SHIFT))
		return false;
	return policy >= 2 || (policy == 1 && (flags & SFORK_EAGER));
}

#endif /* SFORK_POLICY_H */
