"""Provisioning: configuration and options -> kernel -> build -> image -> accelerator ->
:class:`GuestSpec`, and the one place that turns a spec into a :class:`Guest`.

One Provisioner lives per process (an xdist worker, the ``kguest`` command, a
``kguest.boot()`` call).  Everything it makes is cached for the process: the
build runs once per session, the image once per content.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

from . import accel as accel_mod
from . import backends, build, coverage, faultsweep, image, kernels
from .backends import Backend, GuestSpec
from .cache import Cache
from .config import ProjectConfig, ensure_build_dir
from .errors import ConfigError, ImageError
from .guest import Guest
from .image import ImageContent
from .kernels import Kernel
from .options import ModuleParams, Options, kernel_words, param_words
from .progress import Say, quiet
from .snapshot import SnapshotStore


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
        self._specs: dict[tuple[Backend, str], tuple[GuestSpec, ImageContent]] = {}
        self._params: dict[Path, dict[str, str]] = {}
        self._accel: str | None = None
        self._guests = 0
        ensure_build_dir(cfg)
        prune_logs(cfg.build_path / "logs" / worker)
        self.snapshots = (
            SnapshotStore(Cache.default().path("snapshots"), say) if opts.snapshots else None
        )

    def backend(self, name: str | None = None) -> Backend:
        return backends.get(name or self.opts.backend or self.cfg.backend)

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

    def spec(
        self,
        backend: str | None = None,
        kernel_name: str = "default",
        params: ModuleParams = (),
        cmdline: tuple[str, ...] = (),
        where: str = "",
    ) -> GuestSpec:
        """The guest for ``backend`` and ``kernel_name`` (None, "default": the run's),
        with ``params`` (module parameters) and ``cmdline`` (kernel command-line words)
        beyond the run's own; ``where`` names their source in errors."""
        spec, content = self._base(self.backend(backend), kernel_name)
        if not params and not cmdline:
            return spec
        self._check_params(params, content, where)
        return dataclasses.replace(spec, append=(*spec.append, *cmdline, *param_words(params)))

    def _base(self, backend: Backend, kernel_name: str) -> tuple[GuestSpec, ImageContent]:
        key = (backend, kernel_name)
        if key in self._specs:
            return self._specs[key]
        k = self.kernel(kernel_name)
        if self.opts.fault_sweep:
            faultsweep.check_kernel(k)
        if self.opts.coverage:
            coverage.check_kernel(k)
        mods = build.module_paths(self.cfg, k, self.say, self.session, build=self.opts.build)
        kunit_kernels = self.cfg.kunit.kernels
        wanted = (kernel_name in kunit_kernels or k.name in kunit_kernels) and self.opts.modules
        tests = build.companion_paths(self.cfg, k, self.cfg.kunit.modules) if wanted else []
        if self.opts.coverage and self.opts.modules:
            built = coverage.build_profiled(self.cfg, k, self.say, self.session)
            mods = coverage.profiled_modules(self.cfg, built)
            by_name = {p.name: p for p in built}
            tests = [by_name.get(t.name, t) for t in tests]
        if self.opts.fault_sweep and self.opts.modules:
            mods = [*mods, faultsweep.build_helper(self.cfg, k, self.say, self.session)]
        content = image.content_for(
            self.cfg, k, mods if self.opts.modules else [], tuple(tests)
        )
        if self.opts.modules:
            self._check_params(self.cfg.module_params, content, self.cfg.source)
            self._check_params(self.opts.module_params, content, "--module-param")
        initrd = image.build_initramfs(self.cfg, content, self.say) if backend.needs_image else None
        spec = GuestSpec(
            backend=backend,
            kernel=k,
            memory_mib=self.opts.memory_mib or self.cfg.memory_mib,
            cpus=self.opts.cpus or self.cfg.cpus,
            accel=self.accel(k),
            initrd=initrd,
            modules=content.modules,
            test_modules=content.test_modules,
            bin_dirs=tuple(h for h, _ in content.bin_dirs),
            qemu=self.opts.qemu,
            workdir=self.cfg.root,
            append=kernel_words(self.cfg, self.opts)
            if self.opts.modules
            else (*self.cfg.cmdline, *self.opts.cmdline),
        )
        self._specs[key] = (spec, content)
        return self._specs[key]

    # --- module parameters: only names the guest's modules have --------------------

    def _module_files(self, content: ImageContent) -> dict[str, Path]:
        files = {m.name.split(".ko")[0].replace("-", "_"): m for m in content.modules}
        for rel in content.kernel_modules:
            files[Path(rel).name.split(".ko")[0].replace("-", "_")] = (
                content.kernel.modules_dir / rel
            )
        return files

    def _parameters(self, module: Path) -> dict[str, str]:
        """A module's parameters (name -> description), from its modinfo."""
        if module not in self._params:
            try:
                out = subprocess.run(
                    ["modinfo", "-F", "parm", str(module)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            except (OSError, subprocess.CalledProcessError) as e:
                raise ImageError(f"modinfo {module} failed: {e}", "install kmod") from e
            params = {}
            for line in out.splitlines():
                name, _, desc = line.partition(":")
                params[name.strip()] = desc.strip()
            self._params[module] = params
        return self._params[module]

    def _check_params(self, params: ModuleParams, content: ImageContent, where: str) -> None:
        """A typo in a module or parameter name is an error, never a silent no-op."""
        files = self._module_files(content)
        for mod, words in params:
            if mod not in files:
                have = ", ".join(sorted(files)) or "none"
                raise ConfigError(
                    f"{where}: {mod}.{words[0]}: the guest has no module {mod!r}",
                    f"its modules: {have}",
                )
            known = self._parameters(files[mod])
            for w in words:
                name = w.split("=", 1)[0]
                if name not in known:
                    raise ConfigError(
                        f"{where}: {mod}.{w}: {mod} has no parameter {name!r}",
                        f"its parameters: {', '.join(sorted(known)) or 'none'}",
                    )

    # --- guests -------------------------------------------------------------------

    def new_guest(
        self, spec: GuestSpec, snapshots: bool | SnapshotStore = True, log: Path | None = None
    ) -> Guest:
        """A Guest of ``spec`` with the project's settings (not started: ``boot()`` it).

        ``snapshots``: True for this run's snapshot store (none with --no-snapshots),
        False for none, or a store of the caller's; ``log``: where its console log goes
        (default: this worker's log directory)."""
        self._guests += 1
        store = (
            snapshots
            if isinstance(snapshots, SnapshotStore)
            else (self.snapshots if snapshots else None)
        )
        return Guest(
            spec,
            log or self.log_path(spec, self._guests),
            self.say,
            boot_timeout=self.cfg.boot_timeout,
            max_output=self.cfg.max_output_bytes,
            allowed_taint=self.cfg.allowed_taint,
            snapshots=store,
        )

    def log_path(self, spec: GuestSpec, n: int) -> Path:
        d = self.cfg.build_path / "logs" / self.worker
        return d / f"console-{spec.backend.name}-{spec.kernel.name}-{os.getpid()}-{n}.log"


def prune_logs(d: Path, keep: int = 20) -> None:
    """Keep the newest ``keep`` console logs of a worker directory."""
    if not d.is_dir():
        return
    logs = sorted(d.glob("console-*.log"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in logs[keep:]:
        p.unlink(missing_ok=True)
