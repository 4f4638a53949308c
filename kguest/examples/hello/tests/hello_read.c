// SPDX-License-Identifier: GPL-2.0
/*
 * hello_read: read the greeting COUNT times, opened blocking or not; TAP.
 *
 * usage: hello_read -m blocking|nonblocking -c COUNT
 *
 * Each read returns the whole greeting, "Hello, <greeting>!\n" with the
 * module's greeting parameter, then end of file; the module's reads counter
 * grows by exactly COUNT.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	char greeting[128], want[160], got[256], counter[32];
	int flags = O_RDONLY, count = 0, opt, i, fails = 0;
	long before;

	while ((opt = getopt(argc, argv, "m:c:")) != -1) {
		if (opt == 'm' && !strcmp(optarg, "nonblocking"))
			flags |= O_NONBLOCK;
		else if (opt == 'm' && strcmp(optarg, "blocking"))
			return fprintf(stderr, "bad mode %s\n", optarg), 2;
		else if (opt == 'c')
			count = atoi(optarg);
	}
	if (count < 1)
		return fprintf(stderr, "usage: hello_read -m MODE -c COUNT\n"), 2;
	if (slurp("/sys/module/hello/parameters/greeting", greeting, sizeof(greeting)) ||
	    slurp("/sys/module/hello/parameters/reads", counter, sizeof(counter))) {
		printf("1..0 # SKIP the hello module is not loaded\n");
		return 0;
	}
	before = atol(counter);
	snprintf(want, sizeof(want), "Hello, %s!\n", greeting);
	printf("1..%d\n", count + 1);
	for (i = 1; i <= count; i++) {
		int fd = open("/dev/hello", flags);
		ssize_t n = -1, end = -1;

		if (fd >= 0) {
			n = read(fd, got, sizeof(got) - 1);
			end = read(fd, got + (n > 0 ? n : 0), 1);
			if ((fcntl(fd, F_GETFL) & O_NONBLOCK) != (flags & O_NONBLOCK))
				n = -1;
			close(fd);
		}
		if (n == (ssize_t)strlen(want) && !memcmp(got, want, n) && end == 0) {
			printf("ok %d - read %d: the greeting, then end of file\n", i, i);
		} else {
			printf("not ok %d - read %d: %zd bytes, then %zd (%s)\n", i, i, n,
			       end, strerror(errno));
			fails++;
		}
	}
	slurp("/sys/module/hello/parameters/reads", counter, sizeof(counter));
	if (atol(counter) - before == count) {
		printf("ok %d - reads counter grew by %d\n", count + 1, count);
	} else {
		printf("not ok %d - reads counter grew by %ld, not %d\n", count + 1,
		       atol(counter) - before, count);
		fails++;
	}
	return fails ? 1 : 0;
}
