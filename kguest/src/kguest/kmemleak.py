"""kmemleak in a guest: scan, read the report, attribute leaks to the test that made them.

How kmemleak reports (mm/kmemleak.c, Linux 6.1 to 6.12): ``echo scan >
/sys/kernel/debug/kmemleak`` scans memory; ``cat`` lists the objects found
unreferenced, each with the task that allocated it (``comm``, ``pid``) and the
allocation time (``jiffies``).  An object is reported only

* when it is at least 5 s old at the scan (``MSECS_MIN_AGE``, a constant), and
* when its content did not change since the previous scan: the first scan that
  sees a new object records its checksum and skips it; a second scan reports it.

So a leak made by a test shows after two scans, the second at least 5 s after the
allocation.  :func:`check` does exactly that for one test: a scan at once, a second
one when the test's end is 5 s old, then only the objects allocated during the test
(by ``jiffies``, so whatever the allocating task: a worker thread's allocation
counts too), then ``clear`` so that nothing found is reported again: the next test
starts clean.  A scan's cost grows with the guest's memory (see kguest/README.md).

Everything runs through ``run``, a function that runs a shell command in the guest
and returns its output (e.g. ``lambda c: guest.check(c, 120).output``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable

Run = Callable[[str], str]
CONTROL = "/sys/kernel/debug/kmemleak"
MIN_AGE_SECONDS = 5.0  # MSECS_MIN_AGE in mm/kmemleak.c


@dataclasses.dataclass(frozen=True)
class Leak:
    """One unreferenced object of kmemleak's report."""

    address: int
    size: int
    comm: str
    pid: int
    jiffies: int  # when it was allocated
    backtrace: tuple[str, ...]  # "f+0x1/0x2 [mod]" frames, innermost first
    hexdump: tuple[str, ...] = ()
    age: float | None = None  # seconds, older kernels only

    @property
    def modules(self) -> tuple[str, ...]:
        """The modules whose functions are in the backtrace."""
        found = [m for f in self.backtrace for m in re.findall(r"\[(\w+)\]\s*$", f)]
        return tuple(dict.fromkeys(found))

    def summary(self) -> str:
        frames = " <- ".join(f.split(" ", 1)[-1] if f.startswith("[<") else f
                             for f in self.backtrace[:4])
        return (f"unreferenced object 0x{self.address:x} ({self.size} bytes) allocated by "
                f"{self.comm}[{self.pid}]: {frames}")


_HEAD = re.compile(r"^unreferenced object 0x([0-9a-f]+) \(size (\d+)\):")
_COMM = re.compile(r'^\s+comm "(.*)", pid (\d+), jiffies (\d+)(?: \(age (\d+\.\d+)s\))?')


def parse(report: str) -> list[Leak]:
    """The objects of ``cat /sys/kernel/debug/kmemleak`` output."""
    leaks: list[Leak] = []
    cur: dict[str, object] | None = None
    section = ""

    def done() -> None:
        if cur is not None:
            leaks.append(Leak(**cur))  # type: ignore[arg-type]

    for line in report.splitlines():
        m = _HEAD.match(line)
        if m:
            done()
            cur = {"address": int(m.group(1), 16), "size": int(m.group(2)), "comm": "",
                   "pid": -1, "jiffies": 0, "backtrace": (), "hexdump": ()}
            section = ""
            continue
        if cur is None:
            continue
        m = _COMM.match(line)
        if m:
            cur.update(comm=m.group(1), pid=int(m.group(2)), jiffies=int(m.group(3)),
                       age=float(m.group(4)) if m.group(4) else None)
            continue
        s = line.strip()
        if s.startswith("hex dump"):
            section = "hex"
        elif s.startswith("backtrace"):
            section = "bt"
        elif s and section == "hex":
            cur["hexdump"] = (*cur["hexdump"], s)  # type: ignore[misc]
        elif s and section == "bt":
            cur["backtrace"] = (*cur["backtrace"], s)  # type: ignore[misc]
    done()
    return leaks


def available(run: Run) -> bool:
    """Whether the guest's kernel has kmemleak, on."""
    out = run(f"test -r {CONTROL} && cat {CONTROL} >/dev/null 2>&1 && echo yes || echo no")
    return out.strip().endswith("yes")


def jiffies(run: Run) -> int:
    """The guest kernel's jiffies now (``/proc/timer_list``)."""
    out = run("grep -m1 '^jiffies:' /proc/timer_list")
    m = re.search(r"jiffies:\s*(\d+)", out)
    if not m:
        raise ValueError(f"no jiffies in /proc/timer_list: {out[:200]!r}")
    return int(m.group(1))


def scan(run: Run) -> list[Leak]:
    """Scan once and return the report (objects reported and not cleared)."""
    return parse(run(f"echo scan > {CONTROL}; cat {CONTROL}"))


def clear(run: Run) -> None:
    """Never report the objects reported so far again."""
    run(f"echo clear > {CONTROL}")


@dataclasses.dataclass(frozen=True)
class Window:
    """When a test ran, in the guest's jiffies."""

    start: int
    end: int

    def holds(self, leak: Leak) -> bool:
        return self.start <= leak.jiffies <= self.end


def attribute(leaks: list[Leak], windows: dict[str, Window]) -> dict[str, list[Leak]]:
    """Leaks by the test during which they were allocated ("" for none of them)."""
    out: dict[str, list[Leak]] = {}
    for leak in leaks:
        name = next((n for n, w in windows.items() if w.holds(leak)), "")
        out.setdefault(name, []).append(leak)
    return out


def check(
    run: Run,
    window: Window,
    ended: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Leak]:
    """The leaks of the test that ran in ``window`` and ended at ``ended`` (``clock``
    time): scan now, scan again once the end is ``MIN_AGE_SECONDS`` old, keep what
    was allocated in the window, clear the report.  Costs about 5 s plus a scan."""
    scan(run)
    wait = ended + MIN_AGE_SECONDS + 0.2 - clock()
    if wait > 0:
        sleep(wait)
    found = scan(run)
    clear(run)
    return [leak for leak in found if window.holds(leak)]
