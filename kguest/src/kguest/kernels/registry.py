"""The kernel registry: ``default`` (the host's Debian kernel) and the project's
``[tool.kguest.kernels.NAME]`` entries, each resolved by its provider."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..cache import Cache
from ..config import KernelEntry, ProjectConfig, kernel_table
from ..errors import KernelError
from ..progress import Say
from . import debian, host, provision, source
from .kernel import Kernel, check_match, vmlinuz_version

DEFAULT = "default"
ALL = "all"  # --kernels=all: every kernel of the registry
DEFAULT_PACKAGES = ["linux-image-amd64", "linux-headers-amd64"]


def host_default(name: str, say: Say) -> Kernel:
    """The host's newest Debian ``amd64`` kernel with headers (installed when missing)."""
    hit = host.find_debian("amd64")
    if hit is None:
        host.apt_install(DEFAULT_PACKAGES, say)
        hit = host.find_debian("amd64")
    if hit is None:
        raise KernelError(
            "no /boot/vmlinuz-*-amd64 with matching /lib/modules/VER/build",
            f"apt-get install {' '.join(DEFAULT_PACKAGES)}",
        )
    return check_match(name, *hit)


class Registry:
    """Named kernels: ``default`` plus the project's [tool.kguest.kernels]."""

    def __init__(
        self, entries: tuple[KernelEntry, ...] = (), root: Path = Path("."),
        cache: Cache | None = None,
    ) -> None:
        self._entries = {e.name: e for e in entries}
        self._root = root
        self._cache = cache

    def names(self) -> list[str]:
        """Every kernel's name, ``default`` first (what ``--kernels=all`` runs)."""
        return [DEFAULT, *self._entries]

    def entry(self, name: str) -> KernelEntry | None:
        return self._entries.get(name)

    def expand(self, words: list[str]) -> list[str]:
        """``--kernels`` words with ``all`` replaced by every name; unknown names are
        an error listing the known ones."""
        out: list[str] = []
        for w in words:
            for n in self.names() if w == ALL else [w]:
                if n not in self.names():
                    raise KernelError(f"unknown kernel {n!r}", self._unknown_hint(n))
                if n not in out:
                    out.append(n)
        return out

    def _unknown_hint(self, name: str) -> str:
        return (f"use one of {', '.join(self.names())}, declare it in {kernel_table(name)}, "
                "or pass --kernel PATH --kdir DIR")

    def resolve(self, name: str, say: Say) -> Kernel:
        if name == DEFAULT:
            return host_default(name, say)
        e = self._entries.get(name)
        if e is None:
            raise KernelError(f"unknown kernel {name!r}", self._unknown_hint(name))
        cache = self._cache or Cache.default()
        mul = e.timeout_mul
        if e.form == "debian":
            return debian.resolve(name, e.debian, e.flavour, cache, say, mul or 1.0)
        if e.form == "source":
            return source.resolve(name, e.source, e.config, self._root, cache, say, mul)
        if e.form == "provision":
            return provision.provisioned(name, e.provision, self._root / e.descriptor,
                                         self._root, say)
        return provision.on_disk(name, self._root / e.vmlinuz, self._root / e.kdir,
                                 e.build_prefix, mul or 1.0)


def names(cfg: ProjectConfig) -> list[str]:
    """Every kernel of a project, ``default`` first."""
    return Registry(cfg.kernels, cfg.root).names()


def select(
    cfg: ProjectConfig,
    say: Say,
    name: str | None = None,
    vmlinuz: str | None = None,
    kdir: str | None = None,
) -> Kernel:
    """Resolve the session's kernel from options: a name, or an explicit vmlinuz (+ kdir)."""
    if vmlinuz and (Path(vmlinuz).is_file() or "/" in vmlinuz):
        path = Path(vmlinuz)
        if not path.is_file():
            raise KernelError(f"--kernel {vmlinuz}: no such file", "pass an existing vmlinuz")
        ver = vmlinuz_version(path)
        kd = Path(kdir) if kdir else Path("/lib/modules") / ver / "build"
        return check_match("custom", path, kd)
    reg = Registry(cfg.kernels, cfg.root)
    k = reg.resolve(vmlinuz or name or cfg.kernel, say)
    if kdir:
        return dataclasses.replace(check_match(k.name, k.vmlinuz, Path(kdir), k.build_prefix),
                                   modules=k.modules, timeout_mul=k.timeout_mul)
    return k
