"""sfork-specific pytest glue.

The kguest plugin itself is loaded by its ``pytest11`` entry point (kguest/pyproject.toml);
this file must not load it again.  It only holds what is particular to sfork.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import kguest


def parse_stats(text: str) -> dict[str, int]:
    """/sys/kernel/debug/sfork/stats: ``key value`` lines (HACKING.md)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@pytest.fixture
def sfork_stats(kguest_guest: kguest.Guest) -> Callable[[], dict[str, int]]:
    """A callable returning the module's counters from the worker's guest."""

    def read() -> dict[str, int]:
        return parse_stats(kguest_guest.check("cat /sys/kernel/debug/sfork/stats").output)

    return read
