"""``python -m kguest.kernels.chrootrun ROOT [--bind DIR]... -- CMD...``: run CMD in
the build chroot ROOT (see :mod:`.chroot`).  Exit status: CMD's, 125 when it cannot
start.  Kept apart from the package's other modules so that ``-m`` runs it fresh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .chroot import argv


def parse(args: list[str]) -> tuple[Path, list[Path], list[str]]:
    """``ROOT [--bind DIR]... -- CMD...`` -> (root, binds, command)."""
    if not args:
        raise ValueError("no chroot given")
    root, rest = Path(args[0]), args[1:]
    binds: list[Path] = []
    while rest and rest[0] == "--bind":
        if len(rest) < 2:
            raise ValueError("--bind needs a directory")
        binds.append(Path(rest[1]))
        rest = rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if not rest:
        raise ValueError("no command given")
    return root, binds, rest


def main(args: list[str] | None = None) -> int:
    try:
        root, binds, cmd = parse(sys.argv[1:] if args is None else args)
    except ValueError as e:
        print(f"kguest-chroot: error: {e} (usage: ROOT [--bind DIR]... -- CMD...)",
              file=sys.stderr)
        return 125
    if not (root / "usr/bin/env").exists():
        print(f"kguest-chroot: error: {root} is not a build chroot", file=sys.stderr)
        return 125
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("kguest-chroot: error: building in a chroot needs root and unshare "
              "(util-linux)", file=sys.stderr)
        return 125
    return subprocess.call(argv(root, binds, Path.cwd(), cmd))


if __name__ == "__main__":
    sys.exit(main())
