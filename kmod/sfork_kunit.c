// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of sfork's pure decisions (sfork_policy.h): the arguments
 * SFORK_IOC_CREATE refuses and with which errno, which side of each
 * direction may write, the allocation mode a region gets without a flag and
 * which regions get 2 MiB pages.  Built only against a kernel with KUnit.
 */
#include <kunit/test.h>
#include <linux/module.h>

#include "sfork_policy.h"

#define MAX_BYTES	(8ULL << 30)

static struct sfork_create create_arg(u64 len, unsigned int flags)
{
	struct sfork_create arg = {
		.len = len,
		.flags = flags,
		.addr_ptr = 0x1000,
	};

	return arg;
}

static void sfork_args_valid(struct kunit *test)
{
	static const unsigned int dirs[] = {
		SFORK_BIDIRECTIONAL, SFORK_PARENT_TO_CHILD, SFORK_CHILD_TO_PARENT,
	};
	static const unsigned int allocs[] = { 0, SFORK_LAZY, SFORK_EAGER };
	struct sfork_create arg;
	int d, a;

	for (d = 0; d < ARRAY_SIZE(dirs); d++) {
		for (a = 0; a < ARRAY_SIZE(allocs); a++) {
			arg = create_arg(PAGE_SIZE, dirs[d] | allocs[a]);
			KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), 0);
		}
	}
	arg = create_arg(MAX_BYTES, SFORK_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), 0);
}

static void sfork_args_einval(struct kunit *test)
{
	struct sfork_create arg;

	arg = create_arg(0, SFORK_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_BIDIRECTIONAL);
	arg.addr_ptr = 0;
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_BIDIRECTIONAL | (1U << 5));
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_LAZY);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_BIDIRECTIONAL | SFORK_PARENT_TO_CHILD);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_DIRECTION_MASK);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
	arg = create_arg(PAGE_SIZE, SFORK_CHILD_TO_PARENT | SFORK_ALLOC_MASK);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -EINVAL);
}

static void sfork_args_enomem(struct kunit *test)
{
	struct sfork_create arg;

	arg = create_arg(MAX_BYTES + 1, SFORK_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, MAX_BYTES), -ENOMEM);
	/* a length that cannot be rounded up to a page */
	arg = create_arg(ULONG_MAX - PAGE_SIZE + 2, SFORK_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, U64_MAX), -ENOMEM);
	arg = create_arg(ULONG_MAX - PAGE_SIZE + 1, SFORK_BIDIRECTIONAL);
	KUNIT_EXPECT_EQ(test, sfork_check_args(&arg, U64_MAX), 0);
}

static void sfork_sides(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, sfork_side_may_write(SFORK_BIDIRECTIONAL, SFORK_CREATOR));
	KUNIT_EXPECT_TRUE(test, sfork_side_may_write(SFORK_BIDIRECTIONAL, SFORK_CHILD));
	KUNIT_EXPECT_TRUE(test, sfork_side_may_write(SFORK_PARENT_TO_CHILD, SFORK_CREATOR));
	KUNIT_EXPECT_FALSE(test, sfork_side_may_write(SFORK_PARENT_TO_CHILD, SFORK_CHILD));
	KUNIT_EXPECT_FALSE(test, sfork_side_may_write(SFORK_CHILD_TO_PARENT, SFORK_CREATOR));
	KUNIT_EXPECT_TRUE(test, sfork_side_may_write(SFORK_CHILD_TO_PARENT, SFORK_CHILD));
	/* the allocation flags change nothing */
	KUNIT_EXPECT_FALSE(test, sfork_side_may_write(SFORK_PARENT_TO_CHILD | SFORK_EAGER,
						      SFORK_CHILD));
}

static void sfork_alloc_mode(struct kunit *test)
{
	const u64 threshold = 2 << 20;

	KUNIT_EXPECT_EQ(test, sfork_resolve_alloc(SFORK_BIDIRECTIONAL, threshold, threshold),
			SFORK_BIDIRECTIONAL | SFORK_EAGER);
	KUNIT_EXPECT_EQ(test, sfork_resolve_alloc(SFORK_BIDIRECTIONAL, threshold + 1, threshold),
			SFORK_BIDIRECTIONAL | SFORK_LAZY);
	KUNIT_EXPECT_EQ(test, sfork_resolve_alloc(SFORK_BIDIRECTIONAL | SFORK_LAZY, 1, threshold),
			SFORK_BIDIRECTIONAL | SFORK_LAZY);
	KUNIT_EXPECT_EQ(test, sfork_resolve_alloc(SFORK_BIDIRECTIONAL | SFORK_EAGER, 1 << 30,
						  threshold),
			SFORK_BIDIRECTIONAL | SFORK_EAGER);
	/* threshold 0: only an explicit flag makes a region eager */
	KUNIT_EXPECT_EQ(test, sfork_resolve_alloc(SFORK_PARENT_TO_CHILD, 1, 0),
			SFORK_PARENT_TO_CHILD | SFORK_LAZY);
}

static void sfork_huge_policy(struct kunit *test)
{
	const pgoff_t pmd = PMD_SIZE >> PAGE_SHIFT;

	/* never below 2 MiB, never without the module's mount */
	KUNIT_EXPECT_FALSE(test, sfork_wants_huge(pmd - 1, SFORK_EAGER, 2, true));
	KUNIT_EXPECT_FALSE(test, sfork_wants_huge(pmd, SFORK_EAGER, 2, false));
	/* 0 never, 1 eager only (the default), 2 every region */
	KUNIT_EXPECT_FALSE(test, sfork_wants_huge(pmd, SFORK_EAGER, 0, true));
	KUNIT_EXPECT_TRUE(test, sfork_wants_huge(pmd, SFORK_EAGER, 1, true));
	KUNIT_EXPECT_FALSE(test, sfork_wants_huge(pmd, SFORK_LAZY, 1, true));
	KUNIT_EXPECT_TRUE(test, sfork_wants_huge(pmd, SFORK_LAZY, 2, true));
	KUNIT_EXPECT_TRUE(test, sfork_wants_huge(4 * pmd, SFORK_EAGER, 1, true));
}

static struct kunit_case sfork_policy_cases[] = {
	KUNIT_CASE(sfork_args_valid),
	KUNIT_CASE(sfork_args_einval),
	KUNIT_CASE(sfork_args_enomem),
	KUNIT_CASE(sfork_sides),
	KUNIT_CASE(sfork_alloc_mode),
	KUNIT_CASE(sfork_huge_policy),
	{}
};

static struct kunit_suite sfork_policy_suite = {
	.name = "sfork_policy",
	.test_cases = sfork_policy_cases,
};

kunit_test_suite(sfork_policy_suite);

MODULE_DESCRIPTION("KUnit tests of sfork's argument checks, directions and allocation policy");
MODULE_LICENSE("GPL");
