/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels sfork builds for (Debian 6.1, 6.12 LTS).
 * Everything version-dependent lives here and nowhere else.
 */
#ifndef SFORK_COMPAT_H
#define SFORK_COMPAT_H

#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/version.h>

#if KERNEL_VERSION(6, 3, 0) <= LINUX_VERSION_CODE
/* 6.3 made vm_flags read-only behind accessors that assert the mmap lock. */
static inline void sfork_vm_flags_mod(struct vm_area_struct *vma,
				      vm_flags_t set, vm_flags_t clear)
{
	vm_flags_mod(vma, set, clear);
}
#else
static inline void sfork_vm_flags_mod(struct vm_area_struct *vma,
				      vm_flags_t set, vm_flags_t clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}
#endif

/*
 * The page of a region at index, allocated (and charged to current's memcg
 * with the mapping's gfp mask) on first use; *zeroed_once is set when the
 * page allocator's zeroing was the only one.
 *
 * shmem clears a new folio before it marks it uptodate (SGP_CACHE), and
 * with init_on_alloc on the page allocator has zeroed it already: every
 * region page written with zeroes twice.  6.12 exports shmem_get_folio(),
 * whose SGP_WRITE leaves a new folio !uptodate for the caller to fill
 * (shmem's own write path); the region's inode has no writer but us, so a
 * !uptodate folio here is one this call allocated, and it is cleared only
 * if the allocator did not zero it.  6.1 exports only SGP_CACHE
 * (shmem_read_mapping_page_gfp()): there it stays twice.
 */
#if KERNEL_VERSION(6, 12, 0) <= LINUX_VERSION_CODE
#define SFORK_ZERO_ONCE 1
static inline struct page *sfork_shmem_page(struct address_space *mapping,
					    pgoff_t index, bool *zeroed_once)
{
	struct folio *folio;
	long i, n;
	int ret;

	ret = shmem_get_folio(mapping->host, index, 0, &folio, SGP_WRITE);
	if (ret)
		return ERR_PTR(ret);
	if (!folio_test_uptodate(folio)) {
		n = folio_nr_pages(folio);
		/* what post_alloc_hook() decides for the allocation */
		if (want_init_on_alloc(mapping_gfp_mask(mapping)) &&
		    !IS_ENABLED(CONFIG_KASAN_HW_TAGS)) {
			*zeroed_once = true;
		} else {
			for (i = 0; i < n; i++)
				clear_highpage(folio_page(folio, i));
			flush_dcache_folio(folio);
		}
		folio_mark_uptodate(folio);
	}
	folio_unlock(folio);
	return folio_file_page(folio, index);
}
#else
#define SFORK_ZERO_ONCE 0
static inline struct page *sfork_shmem_page(struct address_space *mapping,
					    pgoff_t index, bool *zeroed_once)
{
	return shmem_read_mapping_page_gfp(mapping, index,
					   mapping_gfp_mask(mapping));
}
#endif

#endif /* SFORK_COMPAT_H */
