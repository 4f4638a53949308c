"""The small Python API: ``kguest.boot(...)`` gives a booted :class:`Guest`."""

from __future__ import annotations

from pathlib import Path

from . import config
from .guest import Guest
from .progress import Say, to_stderr
from .session import Options, Provisioner


def boot(
    backend: str | None = None,
    kernel: str | None = None,
    memory_mib: int | None = None,
    cpus: int | None = None,
    accel: str = "auto",
    build: bool = True,
    modules: bool = True,
    root: Path | None = None,
    say: Say = to_stderr,
    log: Path | None = None,
    snapshots: bool = True,
    cmdline: tuple[str, ...] = (),
) -> Guest:
    """Provision (build, image) and boot one guest (restored from its snapshot when
    there is one; ``snapshots=False`` boots); ``cmdline``: extra guest kernel command-line
    words after the config's.  Use as a context manager or call close()."""
    cfg = config.load(root)
    prov = Provisioner(
        cfg,
        Options(
            backend=backend,
            kernel=kernel,
            accel=accel,
            memory_mib=memory_mib,
            cpus=cpus,
            build=build,
            modules=modules,
            snapshots=snapshots,
            cmdline=tuple(cmdline),
        ),
        say,
        worker="api",
    )
    spec = prov.spec()
    g = Guest(
        spec,
        log or prov.log_path(spec, 0),
        say,
        boot_timeout=cfg.boot_timeout,
        max_output=cfg.max_output_bytes,
        allowed_taint=cfg.allowed_taint,
        snapshots=prov.snapshots,
    )
    return g.boot()
