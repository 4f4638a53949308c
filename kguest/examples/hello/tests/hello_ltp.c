// SPDX-License-Identifier: GPL-2.0
/*
 * hello_ltp: reports as an LTP test does (TPASS/TFAIL lines, exit status the
 * OR of the failures): the device's node, its greeting parameter and an
 * unknown ioctl's ENOTTY.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hello.h"

#define TFAIL 1

static int passed, failed;

#define res(ok, what) report(ok, what, __LINE__)

static void report(int ok, const char *what, int line)
{
	printf("%s:%d: %s: %s\n", __FILE__, line, ok ? "TPASS" : "TFAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

int main(void)
{
	struct stat st;
	int fd;

	res(stat("/dev/hello", &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 10,
	    "/dev/hello is a misc character device");
	res(access("/sys/module/hello/parameters/greeting", R_OK) == 0,
	    "the greeting parameter is visible");
	fd = open("/dev/hello", O_RDONLY);
	res(fd >= 0 && ioctl(fd, _IO('h', 99)) == -1 && errno == ENOTTY,
	    "an unknown ioctl fails with ENOTTY");
	if (fd >= 0)
		close(fd);
	printf("\nSummary:\npassed   %d\nfailed   %d\n", passed, failed);
	return failed ? TFAIL : 0;
}
