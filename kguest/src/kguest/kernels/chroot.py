"""Run a command inside a build chroot: ``python -m kguest.kernels.chrootrun ROOT
[--bind DIR]... -- CMD...`` (the runner is :mod:`.chrootrun`; this module makes its
command lines).

This is the build prefix of a kernel whose headers need another distribution's
toolchain.  The command runs in a private mount namespace (``unshare``) with /dev
and /proc mounted in the chroot, each ``--bind`` directory and the current
directory bound at the same path, and the environment reset; nothing stays
mounted when it ends, and no other process ever sees the mounts.  It runs in
the current directory.  Exit status: the command's (125 when it cannot start).
"""

from __future__ import annotations

import sys
from pathlib import Path

RUNNER = "kguest.kernels.chrootrun"
SCRIPT = r"""
set -e
root=$1 cwd=$2 n=$3
shift 3
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
i=0
while [ "$i" -lt "$n" ]; do
    mkdir -p "$root$1"
    mount --bind "$1" "$root$1"
    shift
    i=$((i + 1))
done
exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 TERM=dumb /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
"""


def argv(root: Path, binds: list[Path], cwd: Path, command: list[str]) -> list[str]:
    """The ``unshare`` command line that runs ``command`` in ``root``."""
    dirs = list(dict.fromkeys(str(b.resolve()) for b in [*binds, cwd]))
    return [
        "unshare", "--mount", "--propagation", "private", "--",
        "/bin/sh", "-c", SCRIPT, "kguest-chroot", str(root), str(cwd.resolve()), str(len(dirs)),
        *dirs, *command,
    ]


def prefix(root: Path, binds: list[Path]) -> tuple[str, ...]:
    """A build prefix that runs a command in ``root`` (binding ``binds`` and the cwd)."""
    out = [sys.executable, "-m", RUNNER, str(root)]
    for b in binds:
        out += ["--bind", str(b)]
    return (*out, "--")


def stable(command: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``command`` without the interpreter that runs the chroot runner (one build
    prefix, whichever python of the environment resolved the kernel)."""
    c = tuple(command)
    if c[1:3] == ("-m", RUNNER):
        return ("python", *c[1:])
    return c
