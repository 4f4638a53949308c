// SPDX-License-Identifier: GPL-2.0
/*
 * troublemaker: a test-only module for kguest's self-tests.  Writing to a file
 * in /sys/kernel/debug/troublemaker/ makes the kernel misbehave on purpose:
 *
 *   warn   WARN() once per write (taints W)
 *   taint  add TAINT_USER (U) without any message
 *   panic  panic()
 *   oops   dereference a NULL pointer (an Oops, which oops=panic makes a panic)
 *   hang   sleep uninterruptibly forever (the writer cannot be killed)
 *   sleep  sleep interruptibly until a signal comes (a test that times out)
 *   freeze spin forever on every CPU with interrupts off (the guest stops answering)
 *   leak   allocate 64 bytes and forget them (kmemleak reports the object)
 *
 * Module parameters: "level" (an int the tests read back) and "fail_init" (when
 * set, loading fails with -EINVAL after saying why).
 *
 * Never load it outside kguest's self-tests.
 */
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/panic.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/stop_machine.h>

static struct dentry *dir;

static int level;
module_param(level, int, 0644);
MODULE_PARM_DESC(level, "a number the self-tests set and read back");

static bool fail_init;
module_param(fail_init, bool, 0444);
MODULE_PARM_DESC(fail_init, "refuse to load (-EINVAL)");

/* NULL for ever; READ_ONCE keeps the compiler from assuming so. */
static int *nowhere;

static ssize_t warn_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	WARN(1, "troublemaker: deliberate warning\n");
	return len;
}

static ssize_t taint_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	add_taint(TAINT_USER, LOCKDEP_STILL_OK);
	return len;
}

static ssize_t panic_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	panic("troublemaker: deliberate panic\n");
	return len;
}

static ssize_t oops_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	int *p = READ_ONCE(nowhere);

	pr_info("troublemaker: reading %d\n", *p);
	return len;
}

static ssize_t sleep_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	pr_info("troublemaker: sleeping until a signal comes\n");
	while (!signal_pending(current))
		msleep_interruptible(1000);
	return -EINTR;
}

static ssize_t hang_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	pr_info("troublemaker: hanging (uninterruptible)\n");
	for (;;) {
		set_current_state(TASK_UNINTERRUPTIBLE);
		schedule();
	}
	return len;
}

static ssize_t leak_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	void *lost = kmalloc(64, GFP_KERNEL);

	if (!lost)
		return -ENOMEM;
	/* a pattern, so that the object is not all zeros; then no pointer to it is kept */
	memset(lost, 0x5a, 64);
	return len;
}

static int freeze_fn(void *unused)
{
	for (;;)
		cpu_relax();
	return 0;
}

static ssize_t freeze_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	stop_machine(freeze_fn, NULL, cpu_online_mask);
	return len;
}

static const struct file_operations warn_fops = { .owner = THIS_MODULE, .write = warn_write };
static const struct file_operations taint_fops = { .owner = THIS_MODULE, .write = taint_write };
static const struct file_operations panic_fops = { .owner = THIS_MODULE, .write = panic_write };
static const struct file_operations oops_fops = { .owner = THIS_MODULE, .write = oops_write };
static const struct file_operations sleep_fops = { .owner = THIS_MODULE, .write = sleep_write };
static const struct file_operations hang_fops = { .owner = THIS_MODULE, .write = hang_write };
static const struct file_operations freeze_fops = { .owner = THIS_MODULE, .write = freeze_write };
static const struct file_operations leak_fops = { .owner = THIS_MODULE, .write = leak_write };

static int __init troublemaker_init(void)
{
	if (fail_init) {
		pr_err("troublemaker: fail_init is set, refusing to load\n");
		return -EINVAL;
	}
	/* KBUILD_MODNAME: a copy built under another name gets a directory of its own */
	dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("warn", 0200, dir, NULL, &warn_fops);
	debugfs_create_file("taint", 0200, dir, NULL, &taint_fops);
	debugfs_create_file("panic", 0200, dir, NULL, &panic_fops);
	debugfs_create_file("oops", 0200, dir, NULL, &oops_fops);
	debugfs_create_file("sleep", 0200, dir, NULL, &sleep_fops);
	debugfs_create_file("hang", 0200, dir, NULL, &hang_fops);
	debugfs_create_file("freeze", 0200, dir, NULL, &freeze_fops);
	debugfs_create_file("leak", 0200, dir, NULL, &leak_fops);
	pr_info("troublemaker: loaded, level %d\n", level);
	return 0;
}

static void __exit troublemaker_exit(void)
{
	debugfs_remove_recursive(dir);
}

module_init(troublemaker_init);
module_exit(troublemaker_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kguest self-test: deliberate WARN, taint, panic, Oops, hangs, freeze and leak");
