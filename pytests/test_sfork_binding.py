"""The Python binding ``sfork``.

On the host (no module, no guest): the constants and structures read from the uapi
header agree with the C compiler; argument checking; ENOSYS without ``/dev/sfork``
(absent, or a stale node) with nothing left behind; and the binding's own mechanics
(address handed to the kernel, memoryview over the existing mapping, read-only side,
descriptor closed, signal mask restored, munmap when the fork fails) against a stand-in
for the module's ioctl.

In a guest (vng backend: the guest runs the host's venv; one boot): the checks of
``pytests/data/sfork_binding_check.py`` against the real module, as TAP.
"""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import mmap
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import kguest
import sfork
from kguest.results import parse_tap

ROOT = Path(__file__).resolve().parent.parent
UAPI = ROOT / "kmod/include/uapi/linux/sfork.h"
CHECK_SCRIPT = ROOT / "pytests/data/sfork_binding_check.py"
PAGE = mmap.PAGESIZE


def fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"), key=int)


def sigmask() -> set[int]:
    return {int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, ())}


def children() -> list[str]:
    out: list[str] = []
    for t in os.listdir("/proc/self/task"):
        out += Path(f"/proc/self/task/{t}/children").read_text().split()
    return out


@pytest.fixture
def untouched() -> Iterator[None]:
    """The test leaves no descriptor, no child and the signal mask as it found them."""
    before = fds(), children(), sigmask()
    yield
    assert (fds(), children(), sigmask()) == before


# --- the header is the one definition ----------------------------------------------


def test_constants_come_from_the_header() -> None:
    if sfork.HEADER_ENV not in os.environ:  # the package's copy: here a link to kmod's header
        assert Path(sfork.__file__).parent / "sfork.h" == sfork.HEADER
        assert sfork.HEADER.resolve() == UAPI.resolve()
    h = sfork.parse_header(UAPI)
    for name in ("BIDIRECTIONAL", "PARENT_TO_CHILD", "CHILD_TO_PARENT", "LAZY", "EAGER"):
        assert getattr(sfork, name) == h.defines[f"SFORK_{name}"]
    for name in ("DIRECTION_MASK", "ALLOC_MASK", "VALID_FLAGS", "DEVICE"):
        assert getattr(sfork, name) == h.defines[f"SFORK_{name}"]
    for name in ("IOC_CREATE", "IOC_EXPORT", "IOC_INFO"):
        assert getattr(sfork, name) == h.defines[f"SFORK_{name}"]
    flags = [sfork.BIDIRECTIONAL, sfork.PARENT_TO_CHILD, sfork.CHILD_TO_PARENT]
    flags += [sfork.LAZY, sfork.EAGER]
    assert all(f > 0 and f & (f - 1) == 0 for f in flags), "each flag is a single bit"
    assert len(set(flags)) == 5
    assert sfork.BIDIRECTIONAL != sfork.PARENT_TO_CHILD | sfork.CHILD_TO_PARENT
    assert flags[0] | flags[1] | flags[2] == sfork.DIRECTION_MASK
    assert sfork.ALLOC_MASK == sfork.LAZY | sfork.EAGER
    assert sfork.VALID_FLAGS == sfork.DIRECTION_MASK | sfork.ALLOC_MASK
    assert sfork.DEVICE == "/dev/sfork"
    # no flag value is typed into the binding's source
    source = Path(sfork.__file__).read_text()
    assert not re.search(r"1\s*<<\s*[0-4]\b|0xb6|0x[0-9a-f]{8}", source, re.I)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_header_values_and_layouts_match_the_c_compiler(tmp_path: Path) -> None:
    h = sfork.parse_header(UAPI)
    ints = sorted(k for k, v in h.defines.items() if isinstance(v, int))
    lines = [f'printf("{n} %llu\\n", (unsigned long long)({n}));' for n in ints]
    for s, cls in h.structs.items():
        lines.append(f'printf("sizeof:{s} %zu\\n", sizeof(struct {s}));')
        for field, *_ in cls._fields_:
            lines.append(f'printf("offsetof:{s}.{field} %zu\\n", offsetof(struct {s}, {field}));')
    src = tmp_path / "values.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/sfork.h>\n"
        "int main(void) {\n" + "\n".join(lines) + "\nreturn 0;\n}\n"
    )
    exe = tmp_path / "values"
    subprocess.run(["cc", f"-I{UAPI.parent.parent}", "-o", exe, src], check=True)
    out = dict(ln.split() for ln in subprocess.check_output([exe], text=True).splitlines())
    want = {n: str(h.defines[n]) for n in ints}
    for s, cls in h.structs.items():
        want[f"sizeof:{s}"] = str(ctypes.sizeof(cls))
        for field, *_ in cls._fields_:
            want[f"offsetof:{s}.{field}"] = str(getattr(cls, field).offset)
    assert out == want
    assert {"SFORK_IOC_CREATE", "SFORK_IOC_EXPORT", "SFORK_IOC_INFO"} <= set(ints)


