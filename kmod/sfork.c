// SPDX-License-Identifier: GPL-2.0
/*
 * sfork: one memory region shared by a parent and the child of one fork,
 * with the direction of writing enforced by the kernel.
 *
 * A region is a shmem file (so its pages have a mapping: shared futexes,
 * reclaim and migration work as for any shared memory) created on a
 * /dev/sfork file.  SFORK_IOC_CREATE maps it into the caller and arms it;
 * the next fork() by the calling thread that succeeds hands the new process
 * the child's side.  Each VMA maps the region file (ours, on the shmem
 * inode) and points at its side.
 * Pages reach page tables only through ->fault and ->map_pages, under the
 * faulting VMA's own protection, so no fork can carry a writable PTE into a
 * read-only side.  See DESIGN.md.
 */

#include <linux/anon_inodes.h>
#include <linux/compat.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/miscdevice.h>
#include <linux/mount.h>
#include <linux/mm.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/percpu.h>
#include <linux/pid.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/task.h>
#include <linux/seq_file.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <linux/sfork.h>

#include "compat.h"
#include "sfork_policy.h"

/* The task a fork is creating is found through the new mm's owner. */
#ifndef CONFIG_MEMCG
#error "sfork needs CONFIG_MEMCG (mm->owner)"
#endif

static unsigned long eager_threshold = 2UL << 20;
module_param(eager_threshold, ulong, 0644);
MODULE_PARM_DESC(eager_threshold,
		 "Without an allocation flag, regions up to this many bytes are eager (default 2 MiB)");

static int huge_pages = 1;
module_param(huge_pages, int, 0644);
MODULE_PARM_DESC(huge_pages,
		 "2 MiB pages for regions of 2 MiB or more: 0 never, 1 eager regions (default), 2 every region");

static unsigned long max_region_bytes = 8UL << 30;
module_param(max_region_bytes, ulong, 0644);
MODULE_PARM_DESC(max_region_bytes,
		 "Largest region in bytes; longer requests fail with ENOMEM (default 8 GiB)");

struct sfork_region;

struct sfork_side {
	struct sfork_region *region;
	bool writable;
};

/*
 * Who gets the child's side.  Armed: @thread is set, the rest NULL.  While
 * the armed fork runs and until it is known to have succeeded: all three.
 * Spent: only @child_mm, so that every VMA of that one fork gets the
 * child's side and no later one does.
 */
struct sfork_arming {
	struct pid *thread;		/* whose next fork makes the child */
	struct mm_struct *child_mm;	/* that fork's mm, pinned: compared, never used */
	struct task_struct *child;	/* that fork's task, pinned while TASK_NEW matters */
};

struct sfork_region {
	struct file *file;		/* every VMA's vm_file; f_count is the refcount */
	struct file *shm;		/* holds the pages: the same file */
	const struct file_operations *inode_fop;	/* the inode's own */
	struct task_struct *mapper;	/* CREATE's thread while it maps */
	pgoff_t npages;
	unsigned int flags;		/* allocation mode resolved */
	struct sfork_side side[2];
	spinlock_t lock;		/* protects arming */
	struct sfork_arming arming;
	struct list_head node;		/* on sfork_regions */
};

/* tmpfs with huge=within_size: 2 MiB folios wherever one fits in i_size */
static struct vfsmount *sfork_huge_mnt;

static LIST_HEAD(sfork_regions);
static DEFINE_MUTEX(sfork_regions_lock);
static u64 sfork_regions_created;
static u64 sfork_regions_eager;
static DEFINE_PER_CPU(u64, sfork_faults);
static DEFINE_PER_CPU(u64, sfork_zeroed_once);
static DEFINE_PER_CPU(u64, sfork_cleared);

/* The device file, side files and VMAs (as vm_file) each hold one. */
static void sfork_region_get(struct sfork_region *region)
{
	get_file(region->file);
}

static void sfork_region_put(struct sfork_region *region)
{
	fput(region->file);
}

