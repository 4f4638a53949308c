// SPDX-License-Identifier: GPL-2.0
/*
 * kguest_fault: pick which fault-injectable call of one module fails.
 *
 * The kernel's fault injection (failslab, fail_page_alloc, fail_function)
 * decides in should_fail_ex().  Its systematic mode, a task's fail_nth,
 * fails the N-th injectable call of that task, whoever makes it; its stack
 * filter (require-start/require-end) is not available on x86_64 before
 * 6.2, and where it is, interval and space count calls it then rejects.
 * This module counts only the calls made with the target module's text on
 * the stack (the ranges written to "ranges"), of the kinds in "kinds", and
 * makes the N-th of them fail by setting the calling task's fail_nth to 1
 * just before should_fail_ex() reads it: the kernel's own code fails the
 * call, with its own filters (GFP flags, min-order) applied first.
 *
 * debugfs, /sys/kernel/debug/kguest_fault/:
 *   ranges     write "START END ..." (hex): the target's text ranges
 *   kinds      1 slab, 2 page allocations, 4 functions (fail_function)
 *   functions  write a symbol: count calls of it too (kind 4); "-" drops all
 *   nth        write N: count from 0 again and fail the N-th call (0: count only)
 *   count      calls counted since nth was written
 *   injected   the kind of the failed call ("none" before), then its stack
 *
 * Test kernels only: it slows every allocation down.
 */
#include <linux/atomic.h>
#include <linux/debugfs.h>
#include <linux/fault-inject.h>
#include <linux/kallsyms.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/stacktrace.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <asm/unwind.h>

#define KGF_SLAB	1
#define KGF_PAGE	2
#define KGF_FUNCTION	4
#define KGF_DEPTH	32
#define KGF_RANGES	8
#define KGF_FUNCTIONS	16

struct kgf_range {
	unsigned long start;
	unsigned long end;
};

static struct kgf_range kgf_ranges[KGF_RANGES];
static int kgf_nr_ranges;
static u32 kgf_kinds;
static u64 kgf_nth;
static atomic64_t kgf_count;
static atomic_t kgf_injected;	/* the kind of the call made to fail */
static unsigned long kgf_stack[KGF_DEPTH];
static unsigned int kgf_stack_len;
static DEFINE_MUTEX(kgf_lock);	/* configuration writes */

struct kgf_function {
	struct kprobe kp;
	char name[KSYM_NAME_LEN];
};

static struct kgf_function *kgf_functions[KGF_FUNCTIONS];

static bool kgf_in_range(unsigned long addr)
{
	int r;

	for (r = 0; r < READ_ONCE(kgf_nr_ranges); r++)
		if (addr >= kgf_ranges[r].start && addr < kgf_ranges[r].end)
			return true;
	return false;
}

/*
 * The debuggers' own bookkeeping (kmemleak's object per allocation, the
 * stack depot, debugobjects' pool) allocates too, with the target still
 * on the stack: failing it would disable the debugger, not test the
 * target, so such a call does not count.
 */
static const char * const kgf_bookkeeping[] = {
	"kmemleak_", "create_object", "__create_object", "stack_depot_",
	"__stack_depot_", "debug_object", "fill_pool", "kasan_", "__kasan_",
};

static bool kgf_bookkeeping_frame(unsigned long addr)
{
	char name[KSYM_SYMBOL_LEN];
	int i;

	sprint_symbol_no_offset(name, addr);
	for (i = 0; i < ARRAY_SIZE(kgf_bookkeeping); i++)
		if (str_has_prefix(name, kgf_bookkeeping[i]))
			return true;
	return false;
}

/* A call made for the target: its text on the stack, no bookkeeping below it. */
static bool kgf_for_target(const unsigned long *entries, unsigned int n)
{
	unsigned int i, first;

	for (first = 0; first < n && !kgf_in_range(entries[first]); first++)
		;
	if (first == n)
		return false;
	for (i = 0; i < first; i++)
		if (kgf_bookkeeping_frame(entries[i]))
			return false;
	return true;
}

/*
 * Whether the probed call runs in task context, where should_fail_ex()
 * reads fail_nth.  The probes here are int3 ones, and the kernel enters
 * an int3 trap from kernel mode as an NMI: what that entry added to the
 * preempt count is not the probed code's.  (A real NMI does not allocate.)
 */
static bool kgf_probed_in_task(void)
{
	unsigned int pc = preempt_count();

	if (in_nmi())
		pc -= NMI_OFFSET + HARDIRQ_OFFSET;
	return !(pc & (NMI_MASK | HARDIRQ_MASK | SOFTIRQ_OFFSET));
}

/*
 * The probed call's stack, from the registers the probe saw: it starts at
 * the probed function, whatever ran the handler (a trap or a detour
 * buffer the unwinder has no data for).
 */
