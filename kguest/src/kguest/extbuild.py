"""Build one module directory as an external module of a kernel, in a mirror of its own,
with extra make variables (``GCOV_PROFILE=y`` for coverage), leaving the project's
tree alone.

The mirror holds a copy of the directory's sources (build products left out), so
that a profiled build, a build for another kernel and the project's own build never
overwrite each other's objects.  Copies keep their modification times, so make
rebuilds only what changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from .errors import BuildError
from .files import atomic_write, file_lock
from .kernels import Kernel
from .progress import Say, step

# kbuild's outputs: never copied into a mirror (nor removed from it)
_PRODUCTS = (".o", ".ko", ".mod", ".mod.c", ".cmd", ".gcno", ".gcda", ".symvers", ".order", ".a")


def _is_product(name: str) -> bool:
    return name.endswith(_PRODUCTS) or name.startswith(".tmp") or name == "Module.symvers"


def mirror_sources(src: Path, mirror: Path) -> None:
    """Copy ``src``'s files (not its build products) into ``mirror``; files gone from
    ``src`` are removed from ``mirror``."""
    wanted: set[Path] = set()
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(src)
        for name in filenames:
            if _is_product(name):
                continue
            s, d = Path(dirpath) / name, mirror / rel / name
            wanted.add(d)
            st = s.stat()
            try:
                dst = d.stat()
                same = dst.st_size == st.st_size and dst.st_mtime_ns == st.st_mtime_ns
            except OSError:
                same = False
            if not same:
                d.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(s, d)
    for dirpath, _, filenames in os.walk(mirror):
        for name in filenames:
            p = Path(dirpath) / name
            if not _is_product(name) and p not in wanted:
                p.unlink()


def build_external(
    src: Path,
    mirror: Path,
    kernel: Kernel,
    make_vars: Mapping[str, str],
    log: Path,
    say: Say,
    session: str = "",
) -> list[Path]:
    """Build the module directory ``src`` (it has a Kbuild or a Makefile for kbuild)
    against ``kernel`` in ``mirror``, with ``make_vars`` on make's command line;
    return the modules built (``modules.order``).  Once per ``session`` and mirror,
    under a lock: other processes of the same session find it built."""
    stamp = mirror / ".kguest-built"
    with file_lock(mirror.parent / f".{mirror.name}.lock"):
        if not (session and stamp.is_file() and stamp.read_text() == session):
            mirror_sources(src, mirror)
            cmd = [
                *kernel.build_prefix,
                "make",
                "-C",
                str(kernel.kdir),
                f"M={mirror}",
                *(f"{k}={v}" for k, v in make_vars.items()),
                "modules",
            ]
            log.parent.mkdir(parents=True, exist_ok=True)
            what = f"building {src.name} for {kernel.name} (log: {log})"
            with step(say, what), log.open("w") as f:
                f.write(f"$ {' '.join(cmd)}   # {time.ctime()}\n")
                f.flush()
                try:
                    rc = subprocess.call(
                        cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                    )
                except OSError as e:
                    raise BuildError(f"cannot run make: {e}", "install build-essential") from e
            if rc != 0:
                text = log.read_text(errors="replace")
                raise BuildError(
                    f"building {src} against {kernel.kdir} failed (exit {rc})\n"
                    + "\n".join(text.splitlines()[-40:]),
                    f"rerun by hand: {' '.join(cmd)}",
                    log=text,
                )
            if session:
                atomic_write(stamp, session.encode())
    order = mirror / "modules.order"
    names = order.read_text().split() if order.is_file() else []
    return [(p if p.is_absolute() else mirror / p).with_suffix(".ko") for p in map(Path, names)]