static void sfork_set_side(struct vm_area_struct *vma, struct sfork_side *side)
{
	vm_flags_t set = side->writable ? VM_WRITE : 0;
	vm_flags_t clear = side->writable ? 0 : VM_WRITE;

	/*
	 * Only VM_WRITE changes: VM_MAYWRITE stays as mmap set it, because
	 * fork may already have counted this VMA as shared-maywrite in the
	 * file's mapping.  ->mprotect() is what keeps a read-only side from
	 * asking for write again.
	 */
	sfork_vm_flags_mod(vma, set, clear);
	vma->vm_page_prot = vm_get_page_prot(vma->vm_flags);
	vma->vm_private_data = side;
}

/* Drops the references an arming held; called without the region's lock. */
static void sfork_arming_put(struct sfork_arming *spent)
{
	put_pid(spent->thread);
	if (spent->child)
		put_task_struct(spent->child);
	if (spent->child_mm)
		mmdrop(spent->child_mm);
}

/*
 * A fork that has returned its child has woken it (wake_up_new_task()),
 * so the child is TASK_NEW only while its fork may still fail.  Once it
 * is not, the arming is spent; @spent takes what is to be dropped.
 */
static void sfork_arming_settle(struct sfork_arming *arming,
				struct sfork_arming *spent)
{
	if (!arming->child || READ_ONCE(arming->child->__state) == TASK_NEW)
		return;
	spent->thread = arming->thread;
	spent->child = arming->child;
	arming->thread = NULL;
	arming->child = NULL;
}

/*
 * The task being created by the fork that copies @mm: dup_mm() set the
 * owner in mm_init() before dup_mmap() calls ->open.  Referenced, or NULL.
 */
static struct task_struct *sfork_new_task(struct mm_struct *mm)
{
	struct task_struct *task;

	rcu_read_lock();
	task = rcu_dereference(mm->owner);
	if (task && READ_ONCE(task->__state) == TASK_NEW)
		get_task_struct(task);
	else
		task = NULL;
	rcu_read_unlock();
	return task;
}

/*
 * Called for every new VMA of a region: fork, split and mremap.  Only a fork
 * by the armed thread (and, for a region already split, every other piece
 * of that same fork) yields the child's side; anything else keeps the side
 * vm_area_dup() copied, so a read-only side can never fork a writer.
 */
static void sfork_vm_open(struct vm_area_struct *vma)
{
	struct sfork_side *side = vma->vm_private_data;
	struct sfork_region *region = side->region;
	struct sfork_arming *arming = &region->arming;
	struct sfork_arming spent = {};
	bool child;

	if (vma->vm_mm == current->mm)
		return;

	spin_lock(&region->lock);
	sfork_arming_settle(arming, &spent);
	if (arming->thread == task_pid(current) && !arming->child) {
		spent.child_mm = arming->child_mm;
		arming->child_mm = vma->vm_mm;
		mmgrab(vma->vm_mm);
		arming->child = sfork_new_task(vma->vm_mm);
		/* Without the task no failure can be seen: spent now. */
		if (!arming->child) {
			spent.thread = arming->thread;
			arming->thread = NULL;
		}
	}
	child = arming->child_mm == vma->vm_mm;
	spin_unlock(&region->lock);
	sfork_arming_put(&spent);

	if (child)
		sfork_set_side(vma, &region->side[SFORK_CHILD]);
}

/*
 * A fork that fails after copying the address space (cgroup_can_fork(),
 * the put_user() of a CLONE_PIDFD, a fatal signal) tears the new mm down
 * in the forking thread, before bad_fork_free frees the task, which is
 * still TASK_NEW: that is the one case that arms the region again.  Any
 * other close of a VMA in the armed fork's mm happens after its child ran
 * (a successful fork wakes the child before it returns, and the mm dies
 * only after the child dropped it), so it finds the child no longer
 * TASK_NEW and settles the arming as spent.
 */
static void sfork_vm_close(struct vm_area_struct *vma)
{
	struct sfork_side *side = vma->vm_private_data;
	struct sfork_region *region = side->region;
	struct sfork_arming *arming = &region->arming;
	struct sfork_arming spent = {};

	spin_lock(&region->lock);
	if (arming->child && arming->child_mm == vma->vm_mm &&
	    READ_ONCE(arming->child->__state) == TASK_NEW) {
		spent.child = arming->child;
		spent.child_mm = arming->child_mm;
		arming->child = NULL;
		arming->child_mm = NULL;
	} else {
		sfork_arming_settle(arming, &spent);
	}
	spin_unlock(&region->lock);
	sfork_arming_put(&spent);
}

