// SPDX-License-Identifier: GPL-2.0
/*
 * hello_poke: HELLO_IOC_POKE succeeds.  With the module loaded warn=1 it
 * also WARNs in the kernel, which kguest reports as a failure of this test.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "hello.h"

int main(void)
{
	int fd = open("/dev/hello", O_RDONLY);

	if (fd < 0 || ioctl(fd, HELLO_IOC_POKE) != 0) {
		perror("HELLO_IOC_POKE");
		return 1;
	}
	close(fd);
	printf("poked\n");
	return 0;
}