static unsigned int kgf_probed_stack(struct pt_regs *regs,
				     unsigned long *entries)
{
	struct unwind_state state;
	unsigned long addr;
	unsigned int n = 0;

	entries[n++] = instruction_pointer(regs);
	for (unwind_start(&state, current, regs, NULL);
	     !unwind_done(&state) && n < KGF_DEPTH;
	     unwind_next_frame(&state)) {
		addr = unwind_get_return_address(&state);
		if (!addr)
			break;
		if (addr != entries[n - 1])
			entries[n++] = addr;
	}
	return n;
}

/* Count a call of @kind; the N-th one fails through current's fail_nth. */
static void kgf_count_call(int kind, struct pt_regs *regs)
{
	unsigned long entries[KGF_DEPTH];
	unsigned int n;
	u64 nth;

	if (!(READ_ONCE(kgf_kinds) & kind) || !kgf_probed_in_task() ||
	    current->fail_nth)
		return;
	n = kgf_probed_stack(regs, entries);
	if (!kgf_for_target(entries, n))
		return;
	nth = READ_ONCE(kgf_nth);
	if (atomic64_inc_return(&kgf_count) != nth || !nth)
		return;
	memcpy(kgf_stack, entries, n * sizeof(entries[0]));
	kgf_stack_len = n;
	atomic_set(&kgf_injected, kind);
	current->fail_nth = 1;
}

static int kgf_attr_kind(const struct fault_attr *attr)
{
	const char *name;

#ifdef FAULT_ATTR_DNAME_LEN
	/* since 6.7 the attribute keeps its debugfs directory's name itself */
	name = attr->dname;
#else
	if (!attr->dname)
		return 0;
	name = attr->dname->d_name.name;
#endif
	if (!strcmp(name, "failslab"))
		return KGF_SLAB;
	if (!strcmp(name, "fail_page_alloc"))
		return KGF_PAGE;
	return 0;
}

/* should_fail_ex(attr, size, flags): the decision of failslab and fail_page_alloc. */
static int kgf_should_fail_pre(struct kprobe *kp, struct pt_regs *regs)
{
	struct fault_attr *attr;
	int kind;

	attr = (struct fault_attr *)regs_get_kernel_argument(regs, 0);
	kind = kgf_attr_kind(attr);
	if (kind)
		kgf_count_call(kind, regs);
	return 0;
}

/*
 * Nothing to do after the call; its being there keeps the probe an int3
 * one (an optimized probe would run the handler in task context once the
 * kernel got round to optimizing it, and from the trap before: the same
 * call would be judged two ways).
 */
static void kgf_should_fail_post(struct kprobe *kp, struct pt_regs *regs,
				 unsigned long flags)
{
}

static struct kprobe kgf_should_fail = {
	.symbol_name	= "should_fail_ex",
	.pre_handler	= kgf_should_fail_pre,
	.post_handler	= kgf_should_fail_post,
};

/*
 * At the entry of a function fail_function injects into: registered after
 * fail_function's own probe, so this handler runs first and fail_function's
 * should_fail() then sees fail_nth.
 */
static int kgf_function_pre(struct kprobe *kp, struct pt_regs *regs)
{
	kgf_count_call(KGF_FUNCTION, regs);
	return 0;
}

/* fail_function did not take the call it was given: do not fail another one. */
static void kgf_function_post(struct kprobe *kp, struct pt_regs *regs,
			      unsigned long flags)
{
	if (current->fail_nth == 1 &&
	    atomic_read(&kgf_injected) == KGF_FUNCTION) {
		current->fail_nth = 0;
		atomic_set(&kgf_injected, 0);
	}
}

static void kgf_drop_functions(void)
{
	int i;

	for (i = 0; i < KGF_FUNCTIONS; i++) {
		if (!kgf_functions[i])
			continue;
		unregister_kprobe(&kgf_functions[i]->kp);
		kfree(kgf_functions[i]);
		kgf_functions[i] = NULL;
	}
}

static int kgf_add_function(const char *name)
{
	struct kgf_function *f;
	int i, ret;

	for (i = 0; i < KGF_FUNCTIONS && kgf_functions[i]; i++)
		;
	if (i == KGF_FUNCTIONS)
		return -ENOSPC;
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;
	strscpy(f->name, name, sizeof(f->name));
	f->kp.symbol_name = f->name;
	f->kp.pre_handler = kgf_function_pre;
	f->kp.post_handler = kgf_function_post;
	ret = register_kprobe(&f->kp);
	if (ret) {
		kfree(f);
		return ret;
	}
	kgf_functions[i] = f;
	return 0;
}

static ssize_t kgf_functions_write(struct file *file, const char __user *ubuf,
				   size_t len, loff_t *off)
{
	char buf[KSYM_NAME_LEN];
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	strim(buf);
	mutex_lock(&kgf_lock);
	if (!strcmp(buf, "-")) {
		kgf_drop_functions();
		ret = 0;
	} else {
		ret = kgf_add_function(buf);
	}
	mutex_unlock(&kgf_lock);
	return ret ? ret : len;
}

