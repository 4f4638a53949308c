/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sfork(3): fork with one memory region shared between parent and child,
 * the direction of writing enforced by the kernel.  See sfork(3).
 */
#ifndef SFORK_H
#define SFORK_H

#include <stddef.h>
#include <sys/types.h>
#include <linux/sfork.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The seed's short names. */
#ifndef SFORK_NO_SHORT_NAMES
#define BIDIRECTIONAL		SFORK_BIDIRECTIONAL
#define PARENT_TO_CHILD		SFORK_PARENT_TO_CHILD
#define CHILD_TO_PARENT		SFORK_CHILD_TO_PARENT
#endif

/*
 * Create a region of @len bytes (rounded up to the page size) and fork.
 * Returns the child's PID in the parent and 0 in the child; both find the
 * region's start in *@addr.  On error returns -1 with errno set and creates
 * nothing: no child, no mapping, no file descriptor.
 */
pid_t sfork(size_t len, unsigned int flags, void **addr);

/*
 * A new descriptor for this process's side of the region containing @addr,
 * for a program started with execve() or for another process (SCM_RIGHTS).
 * @flags is 0 (inherited across execve) or O_CLOEXEC.  The descriptor
 * carries the side: it maps with that side's permission wherever it is
 * mapped, and a read-only side's descriptor never maps writable.  Fails
 * with EINVAL if @addr is not in a region, EBUSY before the region's fork,
 * ENOSYS without the module.  Returns the descriptor, or -1 with errno.
 */
int sfork_region_fd(const void *addr, int flags);

/*
 * Map the whole region behind @fd (from sfork_region_fd()), read-write or
 * read-only as its side allows; its length goes to *@len if @len is not
 * NULL.  Returns the start, or NULL with errno (EINVAL: not such a
 * descriptor).
 */
void *sfork_region_map(int fd, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SFORK_H */
