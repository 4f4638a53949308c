// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Copyright (c) 2026 sfork developers
 */

/*\
 * No write to the read-only side through /proc/PID/mem,
 * process_vm_writev() or ptrace(PTRACE_POKEDATA).
 *
 * Adapts LTP's cma tests (process_vm_writev01/02: process_vm_writev() into
 * another process) and ptrace tests (ptrace04-style PEEK/POKE on a stopped
 * tracee) to sfork's read-only side: the child with -d p2c, the parent with
 * -d c2p (both when -d is not given; -d bi is TCONF).  Needs root.
 *
 *  - the read-only process itself: pwrite() to /proc/self/mem and
 *    process_vm_writev() to its own pid at the start, a middle page and the
 *    end of the region fail (done before it ever touched the region);
 *  - another process, the writer: pwrite() to /proc/<reader>/mem and
 *    process_vm_writev(<reader>) fail, although the writer has the very
 *    same pages mapped writable at the same address;
 *  - another process, a root helper: the same two, plus
 *    ptrace(PTRACE_POKEDATA) on the stopped reader, fail;
 *  - after all that every byte is as the writer wrote it, on both sides.
 *
 * Controls, so that a refusal means something: each path does write into
 * a private buffer of the reader (the same process, the same fd or pid),
 * and PTRACE_PEEKDATA / pread() of the region work.  On the writing side a
 * write through /proc/self/mem into the region is tried as well: it may
 * succeed (then the reader must see it) or be refused (TINFO).
 *
 * A module providing vm_ops->access, or marking the reader's VMA
 * VM_MAYWRITE so that FOLL_FORCE can write, fails here.
 */

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "tst_test.h"
#include "sfork_test.h"

#define CP_WRITER	0
#define CP_READER	1
#define CP_HELPER	2

#define SEED		11
#define BAD		0x5a
#define CHUNK		8


/* a private, writable buffer at the same address in every process */
static char probe[64];

/* shared with every process of the test */
struct ctl {
	int writer_mem_write_worked;
};
static struct ctl *ctl;

static size_t offsets[3];

static void set_offsets(size_t len)
{
	offsets[0] = 0;
	offsets[1] = (len / sfork_page / 2) * sfork_page + 16;
	offsets[2] = len - CHUNK;
}

static int open_mem(pid_t pid)
{
	char path[64];

	if (pid == getpid())
		return SAFE_OPEN("/proc/self/mem", O_RDWR);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	return SAFE_OPEN(path, O_RDWR);
}

/* control: writing into the target's private probe buffer works */
static void control_mem(int fd, const char *who)
{
	char buf[CHUNK];

	memset(buf, 'p', sizeof(buf));
	if (pwrite(fd, buf, sizeof(buf), (off_t)(uintptr_t)probe) != sizeof(buf))
		tst_brk(TBROK | TERRNO, "%s: control write into a private buffer through /proc/PID/mem failed",
			who);
}

static void control_vm(pid_t pid, const char *who)
{
	char buf[CHUNK];
	struct iovec l = { buf, sizeof(buf) }, r = { probe, sizeof(buf) };

	memset(buf, 'q', sizeof(buf));
	if (process_vm_writev(pid, &l, 1, &r, 1, 0) != sizeof(buf))
		tst_brk(TBROK | TERRNO, "%s: control process_vm_writev() into a private buffer failed",
			who);
}

/*
 * Writes into the region at every offset through /proc/<pid>/mem (use_vm 0)
 * or process_vm_writev() (use_vm 1) must all fail: either call may fail
 * with any error, it must not write a byte.
 */
