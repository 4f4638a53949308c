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
#include <stdlib.h>
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

/* Write a sysfs/procfs control file; 0 or -1 with errno. */
int sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_TRUNC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -1;
	n = write(fd, val, strlen(val));
	e = errno;
	close(fd);
	errno = e;
	return n < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Kernel counters                                                     */

/* "Key:   123 kB" in /proc/meminfo-like text; -1 when absent. */
long long meminfo_kb(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (!strncmp(p, key, n) && p[n] == ':')
			return atoll(p + n + 1);
	return -1;
}

/*
 * Memory held by shared regions, in kB: the shmem pages (every tmpfs
 * based variant, sfork's regions included, in 4 KiB or huge folios) plus
 * the hugetlb pages in use.  The guest runs nothing else that holds
 * shmem, so the difference across a run is the run's region.  The
 * counters are per-CPU with a folding threshold (tens of pages): the
 * vm.stat_refresh write folds them first, so that a few pages show.
 */
int region_memory_kb(long long *mem_kb)
{
	char buf[8192];
	long long shmem, total, free_, size;

	sysfs_write("/proc/sys/vm/stat_refresh", "1");

	if (read_file("/proc/meminfo", buf, sizeof(buf)) <= 0)
		return -1;
	shmem = meminfo_kb(buf, "Shmem");
	total = meminfo_kb(buf, "HugePages_Total");
	free_ = meminfo_kb(buf, "HugePages_Free");
	size = meminfo_kb(buf, "Hugepagesize");
	if (shmem < 0)
		return -1;
	*mem_kb = shmem;
	if (total > 0 && free_ >= 0 && size > 0)
		*mem_kb += (total - free_) * size;
	return 0;
}

/* What of the caller's mappings is mapped huge: shmem PMDs and hugetlb. */
void mapped_huge_kb(long long *shmem_pmd_kb, long long *hugetlb_kb)
{
	char buf[4096];
	long long a, b;

	*shmem_pmd_kb = *hugetlb_kb = -1;
	if (read_file("/proc/self/smaps_rollup", buf, sizeof(buf)) <= 0)
		return;
	*shmem_pmd_kb = meminfo_kb(buf, "ShmemPmdMapped");
	a = meminfo_kb(buf, "Shared_Hugetlb");
	b = meminfo_kb(buf, "Private_Hugetlb");
	if (a >= 0 && b >= 0)
		*hugetlb_kb = a + b;
}

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
