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
 * as its side allows) and armed: the next fork by the calling thread that
 * copies its address space (fork(), or clone()/clone3() without CLONE_VM)
 * and succeeds gives the new process the other side.
 *
 * A fork that fails after copying the address space (EAGAIN from a
 * pids.max limit, EFAULT from a CLONE_PIDFD pointer the kernel cannot
 * write, EINTR from a fatal signal, ENOMEM) leaves the region armed: the
 * thread's next such fork still gives the other side, so a caller may
 * retry.  Once an armed fork has succeeded the arming is spent, and every
 * later fork, failed or not, by any thread of either side, inherits the
 * forking side's view with that side's permission.  A vfork() or a
 * CLONE_VM child shares the caller's mapping (the caller's side) and
 * leaves the arming as it was.  A caller that would rather not retry
 * unmaps the region (libsfork does) and creates a new one.
 *
 * Closing the file descriptor does not end the region; the last unmap does.
 */
struct sfork_create {
	__u64 len;
	__u32 flags;
	__u32 out_flags;
	__u64 addr_ptr;
	__u64 addr;
	__u64 size;
};

/**
 * struct sfork_export - argument of SFORK_IOC_EXPORT
 * @addr:	in: an address inside a region the caller has mapped
 * @fd_flags:	in: 0 or O_CLOEXEC
 * @fd:		out: a new descriptor for the caller's side of that region
 *
 * The descriptor carries the side, not the process: mapping it (mmap with
 * MAP_SHARED, offset 0) gives that side's permission in whichever process
 * maps it, after execve() or after passing it over a socket.  A read-only
 * side's descriptor can never be mapped writable.
 */
struct sfork_export {
	__u64 addr;
	__u32 fd_flags;
	__s32 fd;
};

/**
 * struct sfork_info - argument of SFORK_IOC_INFO, on an exported descriptor
 * @size:	out: length of the region in bytes
 * @flags:	out: the region's flags, allocation mode resolved
 * @writable:	out: 1 if this descriptor's side may write, else 0
 */
struct sfork_info {
	__u64 size;
	__u32 flags;
	__u32 writable;
};

#define SFORK_IOC_MAGIC		0xb6
#define SFORK_IOC_CREATE	_IOWR(SFORK_IOC_MAGIC, 0x01, struct sfork_create)
#define SFORK_IOC_EXPORT	_IOWR(SFORK_IOC_MAGIC, 0x02, struct sfork_export)
#define SFORK_IOC_INFO		_IOR(SFORK_IOC_MAGIC, 0x03, struct sfork_info)

#endif /* _UAPI_LINUX_SFORK_H */
