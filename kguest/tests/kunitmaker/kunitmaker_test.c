// SPDX-License-Identifier: GPL-2.0
/*
 * kunitmaker_test: a test-only KUnit module for kguest's self-tests: a case
 * that passes, one that fails, one that passes its own checks but makes
 * KASAN report a use after free, one that crashes the kernel and one that
 * never runs because of it.
 *
 * Never load it outside kguest's self-tests.
 */
#include <kunit/test.h>
#include <linux/compiler.h>
#include <linux/slab.h>

static void kunitmaker_adds(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, 1 + 1, 2);
}

static void kunitmaker_fails(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, 1 + 1, 3);
}

static void kunitmaker_use_after_free(struct kunit *test)
{
	char *p = kmalloc(16, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, p);
	kfree(p);
	OPTIMIZER_HIDE_VAR(p);
	WRITE_ONCE(p[0], 1);
	KUNIT_EXPECT_TRUE(test, true);
}

static struct kunit_case kunitmaker_cases[] = {
	KUNIT_CASE(kunitmaker_adds),
	KUNIT_CASE(kunitmaker_fails),
	KUNIT_CASE(kunitmaker_use_after_free),
	{}
};

static struct kunit_suite kunitmaker_suite = {
	.name = "kunitmaker",
	.test_cases = kunitmaker_cases,
};

static void kunitmaker_crashes(struct kunit *test)
{
	int *p = NULL;

	OPTIMIZER_HIDE_VAR(p);
	WRITE_ONCE(*p, 1);
}

static void kunitmaker_after_crash(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, true);
}

static struct kunit_case kunitmaker_crash_cases[] = {
	KUNIT_CASE(kunitmaker_crashes),
	KUNIT_CASE(kunitmaker_after_crash),
	{}
};

static struct kunit_suite kunitmaker_crash_suite = {
	.name = "kunitmaker_crash",
	.test_cases = kunitmaker_crash_cases,
};

kunit_test_suites(&kunitmaker_suite, &kunitmaker_crash_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kguest self-test: KUnit cases that pass, fail, trip KASAN and crash");
