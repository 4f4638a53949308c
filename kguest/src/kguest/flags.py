"""The guest options, one table for the ``kguest`` command and the pytest plugin.

Both front ends take the same choices (backend, kernel, accelerator, guest
size, build and boot switches) and turn them into one :class:`Options`.
The plugin spells two of them with a ``--guest-`` prefix, since a bare
``--memory`` or ``--cpus`` in pytest's option space could clash with
another plugin; the destination names are the same in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import ACCELS, BACKEND_NAMES
from .options import Options, parse_module_params


@dataclass(frozen=True)
class Flag:
    cli: str  # the kguest command's spelling
    help: str
    plugin: str = ""  # pytest's, when it differs
    kwargs: dict[str, Any] = field(default_factory=dict)


def _switch(cli: str, help: str) -> Flag:
    return Flag(cli, help, kwargs={"action": "store_true"})


def _words(cli: str, metavar: str, help: str) -> Flag:
    return Flag(cli, help, kwargs={"action": "append", "default": [], "metavar": metavar})


GUEST_FLAGS: tuple[Flag, ...] = (
    Flag("--vm-backend", "initramfs or vng (default: config)", kwargs={"choices": BACKEND_NAMES}),
    Flag("--kernel", "kernel: registry name (default, 6.12, ...) or a vmlinuz path"),
    Flag("--kdir", "kernel headers/build dir matching --kernel"),
    Flag(
        "--accel",
        "auto: KVM only if a bounded probe boot works, else TCG",
        kwargs={"choices": ACCELS, "default": "auto"},
    ),
    Flag("--memory", "guest MiB (default 2048)", "--guest-memory", {"type": int, "metavar": "MIB"}),
    Flag("--cpus", "guest vCPUs (default 2)", "--guest-cpus", {"type": int, "metavar": "N"}),
    _words(
        "--module-param",
        "MODULE.NAME=VALUE",
        "a module parameter at load time (repeatable; adds to [tool.kguest.module_params])",
    ),
    _words(
        "--kernel-cmdline",
        "WORDS",
        "extra guest kernel command-line words (repeatable; after the config's)",
    ),
    _switch("--no-build", "do not run the project build"),
    _switch("--no-modules", "boot without the project's modules"),
    Flag("--qemu", "QEMU binary", kwargs={"default": "qemu-system-x86_64"}),
    _switch("--no-snapshots", "boot every guest instead of restoring a snapshot of a ready one"),
    Flag(
        "--coverage",
        "line and branch coverage of the project's modules (a kernel with "
        "CONFIG_GCOV_KERNEL): lcov tracefile, HTML and Cobertura XML in "
        "<build_dir>/coverage/, a per-file summary at the end",
        "--kguest-coverage",
        {"action": "store_true"},
    ),
)


def add_guest_flags(add: Callable[..., Any], plugin: bool) -> None:
    """Register the table with ``add`` (argparse's ``add_argument`` or pytest's ``addoption``)."""
    for f in GUEST_FLAGS:
        dest = (f.plugin or f.cli).removeprefix("--").replace("-", "_")
        add(f.plugin if plugin and f.plugin else f.cli, dest=dest, help=f.help, **f.kwargs)


def options_from(ns: Any) -> Options:
    """The :class:`Options` of a parsed namespace (argparse's, or pytest's ``config.option``)."""
    return Options(
        backend=ns.vm_backend,
        kernel=ns.kernel,
        kdir=ns.kdir,
        accel=ns.accel,
        memory_mib=ns.guest_memory,
        cpus=ns.guest_cpus,
        build=not ns.no_build,
        modules=not ns.no_modules,
        qemu=ns.qemu,
        module_params=parse_module_params(ns.module_param),
        cmdline=tuple(w for words in ns.kernel_cmdline for w in words.split()),
        snapshots=not ns.no_snapshots,
        coverage=ns.kguest_coverage,
        fault_sweep=bool(getattr(ns, "kguest_fault_sweep", False)),
    )
