// SPDX-License-Identifier: GPL-2.0
/*
 * faultmaker: a test-only module for kguest's self-tests of the error-path
 * sweep.  Writing to /sys/kernel/debug/faultmaker/pair allocates two objects
 * and frees them.  Its bug: when the second allocation fails, the first
 * object is freed twice.  The parameter "fixed" removes the bug.  The
 * ordinary test (a write that succeeds) passes either way; only a failing
 * second allocation shows it.
 *
 * Never load it outside kguest's self-tests.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/slab.h>

static bool fixed;
module_param(fixed, bool, 0444);
MODULE_PARM_DESC(fixed, "free the first object once when the second allocation fails");

static struct dentry *dir;

static ssize_t pair_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	ssize_t ret = len;
	void *first, *second;

	first = kmalloc(64, GFP_KERNEL);
	if (!first)
		return -ENOMEM;
	second = kmalloc(128, GFP_KERNEL);
	if (!second) {
		ret = -ENOMEM;
		if (!fixed)
			kfree(first);	/* the bug: freed again below */
		goto free_first;
	}
	kfree(second);
free_first:
	kfree(first);
	return ret;
}

static const struct file_operations pair_fops = { .owner = THIS_MODULE, .write = pair_write };

static int __init faultmaker_init(void)
{
	dir = debugfs_create_dir("faultmaker", NULL);
	debugfs_create_file("pair", 0200, dir, NULL, &pair_fops);
	return 0;
}

static void __exit faultmaker_exit(void)
{
	debugfs_remove_recursive(dir);
}

module_init(faultmaker_init);
module_exit(faultmaker_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kguest self-test: a double free on an allocation failure path");
