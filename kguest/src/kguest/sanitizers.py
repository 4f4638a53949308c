"""What the kernel's checkers print, read from a kernel log: which checker found what.

Each finding starts with a line of its own (the report's first line; the stack and
details follow it).  Read with :func:`findings`; a line that starts no finding
belongs to the one before.  The first lines, as Linux 6.1 to 6.12 print them:

* KASAN: ``BUG: KASAN: slab-use-after-free in f+0x1/0x2 [mod]``
* KFENCE: ``BUG: KFENCE: out-of-bounds read in f+0x1/0x2 [mod]``
* UBSAN: ``UBSAN: array-index-out-of-bounds in drivers/x.c:12:5``
* lockdep and friends: ``WARNING: possible circular locking dependency detected``,
  ``WARNING: inconsistent lock state``, ``BUG: sleeping function called from
  invalid context at ...``, ``INFO: trying to register non-static key.`` ...
* SLUB debugging: ``BUG kmalloc-64 (Tainted: G    B  O): Redzone overwritten``
* debug objects: ``ODEBUG: free active (active state 0) object: ...``
* kmemleak (after a scan that found some): ``kmemleak: 3 new suspected memory
  leaks (see /sys/kernel/debug/kmemleak)``

and the kernel's word on its own command line: ``Unknown kernel command line
parameters "kmemleak=on", will be passed to user space.`` (:func:`unknown_parameters`).
"""

from __future__ import annotations

import dataclasses
import re

# (checker, first-line pattern), most specific first: a line is the first checker's
# that matches it.
FIRST_LINES: tuple[tuple[str, str], ...] = (
    ("kasan", r"BUG: KASAN: "),
    ("kfence", r"BUG: KFENCE: "),
    ("ubsan", r"UBSAN: "),
    ("lockdep", r"WARNING: (?:possible (?:circular|recursive) locking|inconsistent lock state"
                r"|possible irq lock inversion|bad unlock balance|held lock freed"
                r"|lock held when returning to user space|suspicious RCU usage"
                r"|bad contention detected|Nested lock was not taken"
                r"|possible deadlock|.*lock.* detected)"),
    ("lockdep", r"INFO: trying to register non-static key"),
    ("lockdep", r"BUG: MAX_LOCK\w+ too low"),
    ("atomic-sleep", r"BUG: (?:sleeping function called from invalid context"
                     r"|scheduling while atomic|workqueue leaked lock)"),
    ("slub", r"BUG \S+ \((?:Not tainted|Tainted: [^)]*)\): "),
    ("debugobjects", r"ODEBUG: "),
    ("kmemleak", r"kmemleak: \d+ new suspected memory leaks"),
    ("kmemleak", r"kmemleak: (?:Kernel memory leak detector disabled|Cannot allocate)"),
    ("list", r"list_(?:add|del) corruption|list corruption"),
    ("refcount", r"refcount_t: "),
    ("bug", r"kernel BUG at |BUG: "),
    ("warning", r"WARNING: "),
)
_RX = [(tool, re.compile(rx)) for tool, rx in FIRST_LINES]
# printk's own prefixes: "[   12.345678] ", "<4>[ 1.2] ", "4,123,456,-;" (/dev/kmsg)
_PREFIX = re.compile(
    r"^(?:<\d>)?(?:\[\s*\d+\.\d+\]\s*)?(?:\d+,\d+,\d+,[^;]*;)?(?:\[\s*[CT]\d+\]\s*)?"
)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One report of a checker: which one, its first line, and the lines after it."""

    tool: str
    title: str  # the first line, without the printk prefix
    lines: tuple[str, ...]  # the whole report, first line included

    @property
    def where(self) -> str:
        """The function (and module) the report names: ``f+0x1/0x2 [mod]``, or a
        file:line for UBSAN; "" when the first line names none."""
        m = re.search(r" in (\S+(?: \[\w+\])?)", self.title)
        return m.group(1) if m else ""


def first_line(line: str) -> str | None:
    """The checker whose report ``line`` starts, or None."""
    body = _PREFIX.sub("", line)
    for tool, rx in _RX:
        if rx.match(body):
            return tool
    return None


def findings(log: str) -> list[Finding]:
    """Every checker report in a kernel log, in order, each with its following lines
    (up to the next report or a ``---[ end trace`` / ``=====`` line)."""
    out: list[Finding] = []
    cur: list[str] = []
    tool = ""
    for raw in log.splitlines():
        t = first_line(raw)
        if t is not None:
            if cur:
                out.append(Finding(tool, _PREFIX.sub("", cur[0]), tuple(cur)))
            tool, cur = t, [raw]
            continue
        if cur:
            cur.append(raw)
            body = _PREFIX.sub("", raw)
            if body.startswith("---[ end trace") or re.fullmatch(r"={20,}", body.strip()):
                out.append(Finding(tool, _PREFIX.sub("", cur[0]), tuple(cur)))
                cur = []
    if cur:
        out.append(Finding(tool, _PREFIX.sub("", cur[0]), tuple(cur)))
    return out


_UNKNOWN = re.compile(r'Unknown kernel command line parameters "([^"]*)", will be passed to '
                      r"user space")


def unknown_parameters(log: str) -> list[str]:
    """The command-line words the kernel did not understand (its own boot message).

    Words with a dot (``MODULE.PARAM=VALUE``) are never in it: the kernel keeps them
    for a module that may load later, so a misspelt one passes silently; check
    those against ``/sys/module/MODULE/parameters/`` and the modules the guest loads.
    """
    words: list[str] = []
    for line in log.splitlines():
        m = _UNKNOWN.search(line)
        if m:
            words += m.group(1).split()
    return words
