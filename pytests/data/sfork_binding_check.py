"""Guest-side checks of the Python binding (sfork) against the loaded module.

Run as root in a guest that has sfork.ko loaded and the project's venv at the host's
path (the vng backend), with that venv's python::

    /work/main/.venv/bin/python pytests/data/sfork_binding_check.py [-k SUBSTRING]

Prints TAP (``1..N``, ``ok``/``not ok`` lines, ``#`` diagnostics); exit status 0 when
every check passed, 1 otherwise.  Parent and child report through exit statuses and
pipes; nothing is written outside /proc, /sys/fs/cgroup (one sub-cgroup, removed)
and the regions themselves.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import io
import mmap
import os
import re
import resource
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sfork

PAGE = mmap.PAGESIZE
MAIN_PID = os.getpid()
BI, P2C, C2P = sfork.BIDIRECTIONAL, sfork.PARENT_TO_CHILD, sfork.CHILD_TO_PARENT
DIRECTIONS = {"bi": BI, "p2c": P2C, "c2p": C2P}
ALLOCS: dict[str, int | None] = {"auto": None, "lazy": sfork.LAZY, "eager": sfork.EAGER}
MAX_REGION = Path("/sys/module/sfork/parameters/max_region_bytes")
CHILD_ALARM = 60  # seconds: a child that waits longer than this dies of SIGALRM

libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.mprotect.restype = ctypes.c_int
PR_SET_DUMPABLE = 4  # <linux/prctl.h>

# os.fork() runs at-fork handlers: main() registers one that records it ran in the child.
AT_FORK: list[str] = []


class Skip(Exception):
    """The check cannot run here (TAP ``# SKIP``)."""


# --- observing the process -------------------------------------------------------------


def fds() -> list[str]:
    """Open descriptors (the listing's own descriptor has the same number every time)."""
    return sorted(os.listdir("/proc/self/fd"), key=int)


def sfork_maps() -> list[str]:
    """Lines of /proc/self/maps that map an sfork region (its region file, sfork(4))."""
    with open("/proc/self/maps") as f:
        return [ln.strip() for ln in f if ln.strip().endswith("/sfork (deleted)")]


def children() -> list[str]:
    out: list[str] = []
    for t in os.listdir("/proc/self/task"):
        out += Path(f"/proc/self/task/{t}/children").read_text().split()
    return out


def sigmask() -> set[int]:
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ())}


def snapshot() -> tuple[list[str], list[str], list[str], set[int]]:
    return fds(), sfork_maps(), children(), sigmask()


def assert_nothing_left(before: tuple[list[str], list[str], list[str], set[int]]) -> None:
    after = snapshot()
    for what, b, a in zip(
        ("descriptors", "sfork mappings", "children", "signal mask"), before, after, strict=True
    ):
        assert a == b, f"{what} changed: before {b}, after {a}"


def status_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited {os.WEXITSTATUS(status)}"


def wait_exit0(pid: int, who: str = "child") -> None:
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
        f"{who} {status_text(status)} (its diagnostics are above)"
    )


def wait_signal(pid: int, sig: signal.Signals, who: str) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig, (
        f"{who} should be killed by {sig.name}, it {status_text(status)}"
    )


