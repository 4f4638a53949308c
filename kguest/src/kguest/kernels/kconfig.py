"""A kernel's configuration: apply config fragments to a ``.config`` and check what
survived; read what a kernel was built with, and the one-line error when a feature
kguest needs is missing.

``merge`` writes the fragments' lines over a ``.config`` (a later line for the same
option wins); after ``make olddefconfig`` (which drops an option whose dependencies
are missing, silently), ``dropped`` lists every requested option whose value did
not survive, with the fragment that asked for it and, from the tree's Kconfig
files, what it depends on.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..fragments import Fragment

if TYPE_CHECKING:
    from .kernel import Kernel

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """``.config`` text -> {CONFIG_FOO: value}; "is not set" reads as ``n``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _SET.match(line)
        if m:
            out[m.group(1)] = m.group(2)
            continue
        m = _UNSET.match(line)
        if m:
            out[m.group(1)] = "n"
    return out


def _line(sym: str, value: str) -> str:
    return f"# {sym} is not set" if value == "n" else f"{sym}={value}"


@dataclasses.dataclass(frozen=True)
class Request:
    """What the fragments ask of one option (the last fragment's line wins)."""

    value: str
    fragment: str
    optional: str | None = None  # why a kernel may lack it; None: it must have it


def requested(fragments: tuple[Fragment, ...]) -> dict[str, Request]:
    """{CONFIG_FOO: Request}, the last fragment's line winning."""
    out: dict[str, Request] = {}
    for f in fragments:
        why = dict(f.optional)
        for sym, value in f.options:
            out[sym] = Request(value, f.name, why.get(sym))
    return out


def merge(config_text: str, fragments: tuple[Fragment, ...]) -> str:
    """``config_text`` with every option of ``fragments`` set as they say."""
    want = requested(fragments)
    kept = []
    for line in config_text.splitlines():
        m = _SET.match(line) or _UNSET.match(line)
        if m and m.group(1) in want:
            continue
        kept.append(line)
    kept += [_line(sym, r.value) for sym, r in want.items()]
    return "\n".join(kept) + "\n"


def _same(want: str, got: str | None) -> bool:
    if want == "n":
        return got in (None, "n")
    if got is None:
        return False
    if want.lower().startswith("0x") and got.lower().startswith("0x"):
        try:
            return int(want, 16) == int(got, 16)
        except ValueError:
            return False
    return want == got


@dataclasses.dataclass(frozen=True)
class Dropped:
    """A requested option that ``olddefconfig`` did not keep."""

    symbol: str
    wanted: str
    got: str | None
    fragment: str
    depends: str = ""  # from the tree's Kconfig, "" when unknown
    known: bool = True  # False: no Kconfig file of the tree declares it
    optional: str | None = None  # the fragment's reason a kernel may lack it

    def describe(self) -> str:
        what = f"{_line(self.symbol, self.wanted)} (fragment {self.fragment!r})"
        if not self.known:
            return f"{what}: not an option of this kernel"
        got = "unset" if self.got in (None, "n") else self.got
        dep = f"; it depends on: {self.depends}" if self.depends else ""
        return f"{what} did not survive olddefconfig (got {got}){dep}"


def dropped(
    config_text: str, fragments: tuple[Fragment, ...], srctree: Path | None = None
) -> list[Dropped]:
    """Options of ``fragments`` whose value the final ``.config`` does not have."""
    have = parse_config(config_text)
    out = []
    for sym, r in requested(fragments).items():
        if _same(r.value, have.get(sym)):
            continue
        known, depends = (True, "")
        if srctree is not None and r.optional is None:
            known, depends = symbol_info(srctree, sym.removeprefix("CONFIG_"))
        out.append(Dropped(sym, r.value, have.get(sym), r.fragment, depends, known, r.optional))
    return out


def symbol_info(srctree: Path, name: str) -> tuple[bool, str]:
    """Whether a Kconfig file of ``srctree`` declares ``name``, and its ``depends on``."""
    decl = re.compile(rf"^\s*(?:menu)?config\s+{re.escape(name)}\s*$")
    found = False
    deps: list[str] = []
    for d, dirs, files in os.walk(srctree):
        dirs[:] = [x for x in dirs if not x.startswith(".") and x not in ("Documentation",)]
        for f in files:
            if not f.startswith("Kconfig"):
                continue
            try:
                text = (Path(d) / f).read_text(errors="replace")
            except OSError:
                continue
            lines = text.replace("\\\n", " ").splitlines()
            for i, line in enumerate(lines):
                if not decl.match(line):
                    continue
                found = True
                for nxt in lines[i + 1 :]:
                    s = nxt.strip()
                    if re.match(r"^(?:menu)?config\s|^(?:choice|endchoice|menu|endmenu|if|endif|"
                                r"source|comment)\b", s):
                        break
                    if s.startswith("depends on"):
                        deps.append(" ".join(s.removeprefix("depends on").split()))
    return found, " && ".join(f"({d})" if "||" in d else d for d in deps)


# --- what a kernel was built with ------------------------------------------------


@functools.cache
def _read(path: Path) -> dict[str, str]:
    try:
        return parse_config(path.read_text(errors="replace"))
    except OSError:
        return {}


def options(kernel: Kernel) -> dict[str, str]:
    """``CONFIG_NAME -> value`` of ``kernel``, from its build directory."""
    for rel in (".config", "include/config/auto.conf"):
        found = _read(kernel.kdir / rel)
        if found:
            return found
    return {}


def enabled(kernel: Kernel, name: str) -> bool:
    """Whether ``CONFIG_<name>`` is ``y`` or ``m`` in ``kernel``."""
    return options(kernel).get(f"CONFIG_{name}") in ("y", "m")


def require(kernel: Kernel, names: Sequence[str], what: str, hint: str) -> None:
    """A ConfigError (one line and a hint) naming ``kernel`` and the options it lacks."""
    have = options(kernel)
    if not have:
        raise ConfigError(
            f"{what}: cannot read the configuration of kernel {kernel.name} "
            f"({kernel.version}): no .config in {kernel.kdir}",
            hint,
        )
    missing = [n for n in names if have.get(f"CONFIG_{n}") not in ("y", "m")]
    if missing:
        raise ConfigError(
            f"{what} needs a kernel with {', '.join('CONFIG_' + n for n in missing)}; "
            f"kernel {kernel.name} ({kernel.version}) has not",
            hint,
        )
