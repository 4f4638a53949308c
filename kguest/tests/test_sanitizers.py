"""Checker reports in a kernel log (KASAN, KFENCE, UBSAN, lockdep, SLUB, kmemleak),
the kernel's unknown command-line words, and kmemleak's report and per-test
attribution (no guest: recorded text and a fake guest)."""

from __future__ import annotations

import pytest

from kguest import kmemleak, sanitizers

LOG = """\
[   12.001000] ringbuf: loaded
[   13.100000] ==================================================================
[   13.100100] BUG: KASAN: slab-use-after-free in ring_read+0x5e/0x90 [ring]
[   13.100200] Read of size 8 at addr ffff888003a1c0f8 by task cat/117
[   13.100300] Call Trace:
[   13.100400]  <TASK>
[   13.100500]  dump_stack_lvl+0x4b/0x70
[   13.100600] ==================================================================
[   14.000000] BUG: KFENCE: out-of-bounds write in ring_write+0x3a/0x80 [ring]
[   14.000100] Out-of-bounds write at 0x000000009d4fa6fc (64B right of kfence-#12):
[   15.000000] UBSAN: array-index-out-of-bounds in /tmp/ring/ring.c:42:9
[   15.000100] index 16 is out of range for type 'u64 [16]'
[   16.000000] ======================================================
[   16.000100] WARNING: possible circular locking dependency detected
[   16.000200] 6.12.118-kguest #1 Tainted: G    B      O
[   17.000000] BUG: sleeping function called from invalid context at mm/slub.c:4160
[   18.000000] =============================================================================
[   18.000100] BUG kmalloc-64 (Tainted: G    B      O): Redzone overwritten
[   19.000000] kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
[   20.000000] WARNING: CPU: 1 PID: 120 at /tmp/ring/ring.c:80 ring_reset+0x10/0x20 [ring]
[   20.100000] ---[ end trace 0000000000000000 ]---
[   21.000000] ringbuf: done
"""


def test_checkers_and_their_first_lines() -> None:
    found = sanitizers.findings(LOG)
    assert [f.tool for f in found] == ["kasan", "kfence", "ubsan", "lockdep", "atomic-sleep",
                                       "slub", "kmemleak", "warning"]
    kasan = found[0]
    assert kasan.title == "BUG: KASAN: slab-use-after-free in ring_read+0x5e/0x90 [ring]"
    assert kasan.where == "ring_read+0x5e/0x90 [ring]"
    assert any("by task cat/117" in ln for ln in kasan.lines)
    assert found[2].where == "/tmp/ring/ring.c:42:9"
    assert found[-1].lines[-1].endswith("---[ end trace 0000000000000000 ]---")
    assert all("ringbuf: done" not in ln for f in found for ln in f.lines)


def test_prefixes_of_every_log_source() -> None:
    for line in ("BUG: KASAN: use-after-free in f+0x1/0x2",
                 "<3>[    1.5] BUG: KASAN: use-after-free in f+0x1/0x2",
                 "3,812,9034312,-;BUG: KASAN: use-after-free in f+0x1/0x2",
                 "[   1.000000] [  T117] BUG: KASAN: use-after-free in f+0x1/0x2"):
        assert sanitizers.first_line(line) == "kasan", line
    assert sanitizers.first_line("Call Trace:") is None
    assert sanitizers.first_line("FAULT_INJECTION: forcing a failure.") is None  # expected
    assert sanitizers.first_line("INFO: trying to register non-static key.") == "lockdep"


def test_unknown_command_line_words() -> None:
    log = ('5,77,133843,-;Kernel command line: console=ttyS0 kmemleak=on kasan.fault=panic\n'
           '5,78,135555,-;Unknown kernel command line parameters "kmemleak=on frobnicate=1", '
           'will be passed to user space.\n')
    assert sanitizers.unknown_parameters(log) == ["kmemleak=on", "frobnicate=1"]
    assert sanitizers.unknown_parameters("Kernel command line: quiet\n") == []


# --- kmemleak --------------------------------------------------------------------------