def test_another_header_gives_other_values(tmp_path: Path) -> None:
    """The values follow the header (an edited copy), through $SFORK_UAPI_HEADER too."""
    text = UAPI.read_text()
    text = text.replace("SFORK_LAZY\t\t(1U << 3)", "SFORK_LAZY\t\t(1U << 9)")
    text = text.replace("__s32 fd;", "__s32 fd;\n\t__u64 spare;")
    assert "(1U << 9)" in text and "spare" in text
    other = tmp_path / "sfork.h"
    other.write_text(text)
    h = sfork.parse_header(other)
    assert h.defines["SFORK_LAZY"] == 1 << 9
    assert h.defines["SFORK_VALID_FLAGS"] == sfork.VALID_FLAGS - sfork.LAZY + (1 << 9)
    assert ctypes.sizeof(h.structs["sfork_export"]) == 24
    assert h.defines["SFORK_IOC_EXPORT"] == sfork.IOC_EXPORT + (8 << 16)
    code = "import sfork; print(sfork.HEADER, sfork.LAZY)"
    env = {**os.environ, sfork.HEADER_ENV: str(other)}
    out = subprocess.check_output([sys.executable, "-c", code], env=env, text=True)
    assert out.split() == [str(other), str(1 << 9)]


def test_missing_or_unreadable_header_is_a_clear_import_error(tmp_path: Path) -> None:
    code = "import sfork"
    env = {**os.environ, sfork.HEADER_ENV: str(tmp_path / "nope.h")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "ImportError" in r.stderr and "nope.h" in r.stderr
    bad = tmp_path / "bad.h"
    bad.write_text(UAPI.read_text().replace("(1U << 0)", "(1U <<< 0)"))
    env[sfork.HEADER_ENV] = str(bad)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "SFORK_BIDIRECTIONAL" in r.stderr, r.stderr


# --- arguments and ENOSYS on the host ------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (("4096", sfork.PARENT_TO_CHILD), TypeError),
        ((4096.0, sfork.PARENT_TO_CHILD), TypeError),
        ((True, sfork.PARENT_TO_CHILD), TypeError),
        ((None, sfork.PARENT_TO_CHILD), TypeError),
        ((4096, "PARENT_TO_CHILD"), TypeError),
        ((4096, sfork.PARENT_TO_CHILD, "lazy"), TypeError),
        ((4096, sfork.PARENT_TO_CHILD, 1.0), TypeError),
    ],
    ids=[
        "str-size",
        "float-size",
        "bool-size",
        "none-size",
        "str-flags",
        "str-alloc",
        "float-alloc",
    ],
)
def test_argument_types(args: tuple[Any, ...], exc: type[Exception], untouched: None) -> None:
    with pytest.raises(exc, match="must be an int"):
        sfork.sfork(*args)


