"""What a guest kernel was built with: its ``.config``, read from its build directory,
and the one-line error when a feature kguest needs is missing."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigError
from .kernels import Kernel


@functools.cache
def _read(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value.strip('"')
    return out


def options(kernel: Kernel) -> dict[str, str]:
    """``CONFIG_NAME -> value`` (``y``, ``m``, a number or a string) of ``kernel``."""
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
