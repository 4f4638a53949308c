"""Building what the guests run: the project's own build once per session, and each
configured module once per kernel, in a directory of its own.

* ``build_command`` (the project's: static test programs, libraries) runs once per
  session (every xdist worker shares it), on the host, in the project root, as
  ``build_command + ["KDIR=<headers>"]`` for Makefiles that also build the module in
  place: the headers of the host's own Debian kernel when it has one, else those of
  the session's kernel when it builds with the host's toolchain (else no KDIR).
  kguest does not use a module the project's build leaves in its tree (except with
  ``--no-build`` when kguest has no build of the sources as they are).
* Each directory holding a configured module (``modules = ["kmod/foo.ko"]``: ``kmod/``)
  that has a ``Kbuild`` or ``Makefile`` is built by kguest as an external module for
  each kernel, in a mirror of that directory of its own
  (``<build_dir>/modules/<kernel>-<key>/<dir>``: the sources copied with their
  modification times, a file rewritten only when its content changed):
  ``make -C <headers> M=<mirror> modules``, run with the kernel's build prefix (a
  chroot for a kernel whose headers need another toolchain).  The key is the
  kernel's (its version, headers ``.config``, ``Module.symvers``, prefix), so
  switching kernels back and forth reuses each kernel's build: make does not run
  at all when the sources, the kernel and the make arguments are those of the last
  build, and the ``.ko`` (and so the guest image and its snapshot) stays the same.
  Modules get debug info (``KCFLAGS=-g``) when the kernel has none, so that a
  sanitizer report's module frames can be decoded to file:line.
* A module whose directory has neither (a ``.ko`` made elsewhere) is taken from the
  tree after ``build_command``, as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .cache import key
from .config import ProjectConfig
from .errors import BuildError
from .files import atomic_write_text, file_lock
from .kernels import Kernel, config_value, find_debian
from .kernels.chroot import stable
from .progress import Say, step

FORMAT = "kguest-module-build-1"
# Not sources: what kbuild, editors, VCS and Python leave in a module directory.
NOT_SOURCES = (
    "*.o", "*.ko", "*.mod", "*.mod.c", "*.mod.o", ".*.cmd", "*.a", "*.dwo", "*.gcno", "*.gcda",
    "*.order", "Module.symvers", ".tmp_versions", ".git", ".hg", ".svn", ".venv", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.pyc", "*.swp", "*~",
)
KEEP_MIRRORS = 3  # per kernel name: builds for older versions of that kernel are removed


# --- the project's build ------------------------------------------------------


def project_kdir(kernel: Kernel) -> Path | None:
    """The headers ``build_command`` gets as KDIR (see the module docstring)."""
    hit = find_debian("amd64")
    if hit is not None:
        return hit[1]
    return kernel.kdir if not kernel.build_prefix else None


def build_command(cfg: ProjectConfig, kernel: Kernel) -> list[str]:
    kdir = project_kdir(kernel)
    return [*cfg.build_command, *([f"KDIR={kdir}"] if kdir else [])]


def run_project_build(cfg: ProjectConfig, kernel: Kernel, say: Say, session: str = "") -> Path:
    """``build_command`` once per session (all workers share the session id); the log.
    Without a session id it always runs (it is incremental anyway)."""
    out = cfg.build_path
    log = out / "logs" / "build.log"
    stamp = out / "build.stamp"
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
            env = {**os.environ}
            kdir = next((w[5:] for w in cmd if w.startswith("KDIR=")), None)
            if kdir:
                env["KDIR"] = kdir
            try:
                rc = subprocess.call(cmd, cwd=cfg.root, stdout=f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
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
        if session:
            atomic_write_text(stamp, session)
    return log


# --- modules, per kernel --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModuleDir:
    """A directory of the project holding configured modules."""

    rel: str  # relative to the project root ("kmod", "." )
    path: Path
    names: tuple[str, ...]  # the .ko file names configured in it

    @property
    def place(self) -> str:
        """Where its mirror goes under a kernel's mirror root: its path in the project,
        or, for a directory outside the project (``modules = ["/abs/foo.ko"]``), its
        name and a key of its path."""
        if os.path.isabs(self.rel) or self.rel == ".." or self.rel.startswith("../"):
            return f"outside/{self.path.name}-{key(str(self.path))[:8]}"
        return self.rel

    @property
    def buildable(self) -> bool:
        return (self.path / "Kbuild").is_file() or (self.path / "Makefile").is_file()


def module_dirs(cfg: ProjectConfig) -> list[ModuleDir]:
    """The configured modules grouped by directory, in configuration order."""
    groups: dict[str, list[str]] = {}
    for m in cfg.modules:
        rel = os.path.normpath(os.path.dirname(m) or ".")
        groups.setdefault(rel, []).append(os.path.basename(m))
    return [ModuleDir(rel, (cfg.root / rel).resolve(), tuple(n)) for rel, n in groups.items()]


def kernel_key(kernel: Kernel) -> str:
    """What a module build for ``kernel`` depends on: its version, the headers'
    ``.config`` and ``Module.symvers``, and where it builds."""
    parts: list[str | bytes] = [FORMAT, kernel.version, "\0".join(stable(kernel.build_prefix))]
    for f in (".config", "Module.symvers"):
        with contextlib.suppress(OSError):
            parts.append(hashlib.sha256((kernel.kdir / f).read_bytes()).hexdigest())
    return key(*parts)


def _is_source(rel: Path, excluded: set[Path]) -> bool:
    if rel in excluded or any(p in excluded for p in rel.parents):
        return False
    return not any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in NOT_SOURCES)


def sources(d: ModuleDir, cfg: ProjectConfig) -> dict[str, Path]:
    """A module directory's source files (relative path -> file), without build
    products and without the project's build and bin directories under it."""
    excluded = set()
    for other in (cfg.build_dir, *cfg.bin_dirs):
        with contextlib.suppress(ValueError):
            excluded.add((cfg.root / other).resolve().relative_to(d.path))
    out: dict[str, Path] = {}
    for root, dirs, files in os.walk(d.path):
        r = Path(root).relative_to(d.path)
        dirs[:] = sorted(x for x in dirs if _is_source(r / x, excluded))
        for f in sorted(files):
            rel = r / f
            p = Path(root) / f
            if _is_source(rel, excluded) and (p.is_file() or p.is_symlink()):
                out[str(rel)] = p
    return out


