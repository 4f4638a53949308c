/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Copyright (c) 2026 sfork developers
 *
 * sfork_swap.h - what the reclaim tests (sfork24, sfork25) share: swap for
 * the test (a zram device when none is on), /proc/vmstat counters, and
 * memory.reclaim of the test's own memory cgroup.  Include after
 * sfork_test.h.
 *
 * Reclaim is asked for through memory.reclaim, never by lowering
 * memory.max: memory.reclaim reclaims what it can and fails with EAGAIN
 * when it cannot reclaim as much as asked, while a memory.max below what
 * the cgroup holds invokes the cgroup's OOM killer when reclaim falls
 * short (a busy host, pages faulted back in meanwhile), and the test's own
 * processes are in that cgroup.
 *
 *   sfork_swap_setup(size)     swap on: what is on already, else a zram
 *                              device of size bytes (TCONF without zram)
 *   sfork_swap_cleanup()       .cleanup: the zram device off and removed
 *   sfork_vmstat("pswpout")    a /proc/vmstat counter (0 when absent)
 *   sfork_cg_reclaim(bytes)    memory.reclaim of the caller's cgroup: 0, or
 *                              the errno (EAGAIN: less was reclaimed); LTP's
 *                              cgroup API writes only files it knows and
 *                              ends the test on any error, and
 *                              memory.reclaim is neither
 */
#ifndef SFORK_SWAP_H__
#define SFORK_SWAP_H__

#include <fcntl.h>
#include <limits.h>
#include <sys/swap.h>

#define SFORK_ZRAM_SYS	"/sys/block/zram0"
#define SFORK_ZRAM_DEV	"/dev/zram0"

static int sfork_zram_loaded, sfork_zram_swap;

/* a command's exit status (-1 when it did not exit) */
static inline int sfork_run_cmd(const char *const argv[])
{
	int status;
	pid_t pid;

	pid = SAFE_FORK();
	if (!pid) {
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	SAFE_WAITPID(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* a /proc/vmstat counter; 0 when this kernel has no such counter */
static inline unsigned long long sfork_vmstat(const char *key)
{
	unsigned long long v = 0;
	char fmt[64];

	snprintf(fmt, sizeof(fmt), "%s %%llu", key);
	if (FILE_LINES_SCANF("/proc/vmstat", fmt, &v))
		return 0;
	return v;
}

/* swap: what is on already, or a zram device of size bytes */
static inline void sfork_swap_setup(size_t size)
{
	const char *const modprobe[] = { "modprobe", "zram", "num_devices=1", NULL };
	const char *const mkswap[] = { "mkswap", SFORK_ZRAM_DEV, NULL };
	unsigned long long disksize;

	if (SAFE_READ_MEMINFO("SwapTotal:") > 0) {
		tst_res(TINFO, "using the swap that is on");
		return;
	}
	if (access(SFORK_ZRAM_SYS, F_OK)) {
		if (sfork_run_cmd(modprobe))
			tst_brk(TCONF, "no swap is on and modprobe zram failed");
		sfork_zram_loaded = 1;
	}
	SAFE_FILE_SCANF(SFORK_ZRAM_SYS "/disksize", "%llu", &disksize);
	if (disksize)
		tst_brk(TCONF, "no swap is on and %s is in use", SFORK_ZRAM_DEV);
	SAFE_FILE_PRINTF(SFORK_ZRAM_SYS "/disksize", "%zu", size);
	if (sfork_run_cmd(mkswap))
		tst_brk(TBROK, "mkswap %s failed", SFORK_ZRAM_DEV);
	if (swapon(SFORK_ZRAM_DEV, 0))
		tst_brk(TBROK | TERRNO, "swapon(%s)", SFORK_ZRAM_DEV);
	sfork_zram_swap = 1;
	tst_res(TINFO, "swap on %s, %zu MiB", SFORK_ZRAM_DEV, size >> 20);
}

static inline void sfork_swap_cleanup(void)
{
	const char *const rmmod[] = { "modprobe", "-r", "zram", NULL };

	if (sfork_zram_swap) {
		if (swapoff(SFORK_ZRAM_DEV))
			tst_res(TWARN | TERRNO, "swapoff(%s)", SFORK_ZRAM_DEV);
		else
			SAFE_FILE_PRINTF(SFORK_ZRAM_SYS "/reset", "1");
	}
	if (sfork_zram_loaded && sfork_run_cmd(rmmod))
		tst_res(TWARN, "modprobe -r zram failed");
}

/*
 * Asks the caller's cgroup to reclaim bytes (memory.reclaim): 0 when it
 * did, EAGAIN when it reclaimed less, another errno on a failure.
 */
static inline int sfork_cg_reclaim(unsigned long long bytes)
{
	char path[PATH_MAX], buf[32];
	int fd, len, ret = 0;

	sfork_cg_path("memory.reclaim", path, sizeof(path));
	len = snprintf(buf, sizeof(buf), "%llu", bytes);
	fd = SAFE_OPEN(path, O_WRONLY);
	if (write(fd, buf, len) != len)
		ret = errno;
	SAFE_CLOSE(fd);
	return ret;
}

#endif /* SFORK_SWAP_H__ */