static const struct file_operations kgf_functions_fops = {
	.owner	= THIS_MODULE,
	.write	= kgf_functions_write,
};

static ssize_t kgf_ranges_write(struct file *file, const char __user *ubuf,
				size_t len, loff_t *off)
{
	struct kgf_range ranges[KGF_RANGES];
	char *buf, *p, *word;
	unsigned long v[2];
	int n = 0, k = 0, ret = 0;

	buf = memdup_user_nul(ubuf, min_t(size_t, len, PAGE_SIZE - 1));
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	p = buf;
	while ((word = strsep(&p, " \t\n")) != NULL) {
		if (!*word)
			continue;
		ret = kstrtoul(word, 16, &v[k]);
		if (ret)
			break;
		if (++k < 2)
			continue;
		k = 0;
		if (n == KGF_RANGES || v[1] <= v[0]) {
			ret = -EINVAL;
			break;
		}
		ranges[n].start = v[0];
		ranges[n].end = v[1];
		n++;
	}
	kfree(buf);
	if (!ret && k)
		ret = -EINVAL;
	if (ret)
		return ret;
	mutex_lock(&kgf_lock);
	WRITE_ONCE(kgf_nr_ranges, 0);
	synchronize_rcu();	/* handlers are done with the old ranges */
	memcpy(kgf_ranges, ranges, n * sizeof(ranges[0]));
	WRITE_ONCE(kgf_nr_ranges, n);
	mutex_unlock(&kgf_lock);
	return len;
}

static int kgf_ranges_show(struct seq_file *m, void *v)
{
	int r;

	for (r = 0; r < kgf_nr_ranges; r++)
		seq_printf(m, "%lx %lx\n", kgf_ranges[r].start, kgf_ranges[r].end);
	return 0;
}

static int kgf_ranges_open(struct inode *inode, struct file *file)
{
	return single_open(file, kgf_ranges_show, NULL);
}

static const struct file_operations kgf_ranges_fops = {
	.owner		= THIS_MODULE,
	.open		= kgf_ranges_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= single_release,
	.write		= kgf_ranges_write,
};

static int kgf_nth_get(void *data, u64 *val)
{
	*val = READ_ONCE(kgf_nth);
	return 0;
}

static int kgf_nth_set(void *data, u64 val)
{
	mutex_lock(&kgf_lock);
	WRITE_ONCE(kgf_nth, 0);
	atomic64_set(&kgf_count, 0);
	atomic_set(&kgf_injected, 0);
	kgf_stack_len = 0;
	WRITE_ONCE(kgf_nth, val);
	mutex_unlock(&kgf_lock);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(kgf_nth_fops, kgf_nth_get, kgf_nth_set, "%llu\n");

static int kgf_count_get(void *data, u64 *val)
{
	*val = atomic64_read(&kgf_count);
	return 0;
}

DEFINE_DEBUGFS_ATTRIBUTE(kgf_count_fops, kgf_count_get, NULL, "%llu\n");

static int kgf_injected_show(struct seq_file *m, void *v)
{
	static const char * const names[] = {
		[KGF_SLAB] = "slab",
		[KGF_PAGE] = "page",
		[KGF_FUNCTION] = "function",
	};
	int kind = atomic_read(&kgf_injected);
	unsigned int i;

	if (kind <= 0 || kind >= ARRAY_SIZE(names) || !names[kind]) {
		seq_puts(m, "none\n");
		return 0;
	}
	seq_printf(m, "%s\n", names[kind]);
	for (i = 0; i < kgf_stack_len; i++)
		seq_printf(m, " %pS\n", (void *)kgf_stack[i]);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(kgf_injected);

static struct dentry *kgf_dir;

static int __init kgf_init(void)
{
	int ret;

	ret = register_kprobe(&kgf_should_fail);
	if (ret) {
		pr_err("kguest_fault: cannot probe should_fail_ex: %d\n", ret);
		return ret;
	}
	kgf_dir = debugfs_create_dir("kguest_fault", NULL);
	debugfs_create_file("ranges", 0600, kgf_dir, NULL, &kgf_ranges_fops);
	debugfs_create_u32("kinds", 0600, kgf_dir, &kgf_kinds);
	debugfs_create_file("functions", 0200, kgf_dir, NULL,
			    &kgf_functions_fops);
	debugfs_create_file_unsafe("nth", 0600, kgf_dir, NULL, &kgf_nth_fops);
	debugfs_create_file_unsafe("count", 0400, kgf_dir, NULL,
				   &kgf_count_fops);
	debugfs_create_file("injected", 0400, kgf_dir, NULL,
			    &kgf_injected_fops);
	return 0;
}

static void __exit kgf_exit(void)
{
	debugfs_remove_recursive(kgf_dir);
	kgf_drop_functions();
	unregister_kprobe(&kgf_should_fail);
}

module_init(kgf_init);
module_exit(kgf_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kguest: fail the N-th fault-injectable call of one module");