static void writes_fail(pid_t pid, unsigned char *p, const char *who, int use_vm)
{
	const char *how = use_vm ? "process_vm_writev" : "pwrite(/proc/PID/mem)";
	char bad[CHUNK];
	struct iovec l = { bad, sizeof(bad) }, r = { NULL, sizeof(bad) };
	unsigned int i;
	int fd = -1, ok = 1;

	memset(bad, BAD, sizeof(bad));
	if (use_vm) {
		control_vm(pid, who);
	} else {
		fd = open_mem(pid);
		control_mem(fd, who);
	}

	for (i = 0; i < ARRAY_SIZE(offsets); i++) {
		r.iov_base = p + offsets[i];
		if (use_vm)
			TEST(process_vm_writev(pid, &l, 1, &r, 1, 0));
		else
			TEST(pwrite(fd, bad, sizeof(bad), (off_t)(uintptr_t)r.iov_base));
		if (TST_RET > 0) {
			tst_res(TFAIL, "%s: %s of %d at region offset %zu wrote %ld bytes",
				who, how, pid, offsets[i], TST_RET);
			ok = 0;
		}
	}
	if (ok)
		tst_res(TPASS | TTERRNO, "%s: %s of %d into the region refused",
			who, how, pid);
	if (fd >= 0)
		SAFE_CLOSE(fd);
}

static void ptrace_pokes_fail(pid_t pid, unsigned char *p)
{
	unsigned int i;
	long word, want;
	int status, ok = 1;

	SAFE_PTRACE(PTRACE_SEIZE, pid, NULL, NULL);
	SAFE_PTRACE(PTRACE_INTERRUPT, pid, NULL, NULL);
	SAFE_WAITPID(pid, &status, __WALL);
	if (!WIFSTOPPED(status))
		tst_brk(TBROK, "reader %d did not stop: %s", pid,
			tst_strstatus(status));

	/* control: POKEDATA into the private buffer works */
	if (ptrace(PTRACE_POKEDATA, pid, probe, (void *)0x7272727272727272L))
		tst_brk(TBROK | TERRNO, "control PTRACE_POKEDATA into a private buffer failed");

	for (i = 0; i < ARRAY_SIZE(offsets); i++) {
		TEST(ptrace(PTRACE_POKEDATA, pid, p + offsets[i],
			    (void *)0x5a5a5a5a5a5a5a5aL));
		if (TST_RET != -1) {
			tst_res(TFAIL, "helper: PTRACE_POKEDATA at region offset %zu returned %ld",
				offsets[i], TST_RET);
			ok = 0;
		}
	}
	if (ok)
		tst_res(TPASS | TTERRNO, "helper: PTRACE_POKEDATA into the region refused");

	/* control: the region can be read through ptrace, and is intact */
	errno = 0;
	word = ptrace(PTRACE_PEEKDATA, pid, p + offsets[1], NULL);
	memcpy(&want, p + offsets[1], sizeof(want));
	if (errno)
		tst_res(TFAIL | TERRNO, "helper: PTRACE_PEEKDATA of the region failed");
	else if (word != want)
		tst_res(TFAIL, "helper: PTRACE_PEEKDATA reads 0x%lx, the writer wrote 0x%lx",
			word, want);
	else
		tst_res(TPASS, "helper: PTRACE_PEEKDATA reads the writer's data");

	SAFE_PTRACE(PTRACE_DETACH, pid, NULL, NULL);
}

/* the writer's pattern; byte 0 inverted when the writer changed it */
static void intact(const char *who, const unsigned char *p, size_t len,
		   int byte0_changed)
{
	unsigned char want = sfork_pattern(0, SEED);

	if (byte0_changed)
		want = (unsigned char)~want;
	if (p[0] != want) {
		tst_res(TFAIL, "%s: byte 0 is 0x%02x, expected 0x%02x", who,
			p[0], want);
		return;
	}
	if (!sfork_check_fill(p + 1, 1, len - 1, SEED, who))
		tst_res(TPASS, "%s: all %zu bytes as the writer wrote them", who, len);
}

static void reader(unsigned char *p, size_t len)
{
	TST_CHECKPOINT_WAIT(CP_READER);

	/* before this process ever touched the region */
	writes_fail(getpid(), p, "reader itself", 0);
	writes_fail(getpid(), p, "reader itself", 1);
	intact("reader after its own attempts", p, len, 0);

	TST_CHECKPOINT_WAKE(CP_WRITER);
	/* the writer and the helper try, this process waits */
	TST_CHECKPOINT_WAIT(CP_READER);

	intact("reader at the end", p, len, ctl->writer_mem_write_worked);
}

