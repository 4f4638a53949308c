// SPDX-License-Identifier: GPL-2.0
/*
 * troublemaker: a test-only module for kguest's self-tests.  Writing to a file
 * in /sys/kernel/debug/troublemaker/ makes the kernel misbehave on purpose:
 *
 *   warn   WARN() once per write (taints W)
 *   taint  add TAINT_USER (U) without any message
 *   panic  panic()
 *   hang   sleep uninterruptibly forever (the writer cannot be killed)
 *   freeze spin forever on every CPU with interrupts off (the guest stops answering)
 *
 * Never load it outside kguest's self-tests.
 */
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/panic.h>
#include <linux/sched.h>
#include <linux/stop_machine.h>

static struct dentry *dir;

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

static ssize_t hang_write(struct file *f, const char __user *buf, size_t len, loff_t *off)
{
	pr_info("troublemaker: hanging (uninterruptible)\n");
	for (;;) {
		set_current_state(TASK_UNINTERRUPTIBLE);
		schedule();
	}
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
static const struct file_operations hang_fops = { .owner = THIS_MODULE, .write = hang_write };
static const struct file_operations freeze_fops = { .owner = THIS_MODULE, .write = freeze_write };

static int __init troublemaker_init(void)
{
	/* KBUILD_MODNAME: a copy built under another name gets a directory of its own */
	dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("warn", 0200, dir, NULL, &warn_fops);
	debugfs_create_file("taint", 0200, dir, NULL, &taint_fops);
	debugfs_create_file("panic", 0200, dir, NULL, &panic_fops);
	debugfs_create_file("hang", 0200, dir, NULL, &hang_fops);
	debugfs_create_file("freeze", 0200, dir, NULL, &freeze_fops);
	return 0;
}

static void __exit troublemaker_exit(void)
{
	debugfs_remove_recursive(dir);
}

module_init(troublemaker_init);
module_exit(troublemaker_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kguest self-test: deliberate WARN, taint, panic, hang and freeze");
