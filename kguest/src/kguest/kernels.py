"""Kernel provisioning: a small registry of named guest kernels.

A name resolves to a :class:`Kernel`: the vmlinuz to boot, the headers
directory to build modules against, the version (``uname -r``) and a command
prefix for the build (e.g. a chroot for a kernel whose headers need a newer
toolchain).  Built in: ``default`` (Debian's linux-image-amd64).  The project
declares the others in ``[tool.kguest.kernels.NAME]`` (config.KernelEntry): a
vmlinuz and headers on disk, a distribution flavour installed with apt, or a
command that provisions the kernel and writes a kernel.json describing it.
``--kernel PATH --kdir DIR`` selects an arbitrary pair.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

from .config import KernelEntry, ProjectConfig
from .errors import KernelError
from .progress import Say, step


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    vmlinuz: Path
    kdir: Path
    version: str
    build_prefix: tuple[str, ...] = ()
    modules: Path | None = None  # its /lib/modules/VER when not on the host's
    # How much slower than the default kernel tests run on it (a debug kernel
    # under TCG): test timeouts are multiplied by it, and LTP_TIMEOUT_MUL set.
    timeout_mul: float = 1.0

    @property
    def modules_dir(self) -> Path:
        """The kernel's own modules (/lib/modules/VER on the host unless ``modules``)."""
        return self.modules or Path("/lib/modules") / self.version


def vmlinuz_version(path: Path) -> str:
    """The release string embedded in an x86 bzImage (``6.1.0-56-amd64``)."""
    return vmlinuz_banner(path).split(" ", 1)[0]


def vmlinuz_banner(path: Path) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(0x10000)
    except OSError as e:
        raise KernelError(f"cannot read kernel {path}: {e}", "check the --kernel path") from e
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        raise KernelError(f"{path} is not an x86 bzImage", "pass a vmlinuz (bzImage), not vmlinux")
    off = struct.unpack_from("<H", head, 0x20E)[0] + 0x200
    banner = head[off : off + 256].split(b"\0", 1)[0].decode(errors="replace")
    if not banner:
        raise KernelError(f"{path} carries no version string", "pass a real bzImage")
    return banner


def headers_version(kdir: Path) -> str:
    """UTS_RELEASE of a kernel build/headers directory."""
    f = kdir / "include/generated/utsrelease.h"
    try:
        text = f.read_text()
    except OSError as e:
        raise KernelError(
            f"{kdir} is not a kernel build directory (no {f.name})",
            "pass --kdir /lib/modules/VER/build, or install linux-headers-VER",
        ) from e
    m = re.search(r'UTS_RELEASE\s+"([^"]+)"', text)
    if not m:
        raise KernelError(
            f"no UTS_RELEASE in {f}", "the headers package looks broken; reinstall it"
        )
    return m.group(1)


def check_match(name: str, vmlinuz: Path, kdir: Path, prefix: tuple[str, ...] = ()) -> Kernel:
    """Build a Kernel, failing before any boot when the kernel and headers differ."""
    kver = vmlinuz_version(vmlinuz)
    hver = headers_version(kdir)
    if kver != hver:
        raise KernelError(
            f"kernel {vmlinuz} is {kver} but headers {kdir} are {hver}",
            f"install linux-headers-{kver} or pass --kdir /lib/modules/{kver}/build",
        )
    # Same ABI name, different upstream patch level: modversions would refuse the module.
    banner = vmlinuz_banner(vmlinuz)
    rel = kdir / "include/config/kernel.release"
    m = re.search(r"Debian (\d+\.\d+\.\d+)", banner)
    if m and rel.is_file():
        upstream = rel.read_text().strip()
        if re.fullmatch(r"\d+\.\d+\.\d+", upstream) and upstream != m.group(1):
            raise KernelError(
                f"kernel {vmlinuz} is Debian {m.group(1)} but headers {kdir} are {upstream}",
                "upgrade both linux-image and linux-headers together (apt-get install ...)",
            )
    return Kernel(name, vmlinuz, kdir, kver, prefix)


# --- Debian flavours ------------------------------------------------------------


def _vsort_key(v: str) -> list[int | str]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", v)]


def find_debian(
    flavour: str, boot: Path = Path("/boot"), mods: Path = Path("/lib/modules")
) -> tuple[Path, Path] | None:
    """Newest /boot/vmlinuz-<abi>-<flavour> whose /lib/modules/<ver>/build exists."""
    pat = re.compile(r"vmlinuz-(\d+\.\d+\.\d+-\d+)-" + re.escape(flavour) + r"$")
    found = []
    for p in boot.glob("vmlinuz-*"):
        m = pat.match(p.name)
        if m and (mods / f"{m.group(1)}-{flavour}" / "build").is_dir():
            found.append((m.group(1), p))
    if not found:
        return None
    abi, p = max(found, key=lambda t: _vsort_key(t[0]))
    return p, mods / f"{abi}-{flavour}" / "build"