static int sfork_vm_mprotect(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, unsigned long newflags)
{
	struct sfork_side *side = vma->vm_private_data;

	if ((newflags & VM_WRITE) && !side->writable)
		return -EACCES;
	return 0;
}

/*
 * Whether the page allocator zeroed a page it allocated with @gfp:
 * post_alloc_hook() does with init_on_alloc, unless init_on_free is on too
 * (it then counts on the zeroing at free) or hardware-tag KASAN was told
 * to skip it (__GFP_SKIP_ZERO).  Only the first is taken for zeroed.
 */
static bool sfork_alloc_zeroes(gfp_t gfp)
{
	return want_init_on_alloc(gfp) && !want_init_on_free() &&
	       !IS_ENABLED(CONFIG_KASAN_HW_TAGS);
}

/*
 * A folio that sfork_shmem_begin() has just allocated for this call: no
 * one else fills a region's inode (it cannot be opened, written, resized
 * or fallocated), so !uptodate means new, and locked keeps every other
 * fault and fault-around away from it until it is uptodate.  It is
 * cleared only if the allocator has not zeroed it already.
 */
static void sfork_folio_zero(struct folio *folio, gfp_t gfp)
{
	long i, n = folio_nr_pages(folio);

	if (sfork_alloc_zeroes(gfp)) {
		this_cpu_add(sfork_zeroed_once, n);
	} else {
		for (i = 0; i < n; i++)
			clear_highpage(folio_page(folio, i));
		flush_dcache_folio(folio);
		this_cpu_add(sfork_cleared, n);
	}
	folio_mark_uptodate(folio);
}

/*
 * The page of a region at @index, referenced: allocated, zeroed once and
 * charged to current's memcg on first use, and dirty, so that it stays
 * until the region is gone (or goes to swap and comes back).
 */
static struct page *sfork_region_page(struct sfork_region *region,
				      pgoff_t index)
{
	struct sfork_shmem_write w;
	struct folio *folio;

	folio = sfork_shmem_begin(region->shm, index, &w);
	if (IS_ERR(folio))
		return ERR_CAST(folio);
	if (!folio_test_uptodate(folio))
		sfork_folio_zero(folio, mapping_gfp_mask(region->shm->f_mapping));
	return sfork_shmem_end(region->shm, &w);
}

static vm_fault_t sfork_vm_fault(struct vm_fault *vmf)
{
	struct sfork_side *side = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff >= side->region->npages)
		return VM_FAULT_SIGBUS;

	page = sfork_region_page(side->region, vmf->pgoff);
	if (IS_ERR(page))
		return vmf_error(PTR_ERR(page));

	this_cpu_inc(sfork_faults);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct sfork_vm_ops = {
	.open		= sfork_vm_open,
	.close		= sfork_vm_close,
	.mprotect	= sfork_vm_mprotect,
	.fault		= sfork_vm_fault,
	.map_pages	= filemap_map_pages,
};

/* A whole region, shared, with no more permission than its side has. */
static int sfork_vma_init(struct vm_area_struct *vma, struct sfork_side *side)
{
	if (!(vma->vm_flags & VM_SHARED) || vma->vm_pgoff ||
	    vma_pages(vma) != side->region->npages)
		return -EINVAL;
	if ((vma->vm_flags & VM_WRITE) && !side->writable)
		return -EACCES;

	sfork_vm_flags_mod(vma, VM_DONTEXPAND, 0);
	vma->vm_ops = &sfork_vm_ops;
	vma->vm_private_data = side;
	/* The region file, not the one mmap() was called on: see below. */
	if (vma->vm_file != side->region->file)
		vma_set_file(vma, side->region->file);
	return 0;
}

