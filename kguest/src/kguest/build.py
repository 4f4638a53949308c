"""Build the project (module, library, static test binaries) once per session, under a lock."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .config import ProjectConfig
from .errors import BuildError
from .files import atomic_write, file_lock
from .kernels import Kernel
from .progress import Say, step


def build_command(cfg: ProjectConfig, kernel: Kernel) -> list[str]:
    return [*kernel.build_prefix, *cfg.build_command, f"KDIR={kernel.kdir}"]


def snapshot_dir(cfg: ProjectConfig, kernel: Kernel) -> Path:
    return cfg.build_path / "modules" / kernel.version


def _snapshot(cfg: ProjectConfig, kernel: Kernel) -> None:
    """Copy the freshly built modules aside: a build for another kernel rewrites the tree's."""
    d = snapshot_dir(cfg, kernel)
    d.mkdir(parents=True, exist_ok=True)
    for rel, m in zip(cfg.modules, cfg.module_paths(), strict=True):
        if not m.is_file():
            # name the path the user wrote, not kguest's copy of it
            raise BuildError(
                f"{cfg.source}: modules: {rel!r} does not exist after the build ({m})",
                "fix the path in modules = [...] (relative to the project root), "
                "or make build_command produce it",
            )
        atomic_write(d / m.name, m.read_bytes())


def built_modules(cfg: ProjectConfig, kernel: Kernel) -> list[Path]:
    """The modules built for ``kernel`` in this session (see run_build)."""
    d = snapshot_dir(cfg, kernel)
    return [d / m.name for m in cfg.module_paths()]


def run_build(cfg: ProjectConfig, kernel: Kernel, say: Say, session: str = "") -> Path:
    """Run the incremental build; return the log path.

    ``session`` identifies one test run (all xdist workers share it): the first
    process to take the lock builds, the others find the stamp and return.
    Without a session id the build always runs (it is incremental anyway).
    """
    out = cfg.build_path
    log = out / "logs" / f"build-{kernel.name}.log"
    stamp = out / f"build-{kernel.name}.stamp"
    if not cfg.build_command:
        return log
    with file_lock(out / "build.lock"):
        if session and stamp.is_file() and stamp.read_text() == session:
            return log
        cmd = build_command(cfg, kernel)
        log.parent.mkdir(parents=True, exist_ok=True)
        with step(say, f"building: {' '.join(cmd)} (log: {log})"), log.open("w") as f:
            f.write(f"$ {' '.join(cmd)}   # in {cfg.root}, {time.ctime()}\n")
            f.flush()
            try:
                rc = subprocess.call(
                    cmd,
                    cwd=cfg.root,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env={**os.environ, "KDIR": str(kernel.kdir)},
                )
            except OSError as e:
                raise BuildError(
                    f"cannot run {cmd[0]}: {e}", "install it or fix build_command"
                ) from e
            if rc != 0:
                text = log.read_text(errors="replace")
                tail = "\n".join(text.splitlines()[-60:])
                raise BuildError(
                    f"build failed (exit {rc}): {' '.join(cmd)}\n"
                    f"--- last lines of {log} ---\n{tail}",
                    f"fix the build error above; rerun `{' '.join(cmd)}` by hand to iterate",
                    log=text,
                )
        _snapshot(cfg, kernel)
        if session:
            atomic_write(stamp, session.encode())
    return log
