// SPDX-License-Identifier: GPL-2.0-only
/*
 * sb_util.c: the plumbing every workload shares.
 *
 * Reading small files, the kernel counters recorded beside every time,
 * exact reads and writes on pipes and sockets (which give up when told
 * to stop: the watchdog's flag), and the child's report to its parent.
 * A leaf: it calls nothing of the other pieces.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "sforkbench.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, tot = 0;

	if (fd < 0)
		return -1;
	while ((size_t)tot < len - 1) {
		n = read(fd, buf + tot, len - 1 - (size_t)tot);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		tot += n;
	}
	close(fd);
	buf[tot] = '\0';
	return (int)tot;
}

void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

/* ------------------------------------------------------------------ */
/* Kernel counters                                                     */

void read_sfork_stats(struct sfork_stats *s)
{
	char buf[4096], *line, *save = NULL;

	memset(s, 0, sizeof(*s));
	if (read_file(STATS_PATH, buf, sizeof(buf)) <= 0)
		return;
	s->ok = true;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[64];
		long long v;

		if (sscanf(line, "%63s %lld", key, &v) != 2)
			continue;
		if (!strcmp(key, "faults"))
			s->faults = v;
		else if (!strcmp(key, "pages_live"))
			s->pages_live = v;
		else if (!strcmp(key, "regions_live"))
			s->regions_live = v;
	}
}

void get_usage(int who, struct usage *u)
{
	struct rusage ru;

	getrusage(who, &ru);
	u->minflt = ru.ru_minflt;
	u->majflt = ru.ru_majflt;
	u->nvcsw = ru.ru_nvcsw;
	u->nivcsw = ru.ru_nivcsw;
}

void usage_sub(struct usage *d, const struct usage *a,
	       const struct usage *b)
{
	d->minflt = a->minflt - b->minflt;
	d->majflt = a->majflt - b->majflt;
	d->nvcsw = a->nvcsw - b->nvcsw;
	d->nivcsw = a->nivcsw - b->nivcsw;
}

/* ------------------------------------------------------------------ */
/* fd helpers (pipes and sockets)                                      */

int write_all(int fd, const void *buf, size_t len,
	      const volatile sig_atomic_t *stop)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR && !*stop)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Read exactly len bytes.  With spin_ns the fd is non-blocking and is
 * polled with read() for up to spin_ns before sleeping in poll().
 */
int read_all(int fd, void *buf, size_t len, uint64_t spin_ns,
	     const volatile sig_atomic_t *stop)
{
	char *p = buf;
	uint64_t t0 = spin_ns ? now_ns() : 0;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR) {
			if (*stop)
				return -1;
			continue;
		}
		if (errno != EAGAIN)
			return -1;
		if (now_ns() - t0 > spin_ns) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };

			if (poll(&pfd, 1, -1) < 0 && *stop)
				return -1;
		} else {
			cpu_relax();
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Child side helpers                                                  */

/* The child has no watchdog of its own: the parent's kills it. */
static const volatile sig_atomic_t never;

void child_send(int fd, struct child_report *report, uint64_t t0,
		const struct usage *u0)
{
	struct usage u1;

	report->work_ns = now_ns() - t0;
	get_usage(RUSAGE_SELF, &u1);
	usage_sub(&report->usage, &u1, u0);
	if (write_all(fd, report, sizeof(*report), &never) < 0)
		_exit(3);
}

void close_child_end(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}
