"""Kernel trouble: taint flags and Oops/BUG/WARNING/panic lines in the kernel log."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

# Bit -> letter, as in Documentation/admin-guide/tainted-kernels.rst.
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTN"

# Lines that start trouble.  Not "Call Trace:" / "RIP:" alone: an OOM kill (expected
# in memcg tests) prints a stack too; those lines still show as context of a real hit.
PATTERNS = [
    r"Oops",
    r"BUG:",
    r"kernel BUG at",
    r"WARNING:",
    r"Kernel panic",
    r"general protection fault",
    r"refcount_t:",
    r"list_(add|del) corruption",
    r"list corruption",
    r"UBSAN:",
    r"KASAN:",
    r"soft lockup",
    r"hung_task|blocked for more than",
    r"rcu: INFO: rcu_.*stall",
    r"Bad page (state|map)",
    r"Unable to handle kernel",
    r"invalid opcode:",
    r"kernel stack overflow",
    r"stack-protector",
]
TROUBLE_RX = re.compile("|".join(f"(?:{p})" for p in PATTERNS))


def taint_letters(value: int) -> str:
    """``4096|8192`` -> ``"OE"``; bits beyond the table print as ``?N``."""
    out = []
    for bit in range(max(value.bit_length(), 0)):
        if value >> bit & 1:
            out.append(TAINT_LETTERS[bit] if bit < len(TAINT_LETTERS) else f"?{bit}")
    return "".join(out)


def taint_mask(letters: str) -> int:
    mask = 0
    for ch in letters:
        i = TAINT_LETTERS.find(ch)
        if i < 0:
            raise ValueError(f"unknown taint letter {ch!r}; known: {TAINT_LETTERS}")
        mask |= 1 << i
    return mask


def bad_taint(before: int, after: int, allowed: str = "OE") -> int:
    """Taint bits that appeared and are not allowed."""
    return (after & ~before) & ~taint_mask(allowed)


def scan(text: str, context: int = 30) -> list[str]:
    """Excerpts of ``text`` around kernel trouble; empty when the log is clean."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if TROUBLE_RX.search(line)]
    if not hits:
        return []
    out: list[str] = []
    i = 0
    while i < len(hits):
        start = max(hits[i] - 2, 0)
        end = min(hits[i] + context, len(lines))
        while i + 1 < len(hits) and hits[i + 1] < end:
            i += 1
            end = min(hits[i] + context, len(lines))
        out.append("\n".join(lines[start:end]))
        i += 1
    return out


@dataclasses.dataclass(frozen=True)
class Trouble:
    """What went wrong in the kernel during one test."""

    new_taint: int = 0
    excerpts: tuple[str, ...] = ()
    note: str = ""  # where it was seen, when not during the test itself
    allowed: str = "OE"  # the taint letters a test may add (config: allowed_taint)

    def __bool__(self) -> bool:
        return bool(self.new_taint or self.excerpts)

    def report(self, annotate: Callable[[str], str] = str) -> str:
        """What went wrong, in words; ``annotate`` rewrites the kernel's excerpts (e.g.
        symbols.Symbolizer.annotate: the module's frames as file:line)."""
        parts = [f"(seen {self.note})"] if self.note else []
        if self.new_taint:
            parts.append(
                f"kernel taint gained {taint_letters(self.new_taint)} "
                f'(0x{self.new_taint:x}), not in allowed_taint = "{self.allowed}"'
            )
        parts.extend(f"--- kernel log ---\n{annotate(e)}" for e in self.excerpts)
        return "\n".join(parts)
