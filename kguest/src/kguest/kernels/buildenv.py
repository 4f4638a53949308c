"""Where a kernel's modules are built: the host, or a Debian chroot with the toolchain
the kernel's headers need.

Decided from data, not from names: the compiler the headers' ``.config`` says the
kernel was built with (``CONFIG_CC_VERSION_TEXT``) against the host's compilers, and
whether the headers' build tools (``scripts/basic/fixdep``, ``scripts/mod/modpost``)
run on the host (they link against the C library of the distribution that built
them).  When either fails, the modules build in a minimal chroot (``debootstrap
--variant=minbase``) of the kernel's own suite with that compiler and what the
headers' packages depend on; the chroot is a cache entry shared by every kernel
that needs the same one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

from ..cache import Cache, key
from ..errors import KernelError
from ..progress import Say
from . import chroot, host
from .apt import DEFAULT_MIRROR, KEYRING, MIRROR_ENV
from .kernel import config_value

FORMAT = "kguest-buildenv-1"


@dataclasses.dataclass(frozen=True)
class BuildEnv:
    """A place to build modules: ``prefix`` runs a command there (() = the host)."""

    description: str
    prefix: tuple[str, ...] = ()
    root: Path | None = None


def kernel_gcc(kdir: Path) -> int | None:
    """The gcc major version the kernel was built with, from its headers' .config."""
    for sym in ("CONFIG_GCC_VERSION", "CONFIG_CC_VERSION_TEXT"):
        v = config_value(kdir, sym)
        if v and v != "0":
            major = host.gcc_major(v)
            if major:
                return major
    return None


def tools_run(kdir: Path) -> str:
    """"" when the headers' build tools run on the host, else why not."""
    for tool in ("scripts/basic/fixdep", "scripts/mod/modpost"):
        exe = kdir / tool
        if not exe.exists():
            continue
        try:
            r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)
        except OSError as e:
            return f"{tool}: {e.strerror}"
        except subprocess.SubprocessError as e:
            return f"{tool}: {e}"
        err = r.stderr
        if "GLIBC_" in err or "error while loading shared libraries" in err or \
                ("not found" in err and "version" in err):
            return f"{tool}: {err.strip().splitlines()[0]}"
    return ""


def host_fits(kdir: Path) -> str:
    """"" when the host can build modules for the headers ``kdir``, else why not."""
    want = kernel_gcc(kdir)
    if want is not None and want not in host.compilers():
        return f"the kernel was built with gcc {want}, the host has no gcc-{want}"
    return tools_run(kdir)


def choose(kdir: Path, suite: str, packages: list[str], cache: Cache, say: Say) -> BuildEnv:
    """The host when it fits the headers, else a chroot of ``suite`` with gcc-N,
    make and ``packages`` (what the headers' packages depend on)."""
    why = host_fits(kdir)
    if not why:
        return BuildEnv("the host")
    gcc = kernel_gcc(kdir)
    include = sorted({"make", *(f"gcc-{gcc}",) * (gcc is not None), *packages})
    root = ensure_chroot(cache, suite, include, say, why)
    return BuildEnv(f"a {suite} chroot ({root})", chroot.prefix(root, [cache.root]), root)


def ensure_chroot(cache: Cache, suite: str, include: list[str], say: Say, why: str = "") -> Path:
    """A minbase chroot of ``suite`` with ``include``, made once in the cache."""
    mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
    k = key(FORMAT, suite, *include)
    rel = f"buildenv/{suite}-{k}"

    def make(d: Path, progress: Say) -> dict[str, object]:
        if os.geteuid() != 0:
            raise KernelError(
                f"building modules for this kernel needs a {suite} chroot ({why}), and "
                "making one needs root",
                "run kguest as root once (later runs reuse the chroot)",
            )
        host.ensure_tools({"debootstrap": "debootstrap", "unshare": "util-linux"},
                          f"a {suite} build chroot", progress)
        root = d / "root"
        log = d / "debootstrap.log"
        progress(f"kguest: making a {suite} build chroot ({why}): debootstrap --variant=minbase "
                 f"--include={','.join(include)} (about a minute; log {log})")
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(include)}"]
        if KEYRING.is_file():
            cmd.append(f"--keyring={KEYRING}")
        with log.open("w") as f:
            rc = subprocess.call([*cmd, suite, str(root), mirror], stdout=f,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if rc != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise KernelError(
                f"debootstrap of a {suite} chroot failed (exit {rc}): {tail[0]}",
                f"read {log}; check the network and that {mirror} has {suite}",
            )
        # a build needs neither the package caches nor apt's lists
        for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / sub).glob("*"):
                if p.is_file():
                    p.unlink()
        gcc = shutil.which("gcc", path=str(root / "usr/bin"))
        return {"suite": suite, "include": include, "gcc": gcc or ""}

    d, _ = cache.entry(rel, f"the {suite} build chroot", make, say)
    return d / "root"
