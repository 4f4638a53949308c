/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels sfork builds for (Debian 6.1, 6.12 LTS).
 * Everything version-dependent lives here and nowhere else.
 */
#ifndef SFORK_COMPAT_H
#define SFORK_COMPAT_H

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
 * A region page is brought in the way shmem's own write() brings one in,
 * the only way it comes without a VMA and without being cleared first:
 * sfork_shmem_begin() gives the folio at @index locked and referenced,
 * allocated (and charged to current's memcg with the mapping's gfp mask)
 * if it was not there, and then left !uptodate for the caller to fill;
 * sfork_shmem_end() marks it dirty, unlocks it and leaves the caller one
 * reference to its page.  Dirty, so that no page-cache drop or reclaim
 * frees it: see "Region pages stay" in DESIGN.md.  The caller marks a new
 * folio uptodate before the end.
 *
 * 6.12 exports shmem_get_folio(), whose SGP_WRITE is what shmem's
 * write_begin uses.  6.1 exports only SGP_CACHE (which clears every new
 * folio) and shmem's address_space operations, whose write_begin and
 * write_end are that path: they exist only with CONFIG_TMPFS.
 */
struct sfork_shmem_write {
	struct page *page;
	loff_t pos;
	void *fsdata;
};

#if KERNEL_VERSION(6, 12, 0) <= LINUX_VERSION_CODE
static inline struct folio *sfork_shmem_begin(struct file *shm, pgoff_t index,
					      struct sfork_shmem_write *w)
{
	struct folio *folio;
	int ret;

	ret = shmem_get_folio(file_inode(shm), index, 0, &folio, SGP_WRITE);
	if (ret)
		return ERR_PTR(ret);
	w->page = folio_file_page(folio, index);
	w->pos = (loff_t)index << PAGE_SHIFT;
	w->fsdata = NULL;
	return folio;
}

static inline struct page *sfork_shmem_end(struct file *shm,
					   struct sfork_shmem_write *w)
{
	struct folio *folio = page_folio(w->page);

	folio_mark_dirty(folio);
	folio_unlock(folio);
	return w->page;
}
#else
#ifndef CONFIG_TMPFS
#error "sfork needs CONFIG_TMPFS before 6.12 (shmem's write_begin and write_end)"
#endif
/*
 * shmem_write_begin() checks the seals against pos + len (never beyond the
 * region's i_size) and calls shmem_get_folio(SGP_WRITE); it does not use
 * the file.  shmem_write_end() writes i_size only beyond it (never here),
 * clears nothing in a folio already uptodate, marks it dirty, unlocks it
 * and drops write_begin's reference: the caller's is taken before.
 */
static inline struct folio *sfork_shmem_begin(struct file *shm, pgoff_t index,
					      struct sfork_shmem_write *w)
{
	struct address_space *mapping = shm->f_mapping;
	int ret;

	w->pos = (loff_t)index << PAGE_SHIFT;
	w->fsdata = NULL;
	ret = mapping->a_ops->write_begin(shm, mapping, w->pos, PAGE_SIZE,
					  &w->page, &w->fsdata);
	if (ret)
		return ERR_PTR(ret);
	return page_folio(w->page);
}

static inline struct page *sfork_shmem_end(struct file *shm,
					   struct sfork_shmem_write *w)
{
	struct address_space *mapping = shm->f_mapping;

	get_page(w->page);
	mapping->a_ops->write_end(shm, mapping, w->pos, PAGE_SIZE, PAGE_SIZE,
				  w->page, w->fsdata);
	return w->page;
}
#endif

#endif /* SFORK_COMPAT_H */
