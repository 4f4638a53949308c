"""What a run asks for on the command line (the ``kguest`` command's flags or the
pytest plugin's options, see flags.py), as one value; None means "from the config"."""

from __future__ import annotations

import dataclasses

from .config import ProjectConfig, module_params
from .errors import ConfigError

ModuleParams = tuple[tuple[str, tuple[str, ...]], ...]  # (module, ("name=value", ...)), ...


@dataclasses.dataclass(frozen=True)
class Options:
    backend: str | None = None
    kernel: str | None = None  # a registry name or a vmlinuz path
    kdir: str | None = None
    accel: str = "auto"
    memory_mib: int | None = None
    cpus: int | None = None
    build: bool = True
    modules: bool = True
    qemu: str = "qemu-system-x86_64"
    module_params: ModuleParams = ()  # after the config's
    cmdline: tuple[str, ...] = ()  # extra kernel command-line words, after the config's
    snapshots: bool = True  # restore guests from a saved snapshot where possible
    coverage: bool = False  # the project's modules built with gcov profiling (coverage.py)
    fault_sweep: bool = False  # the fault-injection helper module loaded too (faultsweep.py)


def parse_module_params(words: list[str], where: str = "--module-param") -> ModuleParams:
    """``["hello.warn=1", ...]`` -> ``(("hello", ("warn=1",)), ...)``."""
    table: dict[str, list[str]] = {}
    for w in words:
        mod, dot, param = w.partition(".")
        if not dot or "=" not in param:
            raise ConfigError(
                f"{where} {w!r} is not MODULE.NAME=VALUE",
                "e.g. --module-param hello.debug=1",
            )
        table.setdefault(mod, []).append(param)
    return module_params(table, where)


def param_words(params: ModuleParams) -> tuple[str, ...]:
    """Module parameters as ``MODULE.NAME=VALUE`` kernel command-line words (modprobe
    reads them there, for modules loaded at boot and later alike)."""
    return tuple(f"{mod}.{p}" for mod, ps in params for p in ps)


def kernel_words(cfg: ProjectConfig, opts: Options) -> tuple[str, ...]:
    """The run's extra guest kernel command-line words: the config's and the options'
    words, then the config's and the options' module parameters."""
    return (
        *cfg.cmdline,
        *opts.cmdline,
        *param_words(cfg.module_params),
        *param_words(opts.module_params),
    )
