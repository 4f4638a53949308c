// SPDX-License-Identifier: GPL-2.0
/*
 * hello_write: /dev/hello refuses writes, with EINVAL; the exit status says it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/hello", O_WRONLY);
	ssize_t n;

	if (fd < 0) {
		perror("open /dev/hello");
		return 1;
	}
	n = write(fd, "hi", 2);
	if (n != -1 || errno != EINVAL) {
		fprintf(stderr, "write: %zd (%s), expected EINVAL\n", n, strerror(errno));
		return 1;
	}
	close(fd);
	printf("write refused with EINVAL\n");
	return 0;
}
