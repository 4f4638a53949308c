// SPDX-License-Identifier: GPL-2.0-or-later
/*\
 * sfork20 - /proc/PID/map_files is no way to write a read-only side.
 *
 * Opening /proc/PID/map_files/<start>-<end> needs only
 * CAP_CHECKPOINT_RESTORE (since Linux 5.9) and gives the file behind the
 * mapping; for a region that must not be a writable file.  For each
 * read-only direction (-d p2c, -d c2p, both without -d), -a and -s, the
 * read-only side forks an attacker (which holds the same read-only view)
 * under two sets of credentials:
 *
 *  - uid and gid 65534 holding only CAP_CHECKPOINT_RESTORE;
 *  - root holding every capability but CAP_SYS_ADMIN.
 *
 * The attacker, on its own /proc/self/map_files entry for the region:
 *
 *  - control: the same entry of a MAP_SHARED|MAP_ANONYMOUS mapping opens
 *    O_RDWR (so the credentials do reach map_files);
 *  - open(O_RDWR) fails with ENXIO (if it opens: pwrite(), a shared
 *    writable mmap() and a store, fallocate(PUNCH_HOLE) are tried and
 *    reported);
 *  - open(O_RDONLY) fails with ENXIO;
 *  - an O_PATH descriptor of the entry, reopened O_RDWR through
 *    /proc/self/fd, fails with ENXIO;
 *  - truncate(2) of the entry, to 0 and to twice the size, fails with EPERM;
 *  - as root: open_by_handle_at(O_RDWR) of the entry's file handle, on a
 *    memfd (the same internal mount), fails; control: a memfd's own
 *    handle opens it (TCONF for that step without handles).
 *
 * Then the read-only side and the writer check every byte is as the writer
 * wrote it.
 */

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#ifndef CAP_CHECKPOINT_RESTORE
# define CAP_CHECKPOINT_RESTORE	40
#endif
#ifndef FALLOC_FL_KEEP_SIZE
# define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
# define FALLOC_FL_PUNCH_HOLE	0x02
#endif

#define CP_FILLED	0
#define CP_CHECKED	1

#define SEED		20
#define NOBODY		65534
#define CAP_WORDS	2

enum creds { CREDS_NOBODY_CR, CREDS_ROOT_NO_SYSADMIN };

static const char *const creds_name[] = {
	[CREDS_NOBODY_CR] = "uid 65534 with only CAP_CHECKPOINT_RESTORE",
	[CREDS_ROOT_NO_SYSADMIN] = "root without CAP_SYS_ADMIN",
};

static void set_caps(uint64_t caps)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[CAP_WORDS];
	unsigned int i;

	memset(data, 0, sizeof(data));
	for (i = 0; i < CAP_WORDS; i++) {
		data[i].effective = (uint32_t)(caps >> (32 * i));
		data[i].permitted = (uint32_t)(caps >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data))
		tst_brk(TBROK | TERRNO, "capset(0x%llx)", (unsigned long long)caps);

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		tst_brk(TBROK | TERRNO, "capget()");
	if (data[CAP_SYS_ADMIN / 32].effective & (1U << (CAP_SYS_ADMIN % 32)))
		tst_brk(TBROK, "CAP_SYS_ADMIN still effective");
}

static void drop_creds(enum creds creds)
{
	uint64_t all = (1ULL << (CAP_LAST_CAP + 1)) - 1;

	if (creds == CREDS_ROOT_NO_SYSADMIN) {
		set_caps(all & ~(1ULL << CAP_SYS_ADMIN));
		return;
	}
	if (prctl(PR_SET_KEEPCAPS, 1) || setgroups(0, NULL) ||
	    setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		tst_brk(TBROK | TERRNO, "becoming uid %d", NOBODY);
	set_caps(1ULL << CAP_CHECKPOINT_RESTORE);
	/* the uid change made us non-dumpable: /proc/self back to our uid */
	if (prctl(PR_SET_DUMPABLE, 1))
		tst_brk(TBROK | TERRNO, "prctl(PR_SET_DUMPABLE, 1)");
}

static void map_files_path(char *buf, size_t size, const void *addr,
			   size_t len)
{
	snprintf(buf, size, "/proc/self/map_files/%lx-%lx",
		 (unsigned long)addr, (unsigned long)addr + len);
}

/* What a writable descriptor of the region would allow; all reported. */
static void try_writes(int fd, size_t len, const char *who)
{
	char bad = 'X';
	char *m;

	if (pwrite(fd, &bad, 1, 0) == 1)
		tst_res(TFAIL, "%s: pwrite() through map_files wrote the region", who);
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) {
		m[sfork_page] = bad;
		tst_res(TFAIL, "%s: a shared writable mmap() of map_files stored into the region",
			who);
		SAFE_MUNMAP(m, len);
	}
	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)(len - sfork_page), (off_t)sfork_page))
		tst_res(TFAIL, "%s: fallocate(PUNCH_HOLE) through map_files punched the region",
			who);
}