/*
 * The region's shmem inode can be reached by path: /proc/PID/map_files
 * (CAP_CHECKPOINT_RESTORE) and a file handle (CAP_DAC_READ_SEARCH) lead to
 * the region file's dentry.  Opening it would run the inode's i_fop, shmem's
 * own file operations, and give a writable file; so for as long as the
 * region lives its inode's i_fop refuses every open.  Nothing else uses
 * i_fop: shmem_file_setup() gave the shmem file its f_op directly, and
 * page cache, reclaim, swap, futex keys, seals and smaps go through
 * f_mapping and SHMEM_I().  truncate(2) by path opens nothing and goes to
 * shmem_setattr(), which F_SEAL_SHRINK and F_SEAL_GROW refuse.
 */
static int sfork_inode_open(struct inode *inode, struct file *file)
{
	return -ENXIO;
}

static const struct file_operations sfork_inode_fops = {
	.owner		= THIS_MODULE,
	.open		= sfork_inode_open,
};

static void sfork_shm_close_paths(struct sfork_region *region)
{
	struct inode *inode = file_inode(region->shm);

	SHMEM_I(inode)->seals |= F_SEAL_SHRINK | F_SEAL_GROW;
	region->inode_fop = inode->i_fop;
	WRITE_ONCE(inode->i_fop, &sfork_inode_fops);
}

/*
 * An O_PATH descriptor or a file handle can keep the inode beyond the
 * region and the module.  Give it back the kernel's own i_fop, which must
 * not point into a module that may be gone, and its pages, so that such a
 * holder finds an empty file that no process maps.
 */
static void sfork_shm_release_paths(struct sfork_region *region)
{
	struct inode *inode = file_inode(region->shm);

	shmem_truncate_range(inode, 0, (loff_t)-1);
	WRITE_ONCE(inode->i_fop, region->inode_fop);
}

/*
 * The last reference to a region goes with its region file, from the VFS:
 * a VMA may hold the last one, and the module must stay until the release
 * has returned (the file's f_op holds the module).  __fput() then drops
 * the file's dentry, and with it the shmem inode and its pages.
 */
static int sfork_region_release(struct inode *inode, struct file *file)
{
	struct sfork_region *region = file->private_data;

	mutex_lock(&sfork_regions_lock);
	list_del(&region->node);
	mutex_unlock(&sfork_regions_lock);

	sfork_arming_put(&region->arming);
	sfork_shm_release_paths(region);
	kfree(region);
	return 0;
}

/*
 * The region file maps once: the creator's side, from sfork_map(), in the
 * thread that is creating the region.  Any other mmap that reaches it is
 * refused with ENODEV, as if it had no mmap: remap_file_pages() of a
 * region VMA maps the VMA's vm_file again, MAP_FIXED over the VMA itself.
 * do_mmap() asks get_unmapped_area before it unmaps anything, so refused
 * there the VMA stays as it was (mmap is the check of last resort: without
 * THP there is no get_unmapped_area of ours).
 */
static bool sfork_region_mapping(struct file *file)
{
	struct sfork_region *region = file->private_data;

	return READ_ONCE(region->mapper) == current;
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
static unsigned long sfork_region_get_unmapped_area(struct file *file,
						    unsigned long addr,
						    unsigned long len,
						    unsigned long pgoff,
						    unsigned long flags)
{
	if (!sfork_region_mapping(file))
		return -ENODEV;
	return thp_get_unmapped_area(file, addr, len, pgoff, flags);
}
#else
#define sfork_region_get_unmapped_area NULL
#endif

static int sfork_region_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sfork_region *region = file->private_data;

	if (!sfork_region_mapping(file))
		return -ENODEV;
	return sfork_vma_init(vma, &region->side[SFORK_CREATOR]);
}

/*
 * What a region's VMAs map: the region's shmem file, with our file
 * operations in place of shmem's.  A shmem file, because mm and memfd
 * code take SHMEM_I(file_inode()) of any file whose f_mapping is shmem's
 * (seal checks, smaps, swap-in), and rmap and fault-around need the shmem
 * mapping.  Our operations, because shmem's would let any side write:
 * fallocate() is what MADV_REMOVE calls, and it only asks for
 * VM_MAYWRITE, which a read-only side keeps (see sfork_set_side()).  It is
 * never in a file table, and its inode cannot be opened
 * (sfork_inode_fops), so it cannot be truncated or reopened.
 */