def _same(a: Path, b: Path) -> bool:
    sa, sb = a.lstat(), b.lstat()
    if sa.st_size != sb.st_size:
        return False
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    return a.read_bytes() == b.read_bytes()


def sync_mirror(files: dict[str, Path], mirror: Path) -> bool:
    """Make ``mirror`` hold ``files``; True when something changed.  A file is copied
    with its modification time only when its content differs, never older than the
    copy it replaces (so make sees the change); sources gone from the project go."""
    changed = False
    mirror.mkdir(parents=True, exist_ok=True)
    for rel, src in files.items():
        dst = mirror / rel
        if dst.exists() or dst.is_symlink():
            if _same(src, dst):
                continue
            old = dst.lstat().st_mtime_ns
            dst.unlink()
        else:
            old = 0
            dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
            if dst.stat().st_mtime_ns <= old:
                os.utime(dst)
        changed = True
    for old_file in list(mirror.rglob("*")):
        gone = old_file.relative_to(mirror)
        if str(gone) not in files and (old_file.is_file() or old_file.is_symlink()) and \
                _is_source(gone, set()) and not gone.name.startswith(".kguest"):
            old_file.unlink()
            changed = True
    return changed


def mirror_root(cfg: ProjectConfig, kernel: Kernel) -> Path:
    return cfg.build_path / "modules" / f"{kernel.name}-{kernel_key(kernel)[:12]}"


