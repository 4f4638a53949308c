"""Announce long steps (apt, build, image, boot) and how long they took."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Say = Callable[[str], None]


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def quiet(line: str) -> None:
    """A ``Say`` that drops everything."""


@contextmanager
def step(say: Say, what: str) -> Iterator[None]:
    """``with step(say, "building image"):`` prints the start, then the duration or failure."""
    say(f"kguest: {what} ...")
    t0 = time.monotonic()
    try:
        yield
    except BaseException:
        say(f"kguest: {what}: FAILED after {time.monotonic() - t0:.1f} s")
        raise
    say(f"kguest: {what}: done in {time.monotonic() - t0:.1f} s")