def diag(text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        print(f"# {line}")


def child_main(fn: Callable[[], None], who: str = "child") -> NoReturn:
    """Run ``fn`` in a forked process and exit: 0 if it returned, 1 (with diagnostics) if not."""
    code = 0
    try:
        signal.alarm(CHILD_ALARM)
        fn()
    except BaseException:
        diag(f"{who} (pid {os.getpid()}): " + traceback.format_exc())
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def fork_helper(fn: Callable[[], None], who: str) -> None:
    """Run ``fn`` in a plain forked child; AssertionError with its story if it fails."""
    pid = os.fork()
    if pid == 0:
        child_main(fn, who)
    wait_exit0(pid, who)


def expect_oserror(code: int, fn: Callable[[], object], what: str) -> OSError:
    try:
        fn()
    except OSError as e:
        got = errno.errorcode.get(e.errno or 0, e.errno)
        assert e.errno == code, f"{what}: errno {got}, expected {errno.errorcode[code]}: {e}"
        return e
    raise AssertionError(f"{what}: no error, expected OSError({errno.errorcode[code]})")


def expect_type_error(region: memoryview, what: str) -> None:
    """Assigning into a read-only view raises TypeError and changes nothing."""
    before = bytes(region[:2])

    def one(i: int) -> None:
        region[i] = 0x5A

    def span(i: int) -> None:
        region[i : i + 2] = b"ZZ"

    for assign in (one, span):
        try:
            assign(0)
        except TypeError:
            continue
        raise AssertionError(f"{what}: assigning into the read-only region did not raise TypeError")
    assert bytes(region[:2]) == before, f"{what}: the region changed"


def expect_kernel_refuses_writes(region: memoryview, who: str) -> None:
    """On a read-only side: mprotect(PROT_WRITE) is EACCES (whole region and one page), the
    exported side's descriptor maps read-only and never writable (EACCES)."""
    addr, size = sfork.address(region), len(region)
    for a, n, what in ((addr, size, "the whole region"), (addr + PAGE, PAGE, "its second page")):
        rc = libc.mprotect(a, n, mmap.PROT_READ | mmap.PROT_WRITE)
        err = ctypes.get_errno()
        assert rc == -1 and err == errno.EACCES, (
            f"{who}: mprotect(PROT_READ|PROT_WRITE) of {what} returned {rc}, "
            f"errno {errno.errorcode.get(err, err)}; expected -1 EACCES"
        )
    fd = sfork.region_fd(region)
    try:
        again = sfork.region_map(fd)
        assert again.readonly, f"{who}: region_map() of a read-only side gave a writable view"
        assert bytes(again) == bytes(region), f"{who}: region_map() shows other contents"
        sfork.unmap(again)
        try:
            m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except PermissionError as e:
            assert e.errno == errno.EACCES, f"{who}: writable mmap of the side's fd: {e}"
        else:
            m.close()
            raise AssertionError(f"{who}: the read-only side's descriptor mapped writable")
    finally:
        os.close(fd)


def store_faults(region: memoryview, who: str) -> None:
    """A store through the raw address, in a forked process of this side, is SIGSEGV."""
    before = bytes(region[:8])
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGSEGV, signal.SIG_DFL)
        ctypes.memset(sfork.address(region), 0x5A, 8)
        os._exit(0)
    wait_signal(pid, signal.SIGSEGV, f"{who}: a process storing into the read-only region")
    assert bytes(region[:8]) == before, f"{who}: the region changed after the faulting store"


# --- the checks ----------------------------------------------------------------------

CHECKS: list[tuple[str, Callable[[], None], str]] = []  # (name, check, TODO reason)