def make_args(
    kernel: Kernel, mirror: Path, src: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    """Arguments of kguest's module build of ``src`` in ``mirror`` besides ``-C`` and
    ``M=``: line tables always, naming the project's files rather than the mirror's
    (reports say ``kmod/foo.c:LINE``)."""
    flags = [f"-ffile-prefix-map={mirror}={src}"]
    if config_value(kernel.kdir, "CONFIG_DEBUG_INFO") != "y":
        flags.insert(0, "-g")
    return ["modules", f"KCFLAGS={' '.join(flags)}", *extra]


def _plan(
    cfg: ProjectConfig, kernel: Kernel, d: ModuleDir, extra: tuple[str, ...] = ()
) -> tuple[Path, dict[str, Path], list[str], str]:
    """A module directory's build for ``kernel``: its mirror, sources, make command,
    and the digest of both (what the mirror's stamp records)."""
    mirror = mirror_root(cfg, kernel) / d.place
    files = sources(d, cfg)
    cmd = [*kernel.build_prefix, "make", "-C", str(kernel.kdir), f"M={mirror}",
           *make_args(kernel, mirror, d.path.resolve(), extra)]
    digest = key(*(f"{r}\0{hashlib.sha256(p.read_bytes()).hexdigest()}" if p.is_file()
                   else f"{r}\0->{os.readlink(p)}" for r, p in files.items()), *stable(cmd))
    return mirror, files, cmd, digest


def _current(mirror: Path, digest: str, kos: list[Path]) -> bool:
    """Whether the mirror's last build is of these sources and command, .ko files there."""
    with contextlib.suppress(OSError, ValueError):
        stamp = json.loads((mirror / ".kguest-build").read_text())
        return stamp.get("digest") == digest and all(k.is_file() for k in kos)
    return False


def current_modules(
    cfg: ProjectConfig, kernel: Kernel, extra: tuple[str, ...] = ()
) -> list[Path]:
    """The configured modules without building anything (--no-build): for a directory
    kguest builds, the ``.ko`` of its mirror when that build is of the sources as they
    are now; otherwise the configured file as it is."""
    found: dict[str, Path] = {}
    for d in module_dirs(cfg):
        if not d.buildable:
            continue
        mirror, _, _, digest = _plan(cfg, kernel, d, extra)
        kos = [mirror / n for n in d.names]
        if _current(mirror, digest, kos):
            for n, k in zip(d.names, kos, strict=True):
                found[_where(os.path.join(d.rel, n))] = k
    return [found.get(_where(m), p) for m, p in zip(cfg.modules, cfg.module_paths(), strict=True)]


def build_module_dir(
    cfg: ProjectConfig, kernel: Kernel, d: ModuleDir, say: Say, extra: tuple[str, ...] = ()
) -> list[Path]:
    """Build one module directory for ``kernel`` in its mirror; the .ko paths."""
    mirror, files, cmd, digest = _plan(cfg, kernel, d, extra)
    stamp = mirror / ".kguest-build"
    kos = [mirror / n for n in d.names]
    with file_lock(mirror.with_name(mirror.name + ".lock")):
        if _current(mirror, digest, kos):
            return kos
        sync_mirror(files, mirror)
        part = "" if d.place == "." else "-" + d.place.replace("/", "_")
        log = cfg.build_path / "logs" / f"modules-{kernel.name}{part}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        where = " (in its build environment)" if kernel.build_prefix \
            else ""
        with step(say, f"building {', '.join(d.names)} for {kernel.name} ({kernel.version})"
                       f"{where} (log: {log})"), log.open("w") as f:
            f.write(f"$ {' '.join(cmd)}   # in {mirror}, {time.ctime()}\n")
            f.flush()
            try:
                rc = subprocess.call(cmd, cwd=mirror, stdout=f, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=_module_env())
            except OSError as e:
                raise BuildError(f"cannot run {cmd[0]}: {e}", "install make") from e
        text = log.read_text(errors="replace")
        if rc != 0:
            tail = "\n".join(text.splitlines()[-40:])
            raise BuildError(
                f"{d.rel}: the module does not build for kernel {kernel.name} "
                f"({kernel.version}), exit {rc}\n--- last lines of {log} ---\n{tail}",
                f"fix the error above; the command is the first line of {log}",
                log=text,
            )
        for k in kos:
            if not k.is_file():
                raise BuildError(
                    f"{cfg.source}: modules: {os.path.join(d.rel, k.name)!r} was not built by "
                    f"make -C KDIR M={d.rel} (see {log})",
                    "fix the name in modules = [...], or the directory's Kbuild (obj-m)",
                )
        atomic_write_text(stamp, json.dumps({"digest": digest, "command": cmd}) + "\n")
    return kos


def _module_env() -> dict[str, str]:
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "KCFLAGS", "M", "O", "KDIR",
            "KBUILD_OUTPUT", "KBUILD_EXTMOD")
    return {k: v for k, v in os.environ.items() if k not in drop}