static void writer(unsigned char *p, size_t len, pid_t reader_pid)
{
	unsigned char v;
	int fd;

	sfork_fill(p, 0, len, SEED);

	TST_CHECKPOINT_WAKE(CP_READER);
	TST_CHECKPOINT_WAIT(CP_WRITER);

	writes_fail(reader_pid, p, "writer", 0);
	writes_fail(reader_pid, p, "writer", 1);

	TST_CHECKPOINT_WAKE(CP_HELPER);
	TST_CHECKPOINT_WAIT(CP_WRITER);

	intact("writer after every attempt", p, len, 0);

	/* the writing side through its own /proc/self/mem */
	v = (unsigned char)~sfork_pattern(0, SEED);
	fd = SAFE_OPEN("/proc/self/mem", O_RDWR);
	TEST(pwrite(fd, &v, 1, (off_t)(uintptr_t)p));
	SAFE_CLOSE(fd);
	if (TST_RET == 1 && p[0] == v) {
		ctl->writer_mem_write_worked = 1;
		tst_res(TPASS, "writer: pwrite(/proc/self/mem) into the region works");
	} else {
		tst_res(TINFO | TTERRNO, "writer: pwrite(/proc/self/mem) into the region refused (allowed)");
	}

	TST_CHECKPOINT_WAKE(CP_READER);
}

static void helper(unsigned char *p, pid_t reader_pid)
{
	TST_CHECKPOINT_WAIT(CP_HELPER);

	writes_fail(reader_pid, p, "helper", 0);
	writes_fail(reader_pid, p, "helper", 1);
	ptrace_pokes_fail(reader_pid, p);

	TST_CHECKPOINT_WAKE(CP_WRITER);
	exit(0);
}

static void wait_ok(pid_t pid, const char *who)
{
	int status;

	SAFE_WAITPID(pid, &status, 0);
	sfork_check_exit0(who, status);
}

static void run_dir(unsigned int flags)
{
	int reader_is_child = sfork_reader_is_child(flags);
	size_t len = sfork_region_size;
	pid_t pid, helper_pid, reader_pid, self = getpid();
	void *addr = NULL;

	tst_res(TINFO, "direction %s: the %s is read-only",
		sfork_dir_name(flags), reader_is_child ? "child" : "parent");

	ctl->writer_mem_write_worked = 0;
	set_offsets(len);

	pid = SAFE_SFORK(sfork_size, flags, &addr);
	reader_pid = reader_is_child ? (pid ? pid : getpid()) : self;

	if (!pid) {
		if (reader_is_child)
			reader(addr, len);
		else
			writer(addr, len, reader_pid);
		exit(0);
	}

	helper_pid = SAFE_FORK();
	if (!helper_pid)
		helper(addr, reader_pid);

	if (reader_is_child)
		writer(addr, len, reader_pid);
	else
		reader(addr, len);

	wait_ok(pid, reader_is_child ? "reader child" : "writer child");
	wait_ok(helper_pid, "helper");
	SAFE_MUNMAP(addr, len);
}

static void run(void)
{
	sfork_for_each_dir(run_dir);
}

static void setup(void)
{
	sfork_test_setup_dirs(SFORK_DIRS_READONLY);
	ctl = sfork_shared_alloc(sizeof(*ctl));
}

static struct tst_test test = {
	.options = (struct tst_option[]) {
		{"s:", &sfork_str_size, "Region size in bytes, K/M/G suffixes (default 2 pages)"},
		{"d:", &sfork_str_dir, "Read-only side p2c|c2p (default: both)"},
		{"a:", &sfork_str_alloc, "Allocation lazy|eager|auto (default auto)"},
		{}
	},
	.setup = setup,
	.cleanup = sfork_test_cleanup,
	.test_all = run,
	.forks_child = 1,
	.needs_root = 1,
	.needs_checkpoints = 1,
	.timeout = 60,
};
