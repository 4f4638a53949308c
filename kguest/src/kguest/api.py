"""The small Python API: ``kguest.boot(...)`` gives a booted :class:`Guest`."""

from __future__ import annotations

from pathlib import Path

from . import config
from .guest import Guest
from .options import Options
from .progress import Say, to_stderr
from .provision import Provisioner


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
    """Provision (build, image) and start one guest of the project at ``root`` (default:
    the nearest directory with a [tool.kguest] table): restored from its snapshot when
    there is one (``snapshots=False`` boots).  ``cmdline``: extra guest kernel
    command-line words after the config's; ``log``: where the console log goes
    (default: the build directory's logs/api/).  Use as a context manager or call
    close()."""
    prov = Provisioner(
        config.load(root),
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
    return prov.new_guest(prov.spec(), log=log).boot()
