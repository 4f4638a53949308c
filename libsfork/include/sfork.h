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

#ifdef __cplusplus
}
#endif

#endif /* SFORK_H */
