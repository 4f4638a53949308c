"""A guest kernel: the vmlinuz to boot, the headers to build modules against, and the
checks that they belong together (read from the files, no boot needed)."""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

from ..errors import KernelError


@dataclasses.dataclass(frozen=True)
class Kernel:
    name: str
    vmlinuz: Path
    kdir: Path
    version: str
    # a command prefix that runs a module build where it must run (e.g. kguest's
    # chroot runner for a kernel whose headers need another toolchain); () = the host
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


def config_value(kdir: Path, symbol: str) -> str | None:
    """A value of the headers' ``.config`` (``CONFIG_GCC_VERSION`` -> ``"140200"``),
    quotes removed; None when unset or when there is no ``.config``."""
    try:
        text = (kdir / ".config").read_text(errors="replace")
    except OSError:
        return None
    m = re.search(rf"^{re.escape(symbol)}=(.*)$", text, re.M)
    return m.group(1).strip('"') if m else None


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
