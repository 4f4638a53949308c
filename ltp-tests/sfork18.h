/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sfork18.h - what sfork18 and the program its child execs share: the
 * region's layout, the published data, and the exit-status bits the exec'd
 * program reports its checks with.
 */
#ifndef SFORK18_H__
#define SFORK18_H__

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#define WAIT_SECONDS	30

struct s18_hdr {
	uint32_t round;		/* futex word: the last round published */
	uint32_t pad[15];
};

enum {
	S18_MAP		= 1 << 0,	/* map the inherited descriptor */
	S18_READ	= 1 << 1,	/* see what the writer published */
	S18_MMAP_RW	= 1 << 2,	/* mmap(PROT_WRITE) / MAP_PRIVATE refused */
	S18_MPROTECT	= 1 << 3,	/* mprotect(PROT_WRITE) refused */
	S18_STORE	= 1 << 4,	/* a store faults (reader) / works (writer) */
	S18_PROCMEM	= 1 << 5,	/* /proc/self/mem write refused */
	S18_OTHER_FD	= 1 << 6,	/* reopened, re-exported, passed: read-only */
	S18_CLOEXEC	= 1 << 7,	/* O_CLOEXEC descriptor gone after exec */
};
/* An exit status carries 8 bits: one a check, so usage errors are 255. */
#define S18_USAGE	0xff

static inline unsigned char s18_byte(size_t off, uint32_t round)
{
	return (unsigned char)(off * 7u + round * 101u + (off >> 12));
}

/* The "rw-s"-style permissions of the mapping holding @addr; -1 if none. */
static inline int sfork18_maps_perms(const void *addr, char perms[8])
{
	FILE *f = fopen("/proc/self/maps", "r");
	unsigned long start, end, a = (unsigned long)addr;
	char line[512];
	int ret = -1;

	if (!f)
		return -1;
	while (ret && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) == 3 &&
		    a >= start && a < end)
			ret = 0;
	fclose(f);
	return ret;
}

/* round's data after the header, then round in the futex word, woken */
static inline void s18_publish(struct s18_hdr *h, size_t len, uint32_t round)
{
	unsigned char *data = (unsigned char *)(h + 1);
	size_t i;

	for (i = 0; i < len - sizeof(*h); i++)
		data[i] = s18_byte(i, round);
	__atomic_store_n(&h->round, round, __ATOMIC_RELEASE);
	syscall(SYS_futex, &h->round, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

#endif /* SFORK18_H__ */