@pytest.mark.parametrize(
    ("size", "flags", "code"),
    [
        (-1, sfork.PARENT_TO_CHILD, errno.EINVAL),
        (4096, -1, errno.EINVAL),
        (4096, sfork.PARENT_TO_CHILD | 1 << 32, errno.EINVAL),
        (2**64, sfork.PARENT_TO_CHILD, errno.ENOMEM),
        (2**70, sfork.BIDIRECTIONAL, errno.ENOMEM),
    ],
    ids=["size-1", "flags-1", "flags-bit32", "size-2**64", "size-2**70"],
)
def test_values_beyond_the_abi_fail_before_the_device(
    size: int, flags: int, code: int, untouched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values the ABI cannot carry are refused without opening the device (no ENOSYS)."""
    monkeypatch.setattr(os, "open", _no_open)
    with pytest.raises(OSError) as ei:
        sfork.sfork(size, flags)
    assert ei.value.errno == code, ei.value


def _no_open(*a: object, **k: object) -> int:
    raise AssertionError("the device was opened")


def test_numpy_style_integers_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    class Index:
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    monkeypatch.setattr(sfork, "DEVICE", "/nonexistent/sfork")
    with pytest.raises(OSError) as ei:
        sfork.sfork(Index(4096), Index(sfork.PARENT_TO_CHILD))  # type: ignore[arg-type]
    assert ei.value.errno == errno.ENOSYS


@pytest.mark.skipif(os.path.exists("/dev/sfork"), reason="this host has /dev/sfork")
@pytest.mark.parametrize("alloc", [None, sfork.LAZY, sfork.EAGER], ids=["auto", "lazy", "eager"])
def test_enosys_without_the_module(alloc: int | None, untouched: None) -> None:
    """The host has no sfork module: ENOSYS, whatever the (encodable) arguments."""
    for size, flags in ((PAGE, sfork.PARENT_TO_CHILD), (0, 0), (PAGE, sfork.VALID_FLAGS)):
        with pytest.raises(OSError) as ei:
            sfork.sfork(size, flags, alloc=alloc)
        assert ei.value.errno == errno.ENOSYS
        assert ei.value.filename == "/dev/sfork"
        assert "sfork module is not loaded" in str(ei.value)


def test_enosys_on_a_missing_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untouched: None
) -> None:
    monkeypatch.setattr(sfork, "DEVICE", str(tmp_path / "sfork"))
    with pytest.raises(OSError) as ei:
        sfork.sfork(PAGE, sfork.BIDIRECTIONAL)
    assert ei.value.errno == errno.ENOSYS
    view = memoryview((ctypes.c_ubyte * PAGE)()).cast("B")
    with pytest.raises(OSError) as ei:
        sfork.region_fd(view)
    assert ei.value.errno == errno.ENOSYS


def test_enosys_on_a_stale_device_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untouched: None
) -> None:
    """A node left behind whose driver is gone opens with ENXIO/ENODEV: that is ENOSYS."""
    used = {int(m) for m in re.findall(r"^\s*(\d+) ", Path("/proc/devices").read_text(), re.M)}
    major = next(m for m in range(254, 233, -1) if m not in used)  # "local/experimental use"
    node = tmp_path / "sfork"
    try:
        os.mknod(node, 0o600 | 0o020000, os.makedev(major, 0))
        os.close(os.open(node, os.O_RDWR))
    except PermissionError:
        pytest.skip("cannot create a device node here")
    except OSError as e:
        assert e.errno in (errno.ENXIO, errno.ENODEV), e
    else:
        pytest.skip(f"char major {major} opened: not stale")
    monkeypatch.setattr(sfork, "DEVICE", str(node))
    with pytest.raises(OSError) as ei:
        sfork.sfork(PAGE, sfork.PARENT_TO_CHILD)
    assert ei.value.errno == errno.ENOSYS


def test_other_open_errors_pass_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untouched: None
) -> None:
    monkeypatch.setattr(sfork, "DEVICE", str(tmp_path))  # a directory: EISDIR
    with pytest.raises(IsADirectoryError):
        sfork.sfork(PAGE, sfork.PARENT_TO_CHILD)


def test_region_helpers_refuse_other_buffers(tmp_path: Path, untouched: None) -> None:
    with pytest.raises(TypeError, match="not a view of a region"):
        sfork.address(memoryview(b"abc"))
    with pytest.raises(TypeError):
        sfork.region_fd(memoryview(bytearray(8)))
    with pytest.raises(TypeError):
        sfork.unmap(memoryview(bytearray(8)))
    f = tmp_path / "f"
    f.write_bytes(b"x" * PAGE)
    fd = os.open(f, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as ei:  # not an exported side: ENOTTY becomes EINVAL
            sfork.region_map(fd)
        assert ei.value.errno == errno.EINVAL
    finally:
        os.close(fd)


def test_flag_names_and_sides() -> None:
    assert sfork.flag_names(sfork.PARENT_TO_CHILD | sfork.LAZY) == "PARENT_TO_CHILD|LAZY"
    assert sfork.flag_names(0) == "0"
    assert sfork.flag_names(sfork.EAGER | 1 << 20) == f"EAGER|{1 << 20:#x}"
    table = {
        sfork.BIDIRECTIONAL: (True, True),
        sfork.PARENT_TO_CHILD: (True, False),
        sfork.CHILD_TO_PARENT: (False, True),
    }
    for d, (parent, child) in table.items():
        for alloc in (0, sfork.LAZY, sfork.EAGER):
            assert sfork.writable(d | alloc, child=False) is parent
            assert sfork.writable(d | alloc, child=True) is child


# --- the mechanics, against a stand-in for the module's ioctl ---------------------------


class FakeModule:
    """SFORK_IOC_CREATE as the module answers it: validate, map anonymous shared memory
    with the creator's permission, write its address to *addr_ptr and fill in the reply."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.maps: list[tuple[int, int]] = []
        self.masks: list[set[int]] = []
        self.fd_open: list[bool] = []
        self.mmap = sfork._libc().mmap

    def ioctl(self, fd: int, request: int, arg: Any) -> int:
        self.calls.append(request)
        self.masks.append(sigmask())
        self.fd_open.append(str(fd) in fds())
        assert request == sfork.IOC_CREATE
        flags = arg.flags
        if not arg.len or flags & ~sfork.VALID_FLAGS:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        size = -(-arg.len // PAGE) * PAGE
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if sfork.writable(flags, child=False) else 0)
        anon = mmap.MAP_SHARED | mmap.MAP_ANONYMOUS
        addr = self.mmap(None, size, prot, anon, -1, 0)
        assert addr and addr != ctypes.c_void_p(-1).value
        ctypes.c_uint64.from_address(arg.addr_ptr).value = addr  # the caller's void *
        arg.addr, arg.size, arg.out_flags = addr, size, flags | sfork.LAZY
        self.maps.append((addr, size))
        return 0


def maps_at(addr: int) -> list[str]:
    return [
        ln for ln in Path("/proc/self/maps").read_text().splitlines() if ln.startswith(f"{addr:x}-")
    ]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeModule:
    m = FakeModule()
    monkeypatch.setattr(sfork, "DEVICE", "/dev/null")  # something that opens
    monkeypatch.setattr(sfork, "_ioctl", m.ioctl)
    return m


def in_child(pid: int, fn: Callable[[], None]) -> None:
    """Run ``fn`` in the sfork child and exit (status 0 if it passed)."""
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)