def check(name: str, todo: str = "") -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register a check; ``todo``: a known defect outside the binding (TAP ``# TODO``)."""

    def add(fn: Callable[[], None]) -> Callable[[], None]:
        CHECKS.append((name, fn, todo))
        return fn

    return add


MSG_P = b"written by the parent"
MSG_C = b"written by the child"


def exchange(direction: int, alloc: int | None) -> None:
    """Parent and child exchange data; each side's view is writable exactly as the direction
    says; len is rounded up to pages; the region starts zero-filled; one address in both."""
    size = 3 * PAGE - 100
    go_r, go_w = os.pipe()
    before_mask = sigmask()
    pid, region = sfork.sfork(size, direction, alloc=alloc)
    if pid == 0:
        os.close(go_w)

        def child() -> None:
            assert sigmask() == before_mask, f"signal mask {sigmask()} != {before_mask}"
            assert len(region) == 3 * PAGE, f"child: len {len(region)}"
            want_ro = not sfork.writable(direction, child=True)
            assert region.readonly == want_ro, f"child: readonly is {region.readonly}"
            assert os.read(go_r, 1) == b"g", "child: the parent did not say go"
            if direction & (BI | P2C):
                assert bytes(region[: len(MSG_P)]) == MSG_P, "child: parent's data missing"
                assert bytes(region[-len(MSG_P) :]) == MSG_P, "child: parent's data (end) missing"
            if direction & (BI | C2P):
                region[PAGE : PAGE + len(MSG_C)] = MSG_C
                region[2 * PAGE : 2 * PAGE + 8] = struct.pack("=Q", sfork.address(region))
            else:
                expect_type_error(region, "child")

        child_main(child)
    os.close(go_r)
    try:
        assert pid > 0, f"parent got pid {pid}"
        assert len(region) == 3 * PAGE, f"parent: len {len(region)}, expected {3 * PAGE}"
        assert region.format == "B" and region.contiguous
        assert bytes(region) == bytes(3 * PAGE), "the new region is not zero-filled"
        assert region.readonly == (not sfork.writable(direction, child=False))
        if direction & (BI | P2C):
            region[: len(MSG_P)] = MSG_P
            region[-len(MSG_P) :] = MSG_P
        else:
            expect_type_error(region, "parent")
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
    wait_exit0(pid)
    if direction & (BI | C2P):
        assert bytes(region[PAGE : PAGE + len(MSG_C)]) == MSG_C, "parent: child's data missing"
        (child_addr,) = struct.unpack("=Q", region[2 * PAGE : 2 * PAGE + 8])
        assert child_addr == sfork.address(region), (
            f"child's address {child_addr:#x} != parent's {sfork.address(region):#x}"
        )
    sfork.unmap(region)


for _d, _dv in DIRECTIONS.items():
    for _a, _av in ALLOCS.items():
        check(f"exchange {_d} {_a}")(functools.partial(exchange, _dv, _av))


@check("p2c: read-only child: TypeError, mprotect EACCES, no writable mmap, store is SIGSEGV")
def readonly_child() -> None:
    go_r, go_w = os.pipe()
    pid, region = sfork.sfork(2 * PAGE, P2C)
    if pid == 0:
        os.close(go_w)

        def child() -> None:
            assert os.read(go_r, 1) == b"g"
            assert bytes(region[:8]) == b"parent!!", "child: parent's data missing"
            expect_type_error(region, "child")
            expect_kernel_refuses_writes(region, "child")
            store_faults(region, "child")  # a process forked by the child: still read-only
            signal.signal(signal.SIGSEGV, signal.SIG_DFL)
            ctypes.memset(sfork.address(region), 0x5A, 8)  # the child itself: SIGSEGV
            raise AssertionError("child: the store into the read-only region did not fault")

        child_main(child)
    os.close(go_r)
    region[:8] = b"parent!!"
    os.write(go_w, b"g")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV, (
        f"the read-only child should die of SIGSEGV at its store, it {status_text(status)}"
    )
    assert bytes(region[:8]) == b"parent!!", f"region changed: {bytes(region[:8])!r}"
    sfork.unmap(region)


@check("c2p: read-only parent: TypeError, mprotect EACCES, no writable mmap, store is SIGSEGV")
def readonly_parent() -> None:
    go_r, go_w = os.pipe()
    pid, region = sfork.sfork(2 * PAGE, C2P, alloc=sfork.EAGER)
    if pid == 0:
        os.close(go_w)

        def child() -> None:
            assert not region.readonly
            assert os.read(go_r, 1) == b"g"
            region[:8] = b"child!!!"

        child_main(child)
    os.close(go_r)
    try:
        assert region.readonly, "parent's view of a CHILD_TO_PARENT region is writable"
        expect_type_error(region, "parent")
        expect_kernel_refuses_writes(region, "parent")
        store_faults(region, "parent")
        assert bytes(region) == bytes(2 * PAGE), "the region changed before the child wrote"
        os.write(go_w, b"g")
    finally:
        os.close(go_w)
    wait_exit0(pid)
    assert bytes(region[:8]) == b"child!!!", f"child's data missing: {bytes(region[:8])!r}"
    sfork.unmap(region)


@check("no descriptor left, signal mask restored, at-fork handlers run (parent and child)")
def no_leaks() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        before_fds, before_maps, before_mask = fds(), sfork_maps(), sigmask()
        AT_FORK.clear()
        pid, region = sfork.sfork(PAGE, BI)
        if pid == 0:

            def child() -> None:
                assert fds() == before_fds, f"child fds {fds()} != parent's before {before_fds}"
                assert sigmask() == before_mask, f"child mask {sigmask()} != {before_mask}"
                assert AT_FORK == ["child"], f"after_in_child handlers: {AT_FORK}"
                assert len(sfork_maps()) == len(before_maps) + 1, sfork_maps()

            child_main(child)
        assert fds() == before_fds, f"parent fds {fds()} != before {before_fds}"
        assert sigmask() == before_mask, f"parent mask {sigmask()} != {before_mask}"
        assert len(sfork_maps()) == len(before_maps) + 1, sfork_maps()
        wait_exit0(pid)
        sfork.unmap(region)
        assert sfork_maps() == before_maps, f"mapping left after unmap: {sfork_maps()}"
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})


