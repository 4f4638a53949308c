"""Project configuration: the ``[tool.kguest]`` table of pyproject.toml."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

BACKENDS = ("initramfs", "vng")
ACCELS = ("auto", "kvm", "tcg")


@dataclasses.dataclass(frozen=True)
class KernelEntry:
    """A kernel declared in ``[tool.kguest.kernels.NAME]``."""

    name: str
    vmlinuz: str
    kdir: str
    build_prefix: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    root: Path
    build_command: tuple[str, ...] = ("make", "build")
    modules: tuple[str, ...] = ()
    bin_dirs: tuple[str, ...] = ()
    scenario_dir: str = "scenarios"
    build_dir: str = "build/kguest"
    backend: str = "initramfs"
    kernel: str = "default"
    memory_mib: int = 2048
    cpus: int = 2
    timeout: float = 300.0
    boot_timeout: float = 180.0
    accel_probe_timeout: float = 20.0
    max_output_bytes: int = 256 * 1024
    allowed_taint: str = "OE"
    kernels: tuple[KernelEntry, ...] = ()

    @property
    def build_path(self) -> Path:
        return self.root / self.build_dir

    @property
    def scenario_path(self) -> Path:
        return self.root / self.scenario_dir

    def module_paths(self) -> list[Path]:
        return [self.root / m for m in self.modules]

    def bin_paths(self) -> list[Path]:
        return [self.root / d for d in self.bin_dirs]


_SCALARS: dict[str, type] = {
    "scenario_dir": str,
    "build_dir": str,
    "backend": str,
    "kernel": str,
    "memory_mib": int,
    "cpus": int,
    "timeout": float,
    "boot_timeout": float,
    "accel_probe_timeout": float,
    "max_output_bytes": int,
    "allowed_taint": str,
}
_LISTS = ("build_command", "modules", "bin_dirs")


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` whose pyproject.toml has [tool.kguest]."""
    for d in [start, *start.parents]:
        p = d / "pyproject.toml"
        if p.is_file():
            try:
                data = tomllib.loads(p.read_text())
            except tomllib.TOMLDecodeError:
                continue
            if "kguest" in data.get("tool", {}):
                return d
    return None


def load(root: Path | None = None) -> ProjectConfig:
    """Read the config.  Without ``root``, search upwards from the current directory."""
    if root is None:
        root = find_root(Path.cwd())
        if root is None:
            raise ConfigError(
                "no pyproject.toml with a [tool.kguest] table here or above",
                "run kguest from the project tree, or add [tool.kguest] to its pyproject.toml",
            )
    path = root / "pyproject.toml"
    try:
        table: dict[str, Any] = tomllib.loads(path.read_text()).get("tool", {}).get("kguest", {})
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}", "fix the TOML syntax") from e
    return from_table(root.resolve(), table, str(path))


def from_table(root: Path, table: dict[str, Any], where: str = "[tool.kguest]") -> ProjectConfig:
    kw: dict[str, Any] = {"root": root}
    for key, value in table.items():
        if key in _SCALARS:
            want = _SCALARS[key]
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or isinstance(value, bool):
                raise ConfigError(
                    f"{where}: [tool.kguest] {key} = {value!r} is not a {want.__name__}",
                    f"write {key} as a {want.__name__}",
                )
            kw[key] = value
        elif key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(
                    f"{where}: [tool.kguest] {key} must be a list of strings, got {value!r}",
                    f'e.g. {key} = ["a", "b"]',
                )
            kw[key] = tuple(value)
        elif key == "kernels":
            kw["kernels"] = _kernels(value, where)
        else:
            allowed = ", ".join(sorted([*_SCALARS, *_LISTS, "kernels"]))
            raise ConfigError(f"{where}: unknown key [tool.kguest] {key}", f"allowed: {allowed}")
    cfg = ProjectConfig(**kw)
    if cfg.backend not in BACKENDS:
        raise ConfigError(
            f"{where}: backend = {cfg.backend!r} is not known", f"use one of {', '.join(BACKENDS)}"
        )
    if cfg.memory_mib < 128 or cfg.cpus < 1:
        raise ConfigError(f"{where}: memory_mib >= 128 and cpus >= 1 are needed", "raise them")
    return cfg


def _kernels(value: Any, where: str) -> tuple[KernelEntry, ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [tool.kguest.kernels] must be a table", "see kguest/README.md")
    out = []
    for name, ent in value.items():
        if not isinstance(ent, dict) or not {"vmlinuz", "kdir"} <= set(ent):
            raise ConfigError(
                f"{where}: [tool.kguest.kernels.{name}] needs vmlinuz and kdir",
                'e.g. vmlinuz = "/boot/vmlinuz-X", kdir = "/lib/modules/X/build"',
            )
        prefix = ent.get("build_prefix", [])
        if not isinstance(prefix, list) or not all(isinstance(p, str) for p in prefix):
            raise ConfigError(f"{where}: kernels.{name}.build_prefix must be a list of strings")
        out.append(KernelEntry(name, str(ent["vmlinuz"]), str(ent["kdir"]), tuple(prefix)))
    return tuple(out)


def ensure_build_dir(cfg: ProjectConfig) -> Path:
    """Create the build directory, git-ignored by a ``.gitignore`` of its own."""
    d = cfg.build_path
    d.mkdir(parents=True, exist_ok=True)
    ign = d / ".gitignore"
    if not ign.exists():
        ign.write_text("# generated by kguest\n*\n")
    return d
