"""Kernel config fragments: kguest's named ones (package data) and a project's files.

A kernel built from source starts from ``make tinyconfig`` plus the ``base``
fragment, then the fragments its ``config`` list names, in order (a later line for
the same option wins).  In that list, a word with a ``/`` or ending in ``.config``
is a file of the project's (relative to its root); any other word names one of
kguest's fragments (:func:`names`).

A fragment is a list of kconfig lines, ``CONFIG_FOO=y``, ``CONFIG_BAR="text"``,
``# CONFIG_BAZ is not set`` (or ``CONFIG_BAZ=n``).  Other comments and blank lines
are ignored, except two of kguest's own:

* ``# kguest: optional: WHY`` right before an option: a kernel that cannot have it
  (an older version, another architecture) is built without it and says so,
  instead of failing;
* ``# kguest: slowdown: X``: tests run X times slower with the fragment (measured
  under TCG); a kernel's test timeouts are multiplied by the product of its
  fragments' slowdowns.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path

from .errors import ConfigError

PACKAGE_DIR = "data/kconfig"
BASE = "base"  # applied first to every kernel built from source
_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_OPTIONAL = re.compile(r"^# kguest: optional(?::\s*(.*))?$")
_SLOWDOWN = re.compile(r"^# kguest: slowdown:\s*([0-9.]+)\s*$")


@dataclasses.dataclass(frozen=True)
class Fragment:
    """One fragment: where it came from and the options it sets, in order."""

    name: str  # "kasan", or the project-relative path of a file
    text: str
    options: tuple[tuple[str, str], ...]  # (CONFIG_FOO, value); "n" for "is not set"
    optional: tuple[tuple[str, str], ...] = ()  # (CONFIG_FOO, why) a kernel may lack
    slowdown: float = 1.0  # how many times slower tests run with it

    def wanted(self) -> dict[str, str]:
        return dict(self.options)


def is_file_name(word: str) -> bool:
    """A ``config`` word naming a project file rather than one of kguest's fragments."""
    return "/" in word or word.endswith(".config")


def parse(text: str, name: str) -> Fragment:
    """The options of a fragment; a line that is not kconfig is an error naming it."""
    opts: list[tuple[str, str]] = []
    optional: list[tuple[str, str]] = []
    why: str | None = None
    slowdown = 1.0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = _LINE.match(line) or _UNSET.match(line)
        if m:
            value = m.group(2) if m.re is _LINE else "n"
            opts.append((m.group(1), value))
            if why is not None:
                optional.append((m.group(1), why))
            why = None
            continue
        m = _OPTIONAL.match(line)
        if m:
            why = m.group(1) or ""
            continue
        m = _SLOWDOWN.match(line)
        if m:
            try:
                slowdown = float(m.group(1))
            except ValueError:
                raise ConfigError(f"kernel config fragment {name}:{n}: bad slowdown {line!r}",
                                  "e.g. # kguest: slowdown: 1.5") from None
            continue
        if line and not line.startswith("#"):
            raise ConfigError(
                f"kernel config fragment {name}:{n}: {line!r} is not a kconfig line",
                'write CONFIG_FOO=y, CONFIG_FOO="text" or # CONFIG_FOO is not set',
            )
    return Fragment(name, text, tuple(opts), tuple(optional), slowdown)


def names() -> list[str]:
    """kguest's named fragments (``base`` is applied to every source kernel)."""
    d = resources.files("kguest").joinpath(PACKAGE_DIR)
    return sorted(
        p.name.removesuffix(".config")
        for p in d.iterdir()
        if p.name.endswith(".config") and p.name != f"{BASE}.config"
    )


def named(name: str) -> Fragment:
    """One of kguest's fragments by name."""
    if name != BASE and name not in names():
        raise ConfigError(
            f"unknown kernel config fragment {name!r}",
            f"use one of {', '.join(names())}, or a file of the project's "
            '(a path with a "/" or ending in .config)',
        )
    text = resources.files("kguest").joinpath(f"{PACKAGE_DIR}/{name}.config").read_text()
    return parse(text, name)


def project_file(root: Path, rel: str) -> Fragment:
    """A fragment file of the project's, relative to its root."""
    p = root / rel
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(
            f"kernel config fragment {rel!r} cannot be read ({p}: {e.strerror})",
            "fix the path in config = [...] (relative to the project root)",
        ) from e
    return parse(text, rel)


def load(root: Path, words: tuple[str, ...]) -> tuple[Fragment, ...]:
    """``base`` and then the fragments ``words`` name, in order."""
    return (named(BASE), *(project_file(root, w) if is_file_name(w) else named(w) for w in words))