@check("errors: EINVAL / ENOMEM with nothing left (no fd, child, mapping; mask restored)")
def errors() -> None:
    limit = int(MAX_REGION.read_text())
    unknown = 1 << sfork.VALID_FLAGS.bit_length()
    cases: list[tuple[str, int, Callable[[], object]]] = [
        ("len 0", errno.EINVAL, lambda: sfork.sfork(0, P2C)),
        ("no direction", errno.EINVAL, lambda: sfork.sfork(PAGE, 0)),
        ("only an allocation flag", errno.EINVAL, lambda: sfork.sfork(PAGE, sfork.LAZY)),
        ("two directions", errno.EINVAL, lambda: sfork.sfork(PAGE, BI | P2C)),
        ("three directions", errno.EINVAL, lambda: sfork.sfork(PAGE, sfork.DIRECTION_MASK)),
        ("LAZY and EAGER", errno.EINVAL, lambda: sfork.sfork(PAGE, C2P | sfork.LAZY, sfork.EAGER)),
        (f"unknown bit {unknown:#x}", errno.EINVAL, lambda: sfork.sfork(PAGE, P2C | unknown)),
        ("bit 31", errno.EINVAL, lambda: sfork.sfork(PAGE, P2C | 1 << 31)),
        ("len -1", errno.EINVAL, lambda: sfork.sfork(-1, P2C)),
        (
            f"len max_region_bytes+1 ({limit + 1})",
            errno.ENOMEM,
            lambda: sfork.sfork(limit + 1, P2C),
        ),
        (
            "len max_region_bytes+1 eager",
            errno.ENOMEM,
            lambda: sfork.sfork(limit + 1, BI, sfork.EAGER),
        ),
        ("len 2**64-1", errno.ENOMEM, lambda: sfork.sfork(2**64 - 1, P2C)),
        ("len 2**64", errno.ENOMEM, lambda: sfork.sfork(2**64, P2C)),
    ]
    for what, code, call in cases:
        before = snapshot()
        expect_oserror(code, call, what)
        assert_nothing_left(before)


@check("fork failure (RLIMIT_NPROC as nobody): EAGAIN, region released, nothing left")
def fork_fails() -> None:
    def nobody() -> None:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # keep /proc/self readable after setuid
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        before = snapshot()
        e = expect_oserror(errno.EAGAIN, lambda: sfork.sfork(4 * PAGE, P2C, sfork.EAGER), "fork")
        assert isinstance(e, BlockingIOError), f"{type(e).__name__}, expected BlockingIOError"
        assert_nothing_left(before)

    fork_helper(nobody, "nobody helper")


@check("eager allocation above memory.max: ENOMEM, nothing left, no OOM kill")
def eager_memcg() -> None:
    root = Path("/sys/fs/cgroup")
    if "memory" not in (root / "cgroup.controllers").read_text().split():
        raise Skip("no memory controller in cgroup2")
    (root / "cgroup.subtree_control").write_text("+memory")
    cg = root / f"sfork-binding-check-{os.getpid()}"
    cg.mkdir()
    try:
        (cg / "memory.max").write_text(str(32 << 20))
        if (cg / "memory.swap.max").exists():
            (cg / "memory.swap.max").write_text("0")

        def limited() -> None:
            (cg / "cgroup.procs").write_text(str(os.getpid()))
            before = snapshot()
            expect_oserror(errno.ENOMEM, lambda: sfork.sfork(128 << 20, BI, sfork.EAGER), "eager")
            assert_nothing_left(before)

        fork_helper(limited, "helper in the limited cgroup")
        events = (cg / "memory.events").read_text()
        assert re.search(r"^oom_kill 0$", events, re.M), f"an OOM kill happened:\n{events}"
    finally:
        cg.rmdir()


