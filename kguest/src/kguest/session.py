"""Provisioning (kernel -> build -> image -> accelerator -> GuestSpec) and a per-process pool of
booted guests.  One Provisioner and one GuestPool live per pytest process (xdist worker)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import accel as accel_mod
from . import build, image, kernels
from .backends import GuestSpec
from .config import BACKENDS, ProjectConfig, ensure_build_dir, module_params
from .errors import ConfigError
from .guest import Guest
from .kernels import Kernel
from .progress import Say, quiet
from .snapshot import SnapshotStore


@dataclasses.dataclass(frozen=True)
class Options:
    """Choices from the command line (CLI or pytest options); None means "from config"."""

    backend: str | None = None
    kernel: str | None = None  # a registry name or a vmlinuz path
    kdir: str | None = None
    accel: str = "auto"
    memory_mib: int | None = None
    cpus: int | None = None
    build: bool = True
    modules: bool = True
    qemu: str = "qemu-system-x86_64"
    module_params: tuple[tuple[str, tuple[str, ...]], ...] = ()  # after the config's
    cmdline: tuple[str, ...] = ()  # extra kernel command-line words, after the config's
    snapshots: bool = True  # restore guests from a saved snapshot where possible


def parse_module_params(words: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``["hello.warn=1", ...]`` (--module-param) -> ``(("hello", ("warn=1",)), ...)``."""
    table: dict[str, list[str]] = {}
    for w in words:
        mod, dot, param = w.partition(".")
        if not dot or "=" not in param:
            raise ConfigError(
                f"--module-param {w!r} is not MODULE.NAME=VALUE",
                "e.g. --module-param hello.debug=1",
            )
        table.setdefault(mod, []).append(param)
    return module_params(table, "--module-param")


def kernel_words(cfg: ProjectConfig, opts: Options) -> tuple[str, ...]:
    """Extra guest kernel command-line words: the config's, the options', and module
    parameters as ``MODULE.NAME=VALUE`` (read back by the guest's module loading)."""
    words = [*cfg.cmdline, *opts.cmdline]
    for mod, params in (*cfg.module_params, *opts.module_params):
        words += [f"{mod}.{p}" for p in params]
    return tuple(words)


class Provisioner:
    def __init__(
        self,
        cfg: ProjectConfig,
        opts: Options,
        say: Say = quiet,
        session: str = "",
        worker: str = "main",
    ) -> None:
        self.cfg = cfg
        self.opts = opts
        self.say = say
        self.session = session
        self.worker = worker
        self._kernels: dict[str, Kernel] = {}
        self._specs: dict[tuple[str, str], GuestSpec] = {}
        self._accel: str | None = None
        ensure_build_dir(cfg)
        prune_logs(cfg.build_path / "logs" / worker)
        self.snapshots = (
            SnapshotStore(cfg.build_path / "snapshots", say) if opts.snapshots else None
        )

    def kernel(self, name: str = "default") -> Kernel:
        if name not in self._kernels:
            if name == "default":
                k = kernels.select(
                    self.cfg, self.say, self.cfg.kernel, self.opts.kernel, self.opts.kdir
                )
            else:
                k = kernels.select(self.cfg, self.say, name)
            self._kernels[name] = k
        return self._kernels[name]

    def accel(self, kernel: Kernel) -> str:
        if self._accel is None:
            self._accel = accel_mod.choose(
                self.opts.accel,
                self.opts.qemu,
                kernel.vmlinuz,
                lambda: image.build_probe_initramfs(self.cfg, self.say),
                self.cfg.accel_probe_timeout,
                self.say,
            )
        return self._accel

    def spec(self, backend: str | None = None, kernel_name: str = "default") -> GuestSpec:
        backend = backend or self.opts.backend or self.cfg.backend
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r} is not known", f"use one of {BACKENDS}")
        key = (backend, kernel_name)
        if key in self._specs:
            return self._specs[key]
        k = self.kernel(kernel_name)
        if self.opts.build:
            build.run_build(self.cfg, k, self.say, self.session)
            mods = (
                build.built_modules(self.cfg, k)
                if self.cfg.build_command
                else self.cfg.module_paths()
            )
        else:
            mods = self.cfg.module_paths()
        content = image.content_for(self.cfg, k, mods if self.opts.modules else [])
        initrd = (
            image.build_initramfs(self.cfg, content, self.say) if backend == "initramfs" else None
        )
        spec = GuestSpec(
            backend=backend,
            kernel=k,
            memory_mib=self.opts.memory_mib or self.cfg.memory_mib,
            cpus=self.opts.cpus or self.cfg.cpus,
            accel=self.accel(k),
            initrd=initrd,
            modules=content.modules,
            bin_dirs=tuple(h for h, _ in content.bin_dirs if h.is_dir()),
            qemu=self.opts.qemu,
            workdir=self.cfg.root,
            append=kernel_words(self.cfg, self.opts),
        )
        self._specs[key] = spec
        return spec

    def log_path(self, spec: GuestSpec, n: int) -> Path:
        d = self.cfg.build_path / "logs" / self.worker
        return d / f"console-{spec.backend}-{spec.kernel.name}-{os.getpid()}-{n}.log"


def prune_logs(d: Path, keep: int = 20) -> None:
    """Keep the newest ``keep`` console logs of a worker directory."""
    if not d.is_dir():
        return
    logs = sorted(d.glob("console-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in logs[keep:]:
        p.unlink(missing_ok=True)


class GuestPool:
    """Booted guests of this process, by spec; at most ``max_running`` at once."""

    def __init__(self, prov: Provisioner, max_running: int = 1) -> None:
        self.prov = prov
        self.max_running = max_running
        self._guests: dict[GuestSpec, Guest] = {}
        self._n = 0
        self.restarts = 0

    @property
    def started(self) -> int:
        """How many guests this pool has started (booted or restored)."""
        return self._n

    def get(self, spec: GuestSpec) -> Guest:
        g = self._guests.get(spec)
        if g is not None and g.alive:
            return g
        if g is not None:
            self.restarts += 1
            g.close()
            del self._guests[spec]
        while len(self._guests) >= self.max_running:
            _, old = self._guests.popitem()
            old.close()
        self._n += 1
        cfg = self.prov.cfg
        g = Guest(
            spec,
            self.prov.log_path(spec, self._n),
            self.prov.say,
            boot_timeout=cfg.boot_timeout,
            max_output=cfg.max_output_bytes,
            allowed_taint=cfg.allowed_taint,
            snapshots=self.prov.snapshots,
        )
        g.boot()
        self._guests[spec] = g
        return g

    def fresh(self, spec: GuestSpec) -> Guest:
        """A guest that has run no test since it started (restored or booted for it)."""
        g = self._guests.get(spec)
        if g is not None and g.alive and g.tests_run > 0:
            self.discard(g)
        return self.get(spec)

    def discard(self, guest: Guest) -> None:
        """Throw a guest away (after a death or kernel trouble); the next get() reboots."""
        guest.kill()

    def close(self) -> None:
        for g in self._guests.values():
            g.close()
        self._guests.clear()