REPORT = """\
unreferenced object 0xffff888004c1a000 (size 64):
  comm "ring_test", pid 131, jiffies 4294896012
  hex dump (first 32 bytes):
    6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkkkkkkkkkkkkkk
    6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b  kkkkkkkkkkkkkkkk
  backtrace (crc 1b3c5a9e):
    __kmalloc_cache_noprof+0x2c2/0x3b0
    ring_reset+0x2a/0x70 [ring]
    ring_ioctl+0x91/0x120 [ring]
    __x64_sys_ioctl+0xba/0x100
unreferenced object 0xffff888004c1b000 (size 128):
  comm "kworker/0:1", pid 12, jiffies 4294899000 (age 7.120s)
  backtrace:
    [<ffffffff811e6d2a>] kmalloc_trace+0x2a/0x90
    [<ffffffffc0000123>] ring_work+0x23/0x40 [ring]
"""


def test_kmemleak_report() -> None:
    a, b = kmemleak.parse(REPORT)
    assert (a.address, a.size, a.comm, a.pid, a.jiffies, a.age) == (
        0xFFFF888004C1A000, 64, "ring_test", 131, 4294896012, None)
    assert len(a.hexdump) == 2 and a.backtrace[1] == "ring_reset+0x2a/0x70 [ring]"
    assert a.modules == ("ring",)
    assert b.age == 7.12 and b.comm == "kworker/0:1" and b.modules == ("ring",)
    assert "ring_reset+0x2a/0x70 [ring]" in a.summary()
    assert kmemleak.parse("") == []


def test_leaks_go_to_the_test_that_allocated_them() -> None:
    leaks = kmemleak.parse(REPORT)
    windows = {"t1": kmemleak.Window(4294890000, 4294896500),
               "t2": kmemleak.Window(4294896600, 4294899500)}
    by = kmemleak.attribute(leaks, windows)
    assert [x.pid for x in by["t1"]] == [131]
    assert [x.comm for x in by["t2"]] == ["kworker/0:1"]  # a worker's allocation counts
    assert kmemleak.attribute(leaks, {}) == {"": leaks}


class FakeGuest:
    """kmemleak's two-scan rule: an object is reported from the second scan on that
    is 5 s (here: 5 ticks of the fake clock) after its allocation."""

    def __init__(self) -> None:
        self.now = 100.0
        self.objects: list[tuple[float, str]] = []  # (allocated at, report text)
        self.seen: set[str] = set()
        self.reported: set[str] = set()
        self.cleared: set[str] = set()
        self.commands: list[str] = []

    def run(self, cmd: str) -> str:
        self.commands.append(cmd)
        if cmd.startswith("echo clear"):
            self.cleared |= self.reported
            return ""
        if cmd.startswith("echo scan"):
            for at, text in self.objects:
                if text in self.seen and self.now >= at + 5:
                    self.reported.add(text)
                self.seen.add(text)
            self.now += 1.0  # a scan takes a second
        return "".join(t for _, t in self.objects if t in self.reported - self.cleared)

    def leak(self, jiffies: int, comm: str) -> None:
        self.objects.append((self.now, f"unreferenced object 0x{jiffies:x} (size 8):\n"
                                       f'  comm "{comm}", pid 1, jiffies {jiffies}\n'))


def test_check_scans_twice_waits_and_clears() -> None:
    g = FakeGuest()
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        g.now += s

    g.leak(1000, "before")  # an earlier test's, not ours
    g.now += 10
    g.leak(2000, "ours")
    ended = g.now
    found = kmemleak.check(g.run, kmemleak.Window(1500, 2500), ended, sleep, lambda: g.now)
    assert [x.comm for x in found] == ["ours"]
    assert slept and slept[0] == pytest.approx(4.2)  # 5 s after the end, less the scan
    assert [c.split(">")[0].strip() for c in g.commands] == [
        "echo scan", "echo scan", "echo clear"]
    # the next test starts clean: nothing reported again
    g.commands.clear()
    assert kmemleak.check(g.run, kmemleak.Window(2600, 3000), g.now, sleep, lambda: g.now) == []