static const struct file_operations sfork_region_fops = {
	.owner		= THIS_MODULE,
	.release	= sfork_region_release,
	.get_unmapped_area = sfork_region_get_unmapped_area,
	.mmap		= sfork_region_mmap,
	.fsync		= noop_fsync,
	.llseek		= noop_llseek,
};

/*
 * The new shmem file becomes the region file: one struct file per region,
 * where a second file on the same inode would cost an allocation now and
 * a release at the end.  No one else holds the file yet.  shmem's f_op has
 * no release, so nothing of shmem's is skipped at the end; __fput() will
 * drop a module reference for ours, which replace_fops() does not take
 * (the caller is in an ioctl of ours: the module is pinned already); and
 * the file can no longer be read or written.
 */
static void sfork_region_file(struct sfork_region *region, struct file *shm)
{
	__module_get(THIS_MODULE);
	replace_fops(shm, &sfork_region_fops);
	shm->f_mode &= ~(FMODE_CAN_READ | FMODE_CAN_WRITE);
	shm->private_data = region;
	region->file = shm;
	region->shm = shm;
}

static struct sfork_region *sfork_region_new(pgoff_t npages, unsigned int flags)
{
	loff_t size = (loff_t)npages << PAGE_SHIFT;
	struct sfork_region *region;
	struct file *shm;
	int i, ret;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return ERR_PTR(-ENOMEM);

	/*
	 * VM_NORESERVE: pages are accounted as they are allocated.  shmem
	 * falls back to 4 KiB pages by itself when no huge page can be had
	 * (fragmentation, a memcg charge that fails).  A lazy region is often
	 * touched sparsely, and each first touch of a huge one allocates and
	 * zeroes 2 MiB: by default only eager regions, which allocate
	 * everything anyway, get huge pages.
	 */
	if (sfork_wants_huge(npages, flags, READ_ONCE(huge_pages),
			     sfork_huge_mnt))
		shm = shmem_file_setup_with_mnt(sfork_huge_mnt, "sfork", size,
						VM_NORESERVE);
	else
		shm = shmem_file_setup("sfork", size, VM_NORESERVE);
	if (IS_ERR(shm)) {
		/*
		 * Kernel-internal tmpfs mounts have no size or inode limit:
		 * shmem's ENOSPC means it could not allocate the inode.
		 */
		ret = PTR_ERR(shm) == -ENOSPC ? -ENOMEM : PTR_ERR(shm);
		goto free_region;
	}
	/* The region's first reference, which CREATE gives the device file. */
	sfork_region_file(region, shm);
	sfork_shm_close_paths(region);
	region->npages = npages;
	region->flags = flags;
	spin_lock_init(&region->lock);
	for (i = SFORK_CREATOR; i <= SFORK_CHILD; i++) {
		region->side[i].region = region;
		region->side[i].writable = sfork_side_may_write(flags, i);
	}

	mutex_lock(&sfork_regions_lock);
	list_add(&region->node, &sfork_regions);
	sfork_regions_created++;
	if (flags & SFORK_EAGER)
		sfork_regions_eager++;
	mutex_unlock(&sfork_regions_lock);
	return region;

free_region:
	kfree(region);
	return ERR_PTR(ret);
}

/*
 * Eager allocation: every page now, charged to the caller's memcg.  A
 * limit or a lack of memory is ENOMEM here, never an OOM kill.
 */
static int sfork_region_populate(struct sfork_region *region)
{
	struct address_space *mapping = region->shm->f_mapping;
	gfp_t gfp = mapping_gfp_mask(mapping);
	struct page *page;
	pgoff_t i, next;
	int ret = 0;

	/* Nothing maps the region yet: no fault sees this mask. */
	mapping_set_gfp_mask(mapping, gfp | __GFP_RETRY_MAYFAIL | __GFP_NOWARN);
	for (i = 0; i < region->npages; i = next) {
		if (fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		page = sfork_region_page(region, i);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page) == -ENOSPC ? -ENOMEM : PTR_ERR(page);
			break;
		}
		/* A huge folio brought its 511 neighbours along. */
		next = page_folio(page)->index + folio_nr_pages(page_folio(page));
		put_page(page);
		cond_resched();
	}
	mapping_set_gfp_mask(mapping, gfp);
	return ret;
}

