// SPDX-License-Identifier: GPL-2.0
/*
 * hello: a misc device that greets, kguest's example module.
 *
 * Reading /dev/hello gives "Hello, <greeting>!\n" (greeting is a module
 * parameter) and then end of file, whatever the open mode; writing is
 * refused.  /sys/module/hello/parameters/reads counts completed greetings.
 * HELLO_IOC_POKE counts a poke and, when the module was loaded with warn=1,
 * triggers a deliberate WARN: the switch kguest's example run uses to show
 * kernel trouble failing exactly the test that caused it.
 */

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hello.h"

static char *greeting = "world";
module_param(greeting, charp, 0444);
MODULE_PARM_DESC(greeting, "who /dev/hello greets (default: world)");

static bool warn;
module_param(warn, bool, 0444);
MODULE_PARM_DESC(warn, "WARN on HELLO_IOC_POKE (a deliberate kernel warning)");

static atomic_t reads = ATOMIC_INIT(0);
module_param_named(reads, reads.counter, int, 0444);
MODULE_PARM_DESC(reads, "greetings read to the end so far");

static ssize_t hello_read(struct file *file, char __user *buf, size_t len,
			  loff_t *ppos)
{
	char *text;
	ssize_t ret;

	text = kasprintf(GFP_KERNEL, "Hello, %s!\n", greeting);
	if (!text)
		return -ENOMEM;
	ret = simple_read_from_buffer(buf, len, ppos, text, strlen(text));
	/* The greeting is complete once its last byte is out. */
	if (ret > 0 && *ppos == strlen(text))
		atomic_inc(&reads);
	kfree(text);
	return ret;
}

static long hello_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	if (cmd != HELLO_IOC_POKE)
		return -ENOTTY;
	WARN(warn, "hello: poked with warn=1 (a deliberate warning)\n");
	return 0;
}

static const struct file_operations hello_fops = {
	.owner		= THIS_MODULE,
	.read		= hello_read,
	.unlocked_ioctl	= hello_ioctl,
	.llseek		= default_llseek,
};

static struct miscdevice hello_dev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "hello",
	.fops	= &hello_fops,
	.mode	= 0444,
};

static int __init hello_init(void)
{
	int ret = misc_register(&hello_dev);

	if (!ret)
		pr_info("hello: loaded, greeting %s\n", greeting);
	return ret;
}

static void __exit hello_exit(void)
{
	misc_deregister(&hello_dev);
}

module_init(hello_init);
module_exit(hello_exit);

MODULE_DESCRIPTION("A misc device that greets (kguest's example module)");
MODULE_LICENSE("GPL");
