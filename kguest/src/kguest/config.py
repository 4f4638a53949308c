"""Project configuration: the ``[tool.kguest]`` table of pyproject.toml."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from . import fragments
from .errors import ConfigError

BACKEND_NAMES = ("initramfs", "vng")  # backends.BACKENDS holds what each name means
ACCELS = ("auto", "kvm", "tcg")


MATRIX_KINDS = {
    "words": "one of the words listed in `values`",
    "size": "bytes with an optional K, M or G suffix (4K, 2M, 1G)",
    "int": "a decimal integer",
    "text": "any word",
}
SIZE_RX = re.compile(r"^([1-9][0-9]*)([KMG]?)$")
MODULE_RX = re.compile(r"^[A-Za-z0-9_-]+$")


def parse_size(text: str) -> int:
    """``4K`` -> 4096; ValueError when ``text`` is not a size."""
    m = SIZE_RX.match(text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


MATRIX_TARGETS = {
    "option": 'the test program\'s option a value becomes ("-m": binary -m VALUE)',
    "module_param": 'a parameter of a module in the guest ("hello.mode": hello.mode=VALUE)',
    "cmdline": 'a kernel command-line word ("init_on_alloc": init_on_alloc=VALUE)',
}


@dataclasses.dataclass(frozen=True)
class MatrixKey:
    """A scenario matrix key declared in ``[tool.kguest.matrix.NAME]``.

    A value ``v`` of the key is a part of the item id (keys in declaration order)
    and becomes, by the key's target, ``option v`` on the test's command line, the
    module parameter ``module_param=v`` or the kernel command-line word
    ``cmdline=v`` of the item's guest.
    """

    name: str
    option: str
    kind: str  # a key of MATRIX_KINDS
    values: tuple[str, ...] = ()  # kind "words": the allowed ones
    big: int | None = None  # kind "size": from this size on, only under big: (--big)
    module_param: str = ""  # MODULE.NAME (then option is "")
    cmdline: str = ""  # WORD (then option is "")

    def describe(self) -> str:
        if self.kind == "words":
            return f"one of {', '.join(self.values)}"
        return MATRIX_KINDS[self.kind]


def toml_key(name: str) -> str:
    """A TOML key for ``name``: bare when TOML allows it, else quoted (``"6.12"``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def kernel_table(name: str) -> str:
    """How a kernel's table is written: ``[tool.kguest.kernels."6.12"]``."""
    return f"[tool.kguest.kernels.{toml_key(name)}]"


@dataclasses.dataclass(frozen=True)
class KernelEntry:
    """A kernel declared in ``[tool.kguest.kernels.NAME]``, in one of four forms:

    * ``debian`` (a suite, + ``flavour``, default ``amd64``): that suite's Debian
      kernel package, fetched into kguest's cache with its headers;
    * ``source`` (``debian:[SUITE/]PACKAGE``, or a path to a kernel tree or tarball)
      + ``config`` (kguest's fragment names and the project's fragment files): a
      kernel built from source, once, cached by content;
    * ``vmlinuz`` + ``kdir`` (+ ``build_prefix``): a kernel already on disk;
    * ``provision`` (a command, run in the project root, idempotent) + ``descriptor``
      (the kernel.json it writes): a kernel the project provides itself.

    ``timeout_mul`` (any form but ``provision``): how many times slower tests run on
    it; test timeouts are multiplied by it (default 1, for a source kernel the
    product of its fragments' slowdowns).
    """

    name: str
    vmlinuz: str = ""
    kdir: str = ""
    build_prefix: tuple[str, ...] = ()
    provision: tuple[str, ...] = ()
    descriptor: str = ""
    debian: str = ""
    flavour: str = "amd64"
    source: str = ""
    config: tuple[str, ...] = ()
    timeout_mul: float | None = None

    @property
    def form(self) -> str:
        return next(f for f in _KERNEL_FORMS if getattr(self, f))


SWEEP_KINDS = ("slab", "page", "function")


@dataclasses.dataclass(frozen=True)
class FaultSweep:
    """``[tool.kguest.fault_sweep]``: how the error-path sweep judges a run."""

    accept_errnos: tuple[str, ...] = ("ENOMEM",)  # a failure naming one of these is handled
    leak_check: str = ""  # a guest shell command after each swept run: non-zero = leak
    kmemleak: bool = True  # ask kmemleak after each swept run (where the kernel has it)
    kinds: tuple[str, ...] = SWEEP_KINDS
    max_n: int = 100  # the largest N tried per kind and test
    seconds: float = 1800.0  # time per test (all kinds together)


@dataclasses.dataclass(frozen=True)
class Kunit:
    """``[tool.kguest.kunit]``: KUnit test modules, each case a pytest item."""

    modules: tuple[str, ...] = ()  # .ko paths; the cases are read from the .c beside each
    kernels: tuple[str, ...] = ("default",)  # the kernels its items run on


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    root: Path
    build_command: tuple[str, ...] = ("make", "build")
    modules: tuple[str, ...] = ()
    # the guest kernel's own modules (with their dependencies) put into the initramfs
    # for tests to modprobe (e.g. "zram"); not loaded at boot
    kernel_modules: tuple[str, ...] = ()
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
    matrix: tuple[MatrixKey, ...] = ()
    # module name -> its parameters ("name=value" words), given at load time
    module_params: tuple[tuple[str, tuple[str, ...]], ...] = ()
    cmdline: tuple[str, ...] = ()  # extra words for the guest kernel's command line
    fault_sweep: FaultSweep = FaultSweep()
    kunit: Kunit = Kunit()
    source: str = "[tool.kguest]"  # the file the config came from, for messages

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

    def matrix_keys(self) -> dict[str, MatrixKey]:
        return {k.name: k for k in self.matrix}

    def params_for(self, module: str) -> tuple[str, ...]:
        return dict(self.module_params).get(module.replace("-", "_"), ())


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
_LISTS = ("build_command", "modules", "kernel_modules", "bin_dirs", "cmdline")
_TABLES = ("kernels", "matrix", "module_params", "fault_sweep", "kunit")


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
            kw["kernels"] = _kernels(value, where, root)
        elif key == "matrix":
            kw["matrix"] = _matrix(value, where)
        elif key == "module_params":
            kw["module_params"] = module_params(value, where)
        elif key == "fault_sweep":
            kw["fault_sweep"] = _fault_sweep(value, where)
        elif key == "kunit":
            kw["kunit"] = _kunit(value, where)
        else:
            allowed = ", ".join(sorted([*_SCALARS, *_LISTS, *_TABLES]))
            raise ConfigError(f"{where}: unknown key [tool.kguest] {key}", f"allowed: {allowed}")
    kw["source"] = where
    cfg = ProjectConfig(**kw)
    if cfg.backend not in BACKEND_NAMES:
        raise ConfigError(
            f"{where}: backend = {cfg.backend!r} is not known",
            f"use one of {', '.join(BACKEND_NAMES)}",
        )
    if cfg.memory_mib < 128 or cfg.cpus < 1:
        raise ConfigError(f"{where}: memory_mib >= 128 and cpus >= 1 are needed", "raise them")
    return cfg


def _words(value: Any, where: str, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(
            f"{where}: {key} must be a list of strings, got {value!r}", f'e.g. {key} = ["a", "b"]'
        )
    return tuple(value)


_KERNEL_FORMS = {  # the key that names a form: (required keys, optional keys)
    "debian": ({"debian"}, {"flavour", "timeout_mul"}),
    "source": ({"source"}, {"config", "timeout_mul"}),
    "vmlinuz": ({"vmlinuz", "kdir"}, {"build_prefix", "timeout_mul"}),
    "provision": ({"provision", "descriptor"}, set()),
}
_SUITE_RX = re.compile(r"[a-z][a-z0-9.-]*")


def _kernels(value: Any, where: str, root: Path) -> tuple[KernelEntry, ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [tool.kguest.kernels] must be a table", "see kguest/README.md")
    out = []
    forms = "; ".join(" + ".join(sorted(req)) for req, _ in _KERNEL_FORMS.values())
    for name, ent in value.items():
        key = kernel_table(name)
        if name == "default":
            raise ConfigError(f"{where}: {key}: 'default' is built in", "give it another name")
        if name in ("all",):
            raise ConfigError(f"{where}: {key}: 'all' means every kernel", "give it another name")
        if not isinstance(ent, dict):
            raise ConfigError(f"{where}: {key} must be a table", forms)
        form = [f for f in _KERNEL_FORMS if f in ent]
        if len(form) != 1:
            hint = forms
            if "flavour" in ent and not form:
                hint = 'a Debian flavour needs its suite: debian = "bookworm"'
            raise ConfigError(f"{where}: {key} needs exactly one of these sets of keys", hint)
        req, opt = _KERNEL_FORMS[form[0]]
        missing, extra = req - set(ent), set(ent) - req - opt
        if missing or extra:
            raise ConfigError(
                f"{where}: {key}: "
                + (f"missing {', '.join(sorted(missing))}" if missing else "")
                + (f"unknown {', '.join(sorted(extra))}" if extra and not missing else ""),
                f"allowed: {', '.join(sorted(req | opt))}",
            )
        kw: dict[str, Any] = {}
        for k, v in ent.items():
            if k in ("build_prefix", "provision", "config"):
                kw[k] = _words(v, where, f"{key} {k}")
            elif k == "timeout_mul":
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 1:
                    raise ConfigError(f"{where}: {key} timeout_mul = {v!r} is not a number >= 1",
                                      "e.g. timeout_mul = 4")
                kw[k] = float(v)
            elif not isinstance(v, str) or not v:
                raise ConfigError(f"{where}: {key} {k} = {v!r} is not a string", f'{k} = "..."')
            else:
                kw[k] = v
        entry = KernelEntry(name, **kw)
        _check_kernel(entry, where, key, root)
        out.append(entry)
    return tuple(out)


def _check_kernel(e: KernelEntry, where: str, key: str, root: Path) -> None:
    """What can be checked without the network or a build: names and files."""
    if e.debian and not _SUITE_RX.fullmatch(e.debian):
        raise ConfigError(f"{where}: {key} debian = {e.debian!r} is not a Debian suite name",
                          'e.g. debian = "trixie"')
    if e.debian and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", e.flavour):
        raise ConfigError(f"{where}: {key} flavour = {e.flavour!r} is not a kernel flavour",
                          'e.g. flavour = "rt-amd64" (linux-image-rt-amd64)')
    if e.source and not e.source.startswith("debian:") and not (root / e.source).exists():
        raise ConfigError(
            f"{where}: {key} source = {e.source!r}: {root / e.source} does not exist",
            'a kernel tree or tarball (relative to the project root), or '
            '"debian:linux-source-6.1"',
        )
    known = fragments.names()
    for word in e.config:
        if fragments.is_file_name(word):
            if not (root / word).is_file():
                raise ConfigError(
                    f"{where}: {key} config: fragment file {word!r} does not exist "
                    f"({root / word})",
                    "a path relative to the project root",
                )
        elif word not in known:
            raise ConfigError(
                f"{where}: {key} config: {word!r} is not one of kguest's fragments",
                f"use {', '.join(known)}, or a file of yours (a path with a \"/\" or "
                "ending in .config)",
            )


def _matrix(value: Any, where: str) -> tuple[MatrixKey, ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [tool.kguest.matrix] must be a table", "see kguest/README.md")
    kinds = ", ".join(MATRIX_KINDS)
    out = []
    for name, ent in value.items():
        key = f"[tool.kguest.matrix.{name}]"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ConfigError(f"{where}: {key}: not a key name", "use [a-z][a-z0-9_]*")
        if not isinstance(ent, dict):
            raise ConfigError(f"{where}: {key} must be a table", 'option = "-x", kind = "words"')
        extra = set(ent) - {*MATRIX_TARGETS, "kind", "values", "big"}
        if extra:
            raise ConfigError(
                f"{where}: {key}: unknown key {', '.join(sorted(extra))}",
                f"allowed: {', '.join(MATRIX_TARGETS)}, kind, values, big",
            )
        targets = [t for t in MATRIX_TARGETS if t in ent]
        if len(targets) != 1:
            raise ConfigError(
                f"{where}: {key} needs exactly one of {', '.join(MATRIX_TARGETS)}",
                "; ".join(f"{t}: {d}" for t, d in MATRIX_TARGETS.items()),
            )
        target, aim, kind = targets[0], ent[targets[0]], ent.get("kind")
        rx = {
            "option": r"-\S+",
            "module_param": r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+",
            "cmdline": r"[A-Za-z0-9_.-]+",
        }[target]
        if not isinstance(aim, str) or not re.fullmatch(rx, aim):
            raise ConfigError(
                f"{where}: {key} {target} = {aim!r} is not {MATRIX_TARGETS[target]}",
                f"e.g. {target} = "
                + {"option": '"-m"', "module_param": '"hello.mode"', "cmdline": '"init_on_alloc"'}[
                    target
                ],
            )
        if kind not in MATRIX_KINDS:
            raise ConfigError(f"{where}: {key} kind = {kind!r} is not known", f"allowed: {kinds}")
        values: tuple[str, ...] = ()
        if kind == "words":
            values = _words(ent.get("values"), where, f"{key} values")
        elif "values" in ent:
            raise ConfigError(f'{where}: {key}: values is for kind = "words"', "drop it")
        big = None
        if "big" in ent:
            if kind != "size" or not isinstance(ent["big"], str):
                raise ConfigError(
                    f'{where}: {key} big = {ent["big"]!r}: a size, for kind = "size"',
                    'e.g. big = "256M" (sizes from there on run only with --big)',
                )
            try:
                big = parse_size(ent["big"])
            except ValueError:
                raise ConfigError(
                    f"{where}: {key} big = {ent['big']!r} is not a size", 'e.g. big = "256M"'
                ) from None
        out.append(
            MatrixKey(
                name,
                aim if target == "option" else "",
                kind,
                values,
                big,
                module_param=aim.replace("-", "_") if target == "module_param" else "",
                cmdline=aim if target == "cmdline" else "",
            )
        )
    return tuple(out)


def _table(value: Any, where: str, name: str, fields: dict[str, type]) -> dict[str, Any]:
    """A sub-table whose keys are ``fields`` (name -> type; tuple means a list of strings)."""
    key = f"[tool.kguest.{name}]"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a table", "see kguest/README.md")
    out: dict[str, Any] = {}
    for k, v in value.items():
        want = fields.get(k)
        if want is None:
            raise ConfigError(
                f"{where}: {key}: unknown key {k}", f"allowed: {', '.join(fields)}"
            )
        if want is tuple:
            out[k] = _words(v, where, f"{key} {k}")
            continue
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if not isinstance(v, want) or (want is not bool and isinstance(v, bool)):
            raise ConfigError(
                f"{where}: {key} {k} = {v!r} is not a {want.__name__}", f"write {k} as one"
            )
        out[k] = v
    return out


def _fault_sweep(value: Any, where: str) -> FaultSweep:
    from .results import errno_number

    kw = _table(
        value,
        where,
        "fault_sweep",
        {
            "accept_errnos": tuple,
            "leak_check": str,
            "kmemleak": bool,
            "kinds": tuple,
            "max_n": int,
            "seconds": float,
        },
    )
    key = "[tool.kguest.fault_sweep]"
    for name in kw.get("accept_errnos", ()):
        try:
            errno_number(name)
        except KeyError:
            raise ConfigError(
                f"{where}: {key} accept_errnos: {name!r} is not an errno name",
                "e.g. accept_errnos = [\"ENOMEM\"]",
            ) from None
    kw["accept_errnos"] = tuple(n.upper() for n in kw.get("accept_errnos", ("ENOMEM",)))
    for k in kw.get("kinds", ()):
        if k not in SWEEP_KINDS:
            raise ConfigError(
                f"{where}: {key} kinds: {k!r} is not known", f"allowed: {', '.join(SWEEP_KINDS)}"
            )
    if kw.get("max_n", 1) < 1 or kw.get("seconds", 1.0) <= 0:
        raise ConfigError(f"{where}: {key} max_n and seconds must be positive", "raise them")
    return FaultSweep(**kw)


def _kunit(value: Any, where: str) -> Kunit:
    kw = _table(value, where, "kunit", {"modules": tuple, "kernels": tuple})
    for m in kw.get("modules", ()):
        if not m.endswith(".ko"):
            raise ConfigError(
                f"{where}: [tool.kguest.kunit] modules: {m!r} is not a .ko path",
                'e.g. modules = ["kmod/hello_kunit.ko"] (cases are read from hello_kunit.c)',
            )
    return Kunit(**kw)


def module_params(
    value: Any, where: str, table: str = "[tool.kguest.module_params]"
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{module: ["name=value", ...]}``, checked (also for --module-param and the
    scenario key ``module_params``, named by ``table`` in messages)."""
    at = f"{where}: " if where else ""
    if not isinstance(value, dict):
        raise ConfigError(f"{at}{table} must be a table", 'e.g. hello = ["debug=1"]')
    out = []
    for mod, params in value.items():
        key = f"{table} {mod}"
        if not isinstance(mod, str) or not MODULE_RX.match(mod):
            raise ConfigError(f"{at}{key}: not a module name", "the .ko's name, no suffix")
        if (
            not isinstance(params, list)
            or not params
            or not all(isinstance(p, str) and p for p in params)
        ):
            raise ConfigError(
                f"{at}{key} must be a list of strings, got {params!r}", f'e.g. {mod} = ["a=1"]'
            )
        for w in params:
            if not re.fullmatch(r"[A-Za-z0-9_]+=\S+", w):
                raise ConfigError(f"{at}{key}: {w!r} is not name=value", 'e.g. "debug=1"')
        out.append((mod.replace("-", "_"), tuple(params)))
    return tuple(out)


def ensure_build_dir(cfg: ProjectConfig) -> Path:
    """Create the build directory, git-ignored by a ``.gitignore`` of its own."""
    d = cfg.build_path
    d.mkdir(parents=True, exist_ok=True)
    ign = d / ".gitignore"
    if not ign.exists():
        ign.write_text("# generated by kguest\n*\n")
    return d