def _copy_aside(cfg: ProjectConfig, kernel: Kernel, d: ModuleDir) -> list[Path]:
    """A module kguest cannot build: the project's, copied aside per kernel."""
    dest = mirror_root(cfg, kernel) / "prebuilt" / d.place
    out = []
    for n in d.names:
        src = d.path / n
        if not src.is_file():
            raise BuildError(
                f"{cfg.source}: modules: {os.path.join(d.rel, n)!r} does not exist after the "
                f"build ({src}), and {d.rel}/ has no Kbuild or Makefile for kguest to build it",
                "fix the path in modules = [...] (relative to the project root), "
                "or make build_command produce it",
            )
        dest.mkdir(parents=True, exist_ok=True)
        if not (dest / n).is_file() or not _same(src, dest / n):
            shutil.copy2(src, dest / n)
        out.append(dest / n)
    return out


def prune_mirrors(cfg: ProjectConfig, kernel: Kernel) -> None:
    """Keep the newest KEEP_MIRRORS module builds of each kernel name."""
    base = cfg.build_path / "modules"
    mine = sorted((p for p in base.glob(f"{kernel.name}-*") if p.is_dir()
                   and p.name.rsplit("-", 1)[0] == kernel.name),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for p in mine[KEEP_MIRRORS:]:
        shutil.rmtree(p, ignore_errors=True)
        with contextlib.suppress(OSError):
            p.with_name(p.name + ".lock").unlink()


def build_modules(
    cfg: ProjectConfig, kernel: Kernel, say: Say, extra: tuple[str, ...] = ()
) -> list[Path]:
    """Every configured module built for ``kernel`` (in configuration order)."""
    built: dict[str, Path] = {}
    for d in module_dirs(cfg):
        kos = (build_module_dir(cfg, kernel, d, say, extra) if d.buildable
               else _copy_aside(cfg, kernel, d))
        for n, k in zip(d.names, kos, strict=True):
            built[_where(os.path.join(d.rel, n))] = k
    if built:
        os.utime(mirror_root(cfg, kernel))
        prune_mirrors(cfg, kernel)
    return [built[_where(m)] for m in cfg.modules]


def companion_paths(cfg: ProjectConfig, kernel: Kernel, modules: Sequence[str]) -> list[Path]:
    """Modules that a configured module directory's build makes beside the configured
    ones (a KUnit test module of the same Kbuild), as built for ``kernel``: in that
    directory's mirror; a module of no configured directory is taken where it is."""
    places = {d.rel: d for d in module_dirs(cfg)}
    out = []
    for m in modules:
        d = places.get(os.path.normpath(os.path.dirname(m) or "."))
        out.append(mirror_root(cfg, kernel) / d.place / os.path.basename(m) if d else cfg.root / m)
    return out


def _where(module: str) -> str:
    """One spelling of a configured module path ("./hello.ko" and "hello.ko" alike)."""
    return os.path.normpath(module)


def module_paths(
    cfg: ProjectConfig, kernel: Kernel, say: Say, session: str = "", build: bool = True,
    extra: tuple[str, ...] = (),
) -> list[Path]:
    """The modules a guest of ``kernel`` loads: built (the project's build once per
    session, then the modules for this kernel), or with ``build=False``
    (--no-build) what is there: see :func:`current_modules`."""
    if not build:
        return current_modules(cfg, kernel, extra)
    run_project_build(cfg, kernel, say, session)
    return build_modules(cfg, kernel, say, extra)

