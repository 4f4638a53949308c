/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Differences between the kernels sfork builds for (Debian 6.1, 6.12 LTS).
 * Everything version-dependent lives here and nowhere else.
 */
#ifndef SFORK_COMPAT_H
#define SFORK_COMPAT_H

#include <linux/mm.h>
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

#endif /* SFORK_COMPAT_H */