def apt_install(packages: list[str], say: Say) -> None:
    if shutil.which("apt-get") is None:
        raise KernelError("apt-get not found", f"install {' '.join(packages)} by hand")
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if os.geteuid() != 0:
        raise KernelError(
            f"{' '.join(packages)} missing and not root",
            f"run: sudo {' '.join(cmd)}",
        )
    with step(say, f"installing {' '.join(packages)} with apt (this can take minutes)"):
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-40:], line]
            if line.startswith(("Get:", "Unpacking", "Setting up")):
                say(f"  apt: {line}")
        if proc.wait() != 0:
            raise KernelError(
                "apt-get install failed:\n" + "\n".join(tail),
                f"run `apt-get update` then `{' '.join(cmd)}` and read its error",
            )


def debian_flavour(name: str, flavour: str, packages: list[str]) -> Callable[[Say], Kernel]:
    def resolve(say: Say) -> Kernel:
        hit = find_debian(flavour)
        if hit is None:
            apt_install(packages, say)
            hit = find_debian(flavour)
        if hit is None:
            raise KernelError(
                f"no /boot/vmlinuz-*-{flavour} with matching /lib/modules/VER/build",
                f"apt-get install {' '.join(packages)}",
            )
        return check_match(name, *hit)

    return resolve


def provisioned(
    name: str, command: tuple[str, ...], descriptor: Path, root: Path
) -> Callable[[Say], Kernel]:
    """A kernel that ``command`` (run in ``root``) provisions and describes in ``descriptor``.

    The command must be idempotent (quick when the kernel is there already), so it
    runs every time as root; without root the descriptor must exist.  kernel.json
    holds VMLINUZ, KDIR, MODULES_DIR, BUILD_PREFIX (a list, e.g. a chroot) and
    optionally TIMEOUT_MUL (how much slower than the default kernel tests run).
    """
    shown = " ".join(command)

    def resolve(say: Say) -> Kernel:
        if os.geteuid() != 0:
            if not descriptor.is_file():
                raise KernelError(f"kernel {name!r} is not provisioned", f"run: sudo {shown}")
        else:
            with step(say, f"provisioning kernel {name} ({shown}; minutes the first time)"):
                try:
                    proc = subprocess.run(
                        list(command),
                        cwd=root,
                        capture_output=True,
                        text=True,
                        stdin=subprocess.DEVNULL,
                    )
                except OSError as e:
                    raise KernelError(
                        f"kernel {name!r}: cannot run {shown}: {e}",
                        f"fix provision in [tool.kguest.kernels.{name}] (run in {root})",
                    ) from e
            if proc.returncode != 0:
                raise KernelError(
                    f"{shown} failed (exit {proc.returncode}):\n"
                    + "\n".join((proc.stdout + proc.stderr).splitlines()[-30:]),
                    f"run {shown} by hand and follow its 'fix:' line",
                )
        try:
            d = json.loads(descriptor.read_text())
            k = check_match(name, Path(d["VMLINUZ"]), Path(d["KDIR"]), tuple(d["BUILD_PREFIX"]))
            mods = Path(d["MODULES_DIR"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise KernelError(f"cannot read {descriptor}: {e!r}", f"rerun {shown}") from e
        try:
            mul = float(d.get("TIMEOUT_MUL") or 1)
        except ValueError as e:
            raise KernelError(f"{descriptor}: TIMEOUT_MUL is not a number", f"rerun {shown}") from e
        return dataclasses.replace(k, modules=mods, timeout_mul=mul)

    return resolve


class Registry:
    """Named kernels: ``default`` plus the project's [tool.kguest.kernels]."""

    def __init__(self, entries: tuple[KernelEntry, ...] = (), root: Path = Path(".")) -> None:
        self._resolvers: dict[str, Callable[[Say], Kernel]] = {
            "default": debian_flavour(
                "default", "amd64", ["linux-image-amd64", "linux-headers-amd64"]
            ),
        }
        for e in entries:
            self._resolvers[e.name] = self._entry(e, root)

    @staticmethod
    def _entry(e: KernelEntry, root: Path) -> Callable[[Say], Kernel]:
        if e.provision:
            return provisioned(e.name, e.provision, root / e.descriptor, root)
        if e.flavour:
            return debian_flavour(e.name, e.flavour, list(e.packages))

        def resolve(say: Say) -> Kernel:
            return check_match(e.name, Path(e.vmlinuz), Path(e.kdir), e.build_prefix)

        return resolve

    def names(self) -> list[str]:
        return list(self._resolvers)

    def resolve(self, name: str, say: Say) -> Kernel:
        if name not in self._resolvers:
            raise KernelError(
                f"unknown kernel {name!r}",
                f"use one of {', '.join(self._resolvers)}, declare it in "
                f"[tool.kguest.kernels.{name}], or pass --kernel PATH --kdir DIR",
            )
        return self._resolvers[name](say)


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
        return dataclasses.replace(
            check_match(k.name, k.vmlinuz, Path(kdir), k.build_prefix), modules=k.modules
        )
    return k