def wait_ok(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child: status {status:#x}"


@pytest.mark.parametrize("direction", ["BIDIRECTIONAL", "PARENT_TO_CHILD", "CHILD_TO_PARENT"])
def test_mechanics_with_a_stand_in_module(
    direction: str, fake: FakeModule, untouched: None
) -> None:
    flags = getattr(sfork, direction)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    try:
        before = fds(), sigmask()
        pid, region = sfork.sfork(PAGE + 1, flags, alloc=sfork.EAGER)

        def child() -> None:
            # No new descriptor; at-fork handlers (matplotlib's font cache) may close some.
            assert set(fds()) <= set(before[0]) and sigmask() == before[1]
            assert region.readonly is not sfork.writable(flags, child=True)
            assert sfork.address(region) == fake.maps[0][0]

        in_child(pid, child)
        assert fake.calls == [sfork.IOC_CREATE] and fake.fd_open == [True]
        assert fake.masks[0] >= {int(s) for s in signal.valid_signals()} - {
            signal.SIGKILL,
            signal.SIGSTOP,
        }, "not every signal was blocked around the ioctl"
        assert (fds(), sigmask()) == before, "descriptor left or mask not restored"
        addr, size = fake.maps[0]
        assert sfork.address(region) == addr and len(region) == size == 2 * PAGE
        assert region.format == "B" and region.readonly is not sfork.writable(flags, child=False)
        if not region.readonly:  # the view is the mapping itself, not a copy
            ctypes.memset(addr + 5, 0x42, 1)
            assert region[5] == 0x42
            region[6] = 0x43
            assert ctypes.c_ubyte.from_address(addr + 6).value == 0x43
        else:
            with pytest.raises(TypeError):
                region[0] = 1
        wait_ok(pid)
        sfork.unmap(region)
        assert maps_at(addr) == []
        with pytest.raises(ValueError):  # released
            _ = region[0]
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR2})


