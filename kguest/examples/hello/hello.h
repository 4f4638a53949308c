/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hello: the ABI of /dev/hello, shared by the module and its tests.
 */
#ifndef _HELLO_H
#define _HELLO_H

#include <linux/ioctl.h>

/* Count a poke; WARN()s when the module was loaded with warn=1. */
#define HELLO_IOC_POKE	_IO('h', 1)

#endif /* _HELLO_H */
