"""A Debian kernel package of any suite, fetched into kguest's cache.

``[tool.kguest.kernels.NAME] debian = "SUITE"`` (``flavour`` default ``amd64``):
the kernel ``linux-image-FLAVOUR`` depends on in that suite, with its headers
(``linux-headers-ABI`` and the ``-common`` and ``linux-kbuild-*`` packages they
need), downloaded with a private apt (:mod:`.apt`) and unpacked with ``dpkg-deb
-x`` into one tree of the cache; its modules are indexed with ``depmod -b`` there.
The host's /boot, /lib/modules, apt sources and package database are never
touched.  The version found the first time is kept (``KGUEST_KERNEL_REFRESH=1``
looks for a newer one).  Modules build where :mod:`.buildenv` decides.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path

from ..cache import Cache, key
from ..errors import KernelError
from ..files import atomic_write_text
from ..progress import Say
from . import buildenv
from .apt import Package, PrivateApt, unpack
from .kernel import Kernel, check_match

FORMAT = "kguest-debian-kernel-2"
REFRESH_ENV = "KGUEST_KERNEL_REFRESH"
FLAVOUR_RX = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclasses.dataclass(frozen=True)
class Selection:
    """The packages that make one Debian kernel."""

    image: Package
    headers: Package
    parts: tuple[Package, ...]  # the -common and linux-kbuild-* packages of the headers
    build_deps: tuple[str, ...]  # other dependencies of the headers (gcc-14, libelf...)

    @property
    def abi(self) -> str:
        return self.image.name.removeprefix("linux-image-")


def select(apt: PrivateApt, flavour: str) -> Selection:
    """The packages of the newest ``linux-image-FLAVOUR`` of the suite."""
    meta = apt.show(f"linux-image-{flavour}")
    images = [n for n in meta.depend_names() if n.startswith("linux-image-")]
    if not images:
        raise KernelError(
            f"linux-image-{flavour} of Debian {apt.suite} depends on no linux-image package",
            "check the flavour (apt-cache depends linux-image-FLAVOUR)",
        )
    image = apt.show(images[0])
    abi = image.name.removeprefix("linux-image-").removesuffix("-unsigned")
    headers = apt.show(f"linux-headers-{abi}")
    part_names = [n for n in headers.depend_names()
                  if n.startswith(("linux-headers-", "linux-kbuild-"))]
    parts = tuple(apt.show(n) for n in part_names)
    deps: list[str] = []
    for p in (headers, *parts):
        for n in p.depend_names():
            if not n.startswith("linux-") and n not in deps:
                deps.append(n)
    return Selection(image, headers, parts, tuple(deps))


def relocate(root: Path) -> None:
    """Debian's headers include their -common part by absolute path
    (``include /usr/src/linux-headers-X-common/Makefile``): point it into ``root``."""
    for mk in (root / "usr/src").glob("linux-headers-*/Makefile"):
        text = mk.read_text()
        fixed = re.sub(r"^include /usr/src/", f"include {root}/usr/src/", text, flags=re.M)
        if fixed != text:
            mk.write_text(fixed)


def _pin_path(cache: Cache, suite: str, flavour: str) -> Path:
    return cache.path("kernels", f"debian-{suite}-{flavour}.json")


def _unpacked(d: Path, sel: Selection, progress: Say, apt: PrivateApt) -> dict[str, object]:
    debs = apt.download([sel.image, sel.headers, *sel.parts], d / "debs")
    total = sum(p.stat().st_size for p in debs) >> 20
    progress(f"kguest: unpacking {', '.join(p.name for p in debs)} ({total} MiB)")
    root = d / "root"
    for deb in debs:
        unpack(deb, root)
    # merged-/usr packages ship usr/lib/modules: keep lib/modules valid too
    if not (root / "lib").exists() and (root / "usr/lib").is_dir():
        (root / "lib").symlink_to("usr/lib")
    vmlinuz = next(iter(sorted((root / "boot").glob("vmlinuz-*"))), None)
    if vmlinuz is None:
        raise KernelError(f"{sel.image.name} has no boot/vmlinuz-*", "an unusual package?")
    version = vmlinuz.name.removeprefix("vmlinuz-")
    kdir = root / "usr/src" / f"linux-headers-{version}"
    relocate(root)
    mods = root / "lib/modules" / version
    r = subprocess.run(["depmod", "-b", str(root), version], capture_output=True, text=True)
    if r.returncode != 0 or not (mods / "modules.dep").is_file():
        raise KernelError(f"depmod -b {root} {version} failed: {r.stderr.strip()}",
                          "apt-get install kmod")
    for deb in debs:  # unpacked: the .debs are not needed any more
        deb.unlink()
    return {
        "version": version,
        "vmlinuz": str(vmlinuz.relative_to(d)),
        "kdir": str(kdir.relative_to(d)),
        "modules": str(mods.relative_to(d)),
        "packages": {p.name: p.version for p in (sel.image, sel.headers, *sel.parts)},
        "build_deps": list(sel.build_deps),
    }


def fetch(cache: Cache, suite: str, flavour: str, say: Say) -> tuple[Path, dict[str, object]]:
    """The cache entry of the suite's kernel (found and unpacked the first time)."""
    pin = _pin_path(cache, suite, flavour)
    refresh = os.environ.get(REFRESH_ENV, "") not in ("", "0")
    if not refresh:
        try:
            rel = json.loads(pin.read_text())["entry"]
            d = cache.path(rel)
            meta = cache.complete(d)
            if meta is not None:
                return d, meta
        except (OSError, ValueError, KeyError, TypeError):
            pass
    apt = PrivateApt(cache.path("apt", suite), suite, say)
    say(f"kguest: looking up Debian {suite}'s linux-image-{flavour} (apt-get update, private "
        "lists)")
    apt.update()
    sel = select(apt, flavour)
    rel = f"kernels/debian-{suite}-{sel.abi}-{key(FORMAT, sel.image.version)}"
    what = f"Debian {suite} kernel {sel.abi} ({sel.image.version})"
    d, meta = cache.entry(rel, what, lambda dd, progress: _unpacked(dd, sel, progress, apt), say)
    atomic_write_text(pin, json.dumps({"entry": rel, "image": sel.image.name,
                                       "version": sel.image.version}) + "\n")
    return d, meta


def resolve(
    name: str, suite: str, flavour: str, cache: Cache, say: Say, timeout_mul: float = 1.0
) -> Kernel:
    if not FLAVOUR_RX.fullmatch(flavour):
        raise KernelError(f"kernel {name!r}: flavour {flavour!r} is not a Debian kernel flavour",
                          'e.g. flavour = "amd64" or "rt-amd64"')
    d, meta = fetch(cache, suite, flavour, say)
    paths = [meta.get(k) for k in ("vmlinuz", "kdir", "modules")]
    deps = meta.get("build_deps")
    if not all(isinstance(x, str) for x in paths) or not isinstance(deps, list):
        raise KernelError(f"{d}: unreadable cache entry", f"remove {d} and retry")
    vmlinuz, kdir, mods = (d / str(x) for x in paths)
    env = buildenv.choose(kdir, suite, [str(x) for x in deps], cache, say)
    k = check_match(name, vmlinuz, kdir, env.prefix)
    return dataclasses.replace(k, modules=mods, timeout_mul=timeout_mul)