def test_ioctl_error_leaves_nothing(fake: FakeModule, untouched: None) -> None:
    with pytest.raises(OSError) as ei:
        sfork.sfork(0, sfork.BIDIRECTIONAL)
    assert ei.value.errno == errno.EINVAL
    assert "sfork(size=0, flags=BIDIRECTIONAL)" in str(ei.value)
    assert fake.maps == []


def test_fork_failure_unmaps_the_region(
    fake: FakeModule, monkeypatch: pytest.MonkeyPatch, untouched: None
) -> None:
    def no_fork() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(BlockingIOError) as ei:
        sfork.sfork(3 * PAGE, sfork.PARENT_TO_CHILD)
    assert ei.value.errno == errno.EAGAIN
    ((addr, _),) = fake.maps
    assert maps_at(addr) == [], "the region is still mapped after the failed fork"


# --- in a guest ------------------------------------------------------------------------


def check_names() -> list[str]:
    spec = importlib.util.spec_from_file_location("sfork_binding_check", CHECK_SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return [name for name, *_ in mod.CHECKS]


@pytest.mark.guest
@pytest.mark.kguest(backend="vng", timeout=600)
def test_binding_in_a_guest(kguest_run: kguest.GuestRunner) -> None:
    """Every check of sfork_binding_check.py passes in a vng guest (one boot), with the
    host's venv python; a check marked TODO (a known module defect) may fail."""
    run = kguest_run(f"{sys.executable} {CHECK_SCRIPT}", timeout=600, fmt="tap")
    assert run.result is not None
    out = run.result.output
    tap = {t.description: t for t in parse_tap(out)}
    names = check_names()
    missing = [n for n in names if n not in tap]
    assert not missing, f"checks without a result: {missing}\n{out}"
    bad = [n for n in names if not tap[n].ok]
    skipped = [n for n in names if tap[n].skipped]
    assert not bad and not skipped, f"failed: {bad}, skipped: {skipped}\n{out}"


def test_binding_alone_in_a_fresh_venv(tmp_path: Path) -> None:
    """``pip install ./python`` (not editable) into a venv of its own: the package
    carries its header, and importing it pulls in neither pytest nor pexpect."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check"]
    r = subprocess.run([*pip, str(ROOT / "python")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    probe = (
        "import sfork, sys; "
        "assert 'pexpect' not in sys.modules and 'pytest' not in sys.modules; "
        "assert sfork.HEADER.is_file() and 'site-packages' in str(sfork.HEADER); "
        "print(sfork.HEADER)"
    )
    r = subprocess.run([str(venv / "bin/python"), "-c", probe], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