/*
 * The caller's void * must be writable: checked before anything is made
 * (its value written back unchanged), so that the only late EFAULT is a
 * caller unmapping it during the call.
 */
static int sfork_probe_addr(u64 addr_ptr)
{
	void __user *uptr = u64_to_user_ptr(addr_ptr);
	unsigned long v;
	u32 v32;

	if (in_compat_syscall()) {
		if (get_user(v32, (u32 __user *)uptr))
			return -EFAULT;
		return put_user(v32, (u32 __user *)uptr);
	}
	if (get_user(v, (unsigned long __user *)uptr))
		return -EFAULT;
	return put_user(v, (unsigned long __user *)uptr);
}

static int sfork_put_addr(u64 addr_ptr, unsigned long addr)
{
	void __user *uptr = u64_to_user_ptr(addr_ptr);

	if (in_compat_syscall())
		return put_user((u32)addr, (u32 __user *)uptr);
	return put_user(addr, (unsigned long __user *)uptr);
}

/*
 * A side file stands for one side of a region: what CREATE maps and what
 * SFORK_IOC_EXPORT hands out.  Whoever maps it, in whatever process, gets
 * that side's permission and no more; it cannot be written or truncated,
 * and reopening it through /proc/self/fd gives a bare anon inode that
 * cannot be mapped.  It holds a reference on the region.
 */
static int sfork_side_mmap(struct file *file, struct vm_area_struct *vma)
{
	return sfork_vma_init(vma, file->private_data);
}