/* control: the credentials do open a shared mapping's map_files entry */
static void control_shared_anon(size_t len, const char *who)
{
	char path[128];
	void *anon;
	int fd;

	anon = SAFE_MMAP(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	map_files_path(path, sizeof(path), anon, len);
	fd = open(path, O_RDWR);
	if (fd < 0)
		tst_brk(TBROK | TERRNO, "%s: control open(%s, O_RDWR) of a MAP_SHARED|MAP_ANONYMOUS mapping",
			who, path);
	SAFE_CLOSE(fd);
	SAFE_MUNMAP(anon, len);
}

/*
 * As root: a file handle of the region's inode, decoded on its mount,
 * which any memfd (on the same internal shmem mount) names.
 */
static void try_handle(const char *path, const char *who)
{
	struct file_handle *fh;
	int mount_id, opath, memfd, fd;

	fh = SAFE_MALLOC(sizeof(*fh) + MAX_HANDLE_SZ);
	memfd = memfd_create("sfork20", 0);
	if (memfd < 0)
		tst_brk(TBROK | TERRNO, "memfd_create()");

	/* control: a memfd's own handle opens it O_RDWR */
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(memfd, "", fh, &mount_id, AT_EMPTY_PATH)) {
		tst_res(TCONF | TERRNO, "%s: name_to_handle_at() gives no handle", who);
		goto close_memfd;
	}
	fd = open_by_handle_at(memfd, fh, O_RDWR);
	if (fd < 0)
		tst_brk(TBROK | TERRNO, "%s: control open_by_handle_at() of a memfd", who);
	SAFE_CLOSE(fd);

	opath = SAFE_OPEN(path, O_PATH);
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(opath, "", fh, &mount_id, AT_EMPTY_PATH)) {
		tst_res(TPASS | TERRNO, "%s: name_to_handle_at() of the region refused", who);
		goto close_opath;
	}
	fd = open_by_handle_at(memfd, fh, O_RDWR);
	if (fd >= 0) {
		tst_res(TFAIL, "%s: open_by_handle_at(O_RDWR) opened the region", who);
		try_writes(fd, sfork_region_size, who);
		SAFE_CLOSE(fd);
	} else {
		tst_res(TPASS | TERRNO, "%s: open_by_handle_at(O_RDWR) of the region refused",
			who);
	}
close_opath:
	SAFE_CLOSE(opath);
close_memfd:
	SAFE_CLOSE(memfd);
	free(fh);
}

static void attacker(unsigned char *p, enum creds creds)
{
	const char *who = creds_name[creds];
	size_t len = sfork_region_size;
	char path[128], fdpath[64];
	int fd;

	drop_creds(creds);
	control_shared_anon(len, who);
	map_files_path(path, sizeof(path), p, len);

	TEST(open(path, O_RDWR));
	if (TST_RET >= 0) {
		tst_res(TFAIL, "%s: open(%s, O_RDWR) opened the region", who, path);
		fd = TST_RET;
		try_writes(fd, len, who);
		SAFE_CLOSE(fd);
	} else {
		TST_EXP_EXPR(TST_ERR == ENXIO, "%s: open(O_RDWR) fails with ENXIO (%s)",
			     who, tst_strerrno(TST_ERR));
	}

	TST_EXP_FAIL2(open(path, O_RDONLY), ENXIO, "%s: open(O_RDONLY)", who);

	fd = SAFE_OPEN(path, O_PATH);
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	TST_EXP_FAIL2(open(fdpath, O_RDWR), ENXIO,
		      "%s: reopening an O_PATH descriptor O_RDWR", who);
	SAFE_CLOSE(fd);

	TST_EXP_FAIL(truncate(path, 0), EPERM, "%s: truncate(0)", who);
	TST_EXP_FAIL(truncate(path, (off_t)len * 2), EPERM, "%s: truncate(2 * size)",
		     who);

	if (creds == CREDS_ROOT_NO_SYSADMIN)
		try_handle(path, who);
}

static void check_unchanged(const unsigned char *p, const char *who)
{
	if (!sfork_check_fill(p, 0, sfork_region_size, SEED, who))
		tst_res(TPASS, "%s: every byte is as the writer wrote it", who);
}

static void reader(unsigned char *p)
{
	enum creds creds;
	int status;
	pid_t pid;

	TST_CHECKPOINT_WAIT(CP_FILLED);
	for (creds = CREDS_NOBODY_CR; creds <= CREDS_ROOT_NO_SYSADMIN; creds++) {
		pid = SAFE_FORK();
		if (!pid) {
			attacker(p, creds);
			exit(0);
		}
		SAFE_WAITPID(pid, &status, 0);
		sfork_check_exit0(creds_name[creds], status);
	}
	check_unchanged(p, "read-only side");
	TST_CHECKPOINT_WAKE(CP_CHECKED);
}

static void writer(unsigned char *p)
{
	sfork_fill(p, 0, sfork_region_size, SEED);
	TST_CHECKPOINT_WAKE(CP_FILLED);
	TST_CHECKPOINT_WAIT2(CP_CHECKED, 120000);
	check_unchanged(p, "writer");
}

static void run(void)
{
	sfork_run_sides_each_dir(reader, writer, 0);
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Read-only side p2c|c2p (default: both)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = sfork_setup_readonly_dirs,
	.test_all = run,
	.needs_root = 1,
	.forks_child = 1,
	.needs_checkpoints = 1,
};