@check("region_fd / region_map on writing sides; errors of both")
def export() -> None:
    start = fds()
    go_r, go_w = os.pipe()
    pid, region = sfork.sfork(2 * PAGE, BI, sfork.LAZY)
    if pid == 0:
        os.close(go_w)

        def child() -> None:
            assert os.read(go_r, 1) == b"g"
            fd = sfork.region_fd(region, inheritable=True)
            assert os.get_inheritable(fd), "region_fd(inheritable=True) is close-on-exec"
            view = sfork.region_map(fd)
            os.close(fd)
            assert not view.readonly and bytes(view[:6]) == b"remap!", bytes(view[:6])
            view[PAGE : PAGE + 5] = b"child"
            sfork.unmap(view)

        child_main(child)
    os.close(go_r)
    before = fds()
    fd = sfork.region_fd(region)
    try:
        assert not os.get_inheritable(fd), "region_fd() is inheritable by default"
        view = sfork.region_map(fd)
    finally:
        os.close(fd)
    assert fds() == before, f"descriptors: {before} -> {fds()}"
    assert not view.readonly and len(view) == len(region)
    assert sfork.address(view) != sfork.address(region), "region_map() reused the address"
    view[:6] = b"remap!"
    assert bytes(region[:6]) == b"remap!", "a write through region_map()'s view is not seen"
    sfork.unmap(view)
    os.write(go_w, b"g")
    os.close(go_w)
    wait_exit0(pid)
    assert bytes(region[PAGE : PAGE + 5]) == b"child", "the child's write through its map"
    # errors
    plain = memoryview((ctypes.c_ubyte * PAGE)()).cast("B")
    expect_oserror(errno.EINVAL, lambda: sfork.region_fd(plain), "region_fd(not a region)")
    r, w = os.pipe()
    try:
        expect_oserror(errno.EINVAL, lambda: sfork.region_map(r), "region_map(a pipe)")
    finally:
        os.close(r)
        os.close(w)
    dev = os.open(sfork.DEVICE, os.O_RDWR | os.O_CLOEXEC)
    try:
        expect_oserror(errno.EINVAL, lambda: sfork.region_map(dev), "region_map(/dev/sfork)")
    finally:
        os.close(dev)
    expect_oserror(errno.EBADF, lambda: sfork.region_map(9999), "region_map(closed fd)")
    try:
        sfork.region_fd(memoryview(b"abc"))
    except TypeError:
        pass
    else:
        raise AssertionError("region_fd(bytes) did not raise TypeError")
    sfork.unmap(region)
    assert fds() == start, f"descriptors: {start} -> {fds()}"


@check("many regions at once are independent")
def many() -> None:
    regions = []
    pids = []
    for i, d in enumerate((BI, P2C, C2P, P2C)):
        pid, region = sfork.sfork(PAGE * (i + 1), d)
        if pid == 0:
            child_main(lambda: None)
        pids.append(pid)
        regions.append((d, region))
    for pid in pids:
        wait_exit0(pid)
    addrs = {sfork.address(r) for _, r in regions}
    assert len(addrs) == len(regions), "two regions share an address"
    for i, (_, region) in enumerate(regions):
        assert len(region) == PAGE * (i + 1)
        if not region.readonly:
            region[:] = bytes([i + 1]) * len(region)
    for i, (d, region) in enumerate(regions):
        want = bytes([i + 1]) * len(region) if not region.readonly else bytes(len(region))
        assert bytes(region) == want, f"region {i} ({sfork.flag_names(d)}) has other contents"
        sfork.unmap(region)


def main(argv: list[str]) -> int:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)  # a child must not inherit buffered text
    only = argv[argv.index("-k") + 1] if "-k" in argv else ""
    checks = [c for c in CHECKS if only in c[0]]
    os.register_at_fork(after_in_child=lambda: AT_FORK.append("child"))
    if not Path(sfork.DEVICE).exists():
        print(f"1..0 # SKIP {sfork.DEVICE} is absent: load the sfork module")
        return 0
    print(f"1..{len(checks)}")
    diag(f"sfork from {sfork.__file__}, constants from {sfork.HEADER}")
    failed = todo_failed = 0
    for i, (name, fn, todo) in enumerate(checks, 1):
        directive = f" # TODO {todo}" if todo else ""
        try:
            fn()
        except Skip as e:
            print(f"ok {i} - {name} # SKIP {e}")
        except BaseException:
            if os.getpid() != MAIN_PID:  # a child that escaped its check: never go on
                diag(f"child {os.getpid()} escaped from {name!r}:\n{traceback.format_exc()}")
                os._exit(3)
            failed += not todo
            todo_failed += bool(todo)
            print(f"not ok {i} - {name}{directive}")
            diag(traceback.format_exc())
        else:
            if os.getpid() != MAIN_PID:
                os._exit(3)
            print(f"ok {i} - {name}{directive}")
    passed = len(checks) - failed - todo_failed
    diag(f"{passed}/{len(checks)} passed, {failed} failed, {todo_failed} known failures (TODO)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
