/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sfork: the ABI of /dev/sfork, shared by the module, libsfork, the Python
 * binding and the fuzzer.  This header is the only definition of the flag
 * values and the ioctl layout.
 */
#ifndef _UAPI_LINUX_SFORK_H
#define _UAPI_LINUX_SFORK_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SFORK_DEVICE		"/dev/sfork"

/* Direction: exactly one. */
#define SFORK_BIDIRECTIONAL	(1U << 0)
#define SFORK_PARENT_TO_CHILD	(1U << 1)
#define SFORK_CHILD_TO_PARENT	(1U << 2)
/* Allocation: at most one; with neither the module chooses by size. */
#define SFORK_LAZY		(1U << 3)
#define SFORK_EAGER		(1U << 4)

#define SFORK_DIRECTION_MASK	(SFORK_BIDIRECTIONAL | SFORK_PARENT_TO_CHILD | \
				 SFORK_CHILD_TO_PARENT)
#define SFORK_ALLOC_MASK	(SFORK_LAZY | SFORK_EAGER)
#define SFORK_VALID_FLAGS	(SFORK_DIRECTION_MASK | SFORK_ALLOC_MASK)

/**
 * struct sfork_create - argument of SFORK_IOC_CREATE
 * @len:	in: requested length in bytes, rounded up to the page size
 * @flags:	in: one direction, at most one allocation flag
 * @out_flags:	out: @flags with the allocation mode the module chose
 * @addr_ptr:	in: user address of the caller's ``void *`` that receives the
 *		region's start; it must be writable (else EFAULT)
 * @addr:	out: start of the region, mapped into the caller
 * @size:	out: length of the region in bytes
 *
 * On success the region is mapped into the caller (read-write or read-only,
 * as its side allows) and armed: the next fork() by the calling thread
 * gives the new process the other side.  Every other fork inherits the
 * forking side's view.  Closing the file descriptor does not end the region;
 * the last unmap does.
 */
struct sfork_create {
	__u64 len;
	__u32 flags;
	__u32 out_flags;
	__u64 addr_ptr;
	__u64 addr;
	__u64 size;
};

#define SFORK_IOC_MAGIC		0xb6
#define SFORK_IOC_CREATE	_IOWR(SFORK_IOC_MAGIC, 0x01, struct sfork_create)

#endif /* _UAPI_LINUX_SFORK_H */
