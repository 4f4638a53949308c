"""What the host has: its Debian suite, its installed kernels, its compilers and
build tools, and apt for the host's own packages (the ``default`` kernel, tools)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import KernelError
from ..progress import Say, step


def suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's Debian suite (``VERSION_CODENAME``), "" when it has none."""
    try:
        text = os_release.read_text()
    except OSError:
        return ""
    m = re.search(r'^VERSION_CODENAME="?([A-Za-z0-9.-]*)"?$', text, re.M)
    return m.group(1) if m else ""


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


def gcc_major(version_text: str) -> int | None:
    """``"gcc-14 (Debian 14.2.0-19) 14.2.0"`` or ``"140200"`` -> 14 (None: not gcc)."""
    if re.fullmatch(r"\d{5,6}", version_text):
        return int(version_text) // 10000
    m = re.search(r"\bgcc\b.*?(\d+)\.\d+(?:\.\d+)?\s*$", version_text)
    return int(m.group(1)) if m else None


def compilers(path: str | None = None) -> dict[int, str]:
    """The host's gcc programs by major version: {12: "gcc-12", ...}."""
    out: dict[int, str] = {}
    names = {"gcc"}
    for d in (path or os.environ.get("PATH", "/usr/bin:/bin")).split(":"):
        try:
            names |= {n for n in os.listdir(d) if re.fullmatch(r"gcc-\d+", n)}
        except OSError:
            continue
    for n in sorted(names):
        exe = shutil.which(n, path=path)
        if exe is None:
            continue
        try:
            v = subprocess.run([exe, "-dumpfullversion"], capture_output=True, text=True,
                               timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if re.match(r"\d+", v):
            out.setdefault(int(v.split(".")[0]), n)
    return out


def compiler_text(cc: str = "gcc") -> str:
    """The first line of ``cc --version`` (what a kernel built here records)."""
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError, IndexError) as e:
        raise KernelError(f"cannot run {cc} --version: {e}",
                          "apt-get install build-essential") from e


def missing_packages(wanted: dict[str, str]) -> list[str]:
    """The packages of ``{program or absolute file: package}`` whose thing is absent."""
    out = []
    for thing, pkg in wanted.items():
        present = Path(thing).exists() if thing.startswith("/") else shutil.which(thing)
        if not present and pkg not in out:
            out.append(pkg)
    return out


def apt_install(packages: list[str], say: Say) -> None:
    """Install host packages with the host's apt (tools and the ``default`` kernel)."""
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


def ensure_tools(wanted: dict[str, str], why: str, say: Say) -> None:
    """Install what ``wanted`` ({program or file: package}) lacks, as root with apt;
    otherwise a one-line error naming the packages."""
    missing = missing_packages(wanted)
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise KernelError(
            f"{why} needs {', '.join(missing)}, which the host lacks",
            f"install them: sudo apt-get install {' '.join(missing)}",
        )
    apt_install(missing, say)
    still = missing_packages(wanted)
    if still:
        raise KernelError(f"{why}: {', '.join(still)} still missing after apt-get install",
                          f"install them by hand: apt-get install {' '.join(still)}")