static long sfork_side_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct sfork_side *side = file->private_data;
	struct sfork_info info = {
		.size = (u64)side->region->npages << PAGE_SHIFT,
		.flags = side->region->flags,
		.writable = side->writable,
	};

	if (cmd != SFORK_IOC_INFO)
		return -ENOTTY;
	return copy_to_user((void __user *)arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static int sfork_side_release(struct inode *inode, struct file *file)
{
	struct sfork_side *side = file->private_data;

	sfork_region_put(side->region);
	return 0;
}

/*
 * 2 MiB-aligned addresses for regions of 2 MiB or more, so that a huge
 * folio can be mapped by one PMD (transhuge_vma_suitable()); shorter ones
 * get the ordinary search.  Not shmem_get_unmapped_area(): it wants a
 * shmem file.
 */
static const struct file_operations sfork_side_fops = {
	.owner		= THIS_MODULE,
	.release	= sfork_side_release,
	.get_unmapped_area = thp_get_unmapped_area,
	.mmap		= sfork_side_mmap,
	.unlocked_ioctl	= sfork_side_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct file *sfork_side_file(struct sfork_side *side)
{
	struct file *file;

	sfork_region_get(side->region);
	file = anon_inode_getfile("[sfork]", &sfork_side_fops, side, O_RDWR);
	if (IS_ERR(file))
		goto put;
	return file;

put:
	sfork_region_put(side->region);
	return file;
}

/* Map the creator's side into current. */
static unsigned long sfork_map(struct sfork_region *region)
{
	struct sfork_side *side = &region->side[SFORK_CREATOR];
	unsigned long prot = PROT_READ;
	unsigned long addr;

	if (side->writable)
		prot |= PROT_WRITE;

	/*
	 * No MAP_POPULATE for an eager region: its pages are allocated
	 * already, and prefaulting the creator's page tables cost more than
	 * the first touches it saves (fault-around maps 16 pages, or a PMD,
	 * per fault).  The region file itself, not a side file made only to
	 * be mapped and released again: its mmap maps the creator's side for
	 * this thread, now, and for no one else (sfork_region_mmap()).
	 */
	WRITE_ONCE(region->mapper, current);
	addr = vm_mmap(region->file, 0,
		       (unsigned long)region->npages << PAGE_SHIFT, prot,
		       MAP_SHARED, 0);
	WRITE_ONCE(region->mapper, NULL);
	return addr;
}

static long sfork_create(struct file *file, struct sfork_create __user *uarg)
{
	struct sfork_region *region;
	struct sfork_create arg;
	unsigned long addr;
	long ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	ret = sfork_check_args(&arg, READ_ONCE(max_region_bytes));
	if (ret)
		return ret;
	if (sfork_probe_addr(arg.addr_ptr))
		return -EFAULT;

	arg.flags = sfork_resolve_alloc(arg.flags, arg.len,
					READ_ONCE(eager_threshold));
	region = sfork_region_new(DIV_ROUND_UP(arg.len, PAGE_SIZE), arg.flags);
	if (IS_ERR(region))
		return PTR_ERR(region);

	/*
	 * The region dies with its last reference: this fd, a VMA (another
	 * thread's fork may copy one at any time) or an exported fd.
	 */
	if (cmpxchg(&file->private_data, NULL, region)) {
		ret = -EBUSY;
		goto put;
	}

	if (arg.flags & SFORK_EAGER) {
		ret = sfork_region_populate(region);
		if (ret)
			goto detach;
	}

	addr = sfork_map(region);
	if (IS_ERR_VALUE(addr)) {
		ret = (long)addr;
		goto detach;
	}

	arg.out_flags = arg.flags;
	arg.addr = addr;
	arg.size = (u64)region->npages << PAGE_SHIFT;
	if (sfork_put_addr(arg.addr_ptr, addr) ||
	    copy_to_user(uarg, &arg, sizeof(arg))) {
		ret = -EFAULT;
		goto unmap;
	}

	spin_lock(&region->lock);
	region->arming.thread = get_pid(task_pid(current));
	spin_unlock(&region->lock);
	return 0;

unmap:
	vm_munmap(addr, arg.size);
detach:
	/*
	 * No VMA of ours holds the region now: drop it, and the pages an
	 * eager allocation charged, before the ioctl returns rather than
	 * when the fd is closed.  Only ioctl and release look at the device
	 * file's region.
	 */
	WRITE_ONCE(file->private_data, NULL);
put:
	sfork_region_put(region);
	return ret;
}

/* The side of the region mapped at @addr in current, referenced. */
static struct sfork_side *sfork_side_at(unsigned long addr)
{
	struct sfork_side *side = NULL;
	struct vm_area_struct *vma;

	mmap_read_lock(current->mm);
	vma = vma_lookup(current->mm, addr);
	if (vma && vma->vm_ops == &sfork_vm_ops) {
		side = vma->vm_private_data;
		sfork_region_get(side->region);
	}
	mmap_read_unlock(current->mm);
	return side;
}

/* Armed, or its armed fork not yet known to have succeeded. */
static bool sfork_region_armed(struct sfork_region *region)
{
	struct sfork_arming spent = {};
	bool armed;

	spin_lock(&region->lock);
	sfork_arming_settle(&region->arming, &spent);
	armed = region->arming.thread;
	spin_unlock(&region->lock);
	sfork_arming_put(&spent);
	return armed;
}

static long sfork_export(struct sfork_export __user *uarg)
{
	struct sfork_export arg;
	struct sfork_side *side;
	struct file *file;
	long ret;
	int fd;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.fd_flags & ~O_CLOEXEC)
		return -EINVAL;
	side = sfork_side_at(arg.addr);
	if (!side)
		return -EINVAL;

	/*
	 * Before its fork a region's only descriptor would reach the child
	 * with the creator's side: refuse until the child exists.
	 */
	if (sfork_region_armed(side->region)) {
		ret = -EBUSY;
		goto put_region;
	}

	fd = get_unused_fd_flags(arg.fd_flags);
	if (fd < 0) {
		ret = fd;
		goto put_region;
	}
	file = sfork_side_file(side);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto put_fd;
	}
	arg.fd = fd;
	if (copy_to_user(uarg, &arg, sizeof(arg))) {
		ret = -EFAULT;
		goto put_file;
	}
	fd_install(fd, file);
	sfork_region_put(side->region);
	return 0;

put_file:
	fput(file);
put_fd:
	put_unused_fd(fd);
put_region:
	sfork_region_put(side->region);
	return ret;
}

static long sfork_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	switch (cmd) {
	case SFORK_IOC_CREATE:
		return sfork_create(file, (struct sfork_create __user *)arg);
	case SFORK_IOC_EXPORT:
		return sfork_export((struct sfork_export __user *)arg);
	default:
		return -ENOTTY;
	}
}

static int sfork_open(struct inode *inode, struct file *file)
{
	/* misc_open() left the miscdevice here; a region goes here instead. */
	file->private_data = NULL;
	return 0;
}

static int sfork_release(struct inode *inode, struct file *file)
{
	struct sfork_region *region = file->private_data;

	if (region)
		sfork_region_put(region);
	return 0;
}

static const struct file_operations sfork_fops = {
	.owner		= THIS_MODULE,
	.open		= sfork_open,
	.release	= sfork_release,
	.unlocked_ioctl	= sfork_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice sfork_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "sfork",
	.fops	= &sfork_fops,
	.mode	= 0666,
};

static int sfork_stats_show(struct seq_file *m, void *v)
{
	struct sfork_region *region;
	unsigned long live = 0, pages = 0;
	u64 faults = 0, once = 0, cleared = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		faults += per_cpu(sfork_faults, cpu);
		once += per_cpu(sfork_zeroed_once, cpu);
		cleared += per_cpu(sfork_cleared, cpu);
	}

	mutex_lock(&sfork_regions_lock);
	list_for_each_entry(region, &sfork_regions, node) {
		live++;
		pages += READ_ONCE(region->shm->f_mapping->nrpages);
	}
	seq_printf(m, "regions_live %lu\n", live);
	seq_printf(m, "pages_live %lu\n", pages);
	seq_printf(m, "regions_created %llu\n", sfork_regions_created);
	seq_printf(m, "regions_eager %llu\n", sfork_regions_eager);
	seq_printf(m, "regions_lazy %llu\n",
		   sfork_regions_created - sfork_regions_eager);
	mutex_unlock(&sfork_regions_lock);
	seq_printf(m, "faults %llu\n", faults);
	/* which of the two a new page gets now (regions use shmem's gfp) */
	seq_printf(m, "zero_once %d\n", sfork_alloc_zeroes(GFP_HIGHUSER_MOVABLE));
	seq_printf(m, "pages_zeroed_once %llu\n", once);
	seq_printf(m, "pages_cleared %llu\n", cleared);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(sfork_stats);

static struct dentry *sfork_debugfs;

/*
 * The module's own tmpfs, whatever the global shmem_enabled (Debian:
 * never).  Without it every region has 4 KiB pages, as before.
 */
static struct vfsmount *sfork_mount_huge(void)
{
	/* shmem_parse_options() cuts up the string: it must be writable. */
	char opts[] = "huge=within_size";
	struct file_system_type *type;

	if (!IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE))
		return ERR_PTR(-EOPNOTSUPP);
	/* tmpfs is built in: get_fs_type() takes no module reference. */
	type = get_fs_type("tmpfs");
	if (!type)
		return ERR_PTR(-ENODEV);
	return vfs_kern_mount(type, SB_KERNMOUNT, "sfork", opts);
}

static int __init sfork_init(void)
{
	struct vfsmount *mnt;
	int ret;

	mnt = sfork_mount_huge();
	if (!IS_ERR(mnt))
		sfork_huge_mnt = mnt;

	ret = misc_register(&sfork_misc);
	if (ret)
		goto unmount;
	sfork_debugfs = debugfs_create_dir("sfork", NULL);
	debugfs_create_file("stats", 0444, sfork_debugfs, NULL,
			    &sfork_stats_fops);
	return 0;

unmount:
	if (sfork_huge_mnt)
		kern_unmount(sfork_huge_mnt);
	return ret;
}

static void __exit sfork_exit(void)
{
	debugfs_remove_recursive(sfork_debugfs);
	misc_deregister(&sfork_misc);
	/* No region is left (each holds the module), so no file on it. */
	if (sfork_huge_mnt)
		kern_unmount(sfork_huge_mnt);
}

module_init(sfork_init);
module_exit(sfork_exit);

MODULE_DESCRIPTION("sfork: fork with a kernel-enforced directional shared region");
MODULE_AUTHOR("The sfork developers");
MODULE_LICENSE("GPL");
