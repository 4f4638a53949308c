"""Helpers for sfork's tests that boot a guest of their own with extra files in it.

kguest's image builder has no "extra files" option: it packs busybox, the configured
modules and the configured bin_dirs.  The kernel accepts several concatenated cpio
archives as one initramfs (later files win), so :func:`boot_with_overlay` boots the
project's ordinary image (no project module) followed by a small archive of our own:
test programs, modules at paths of our choice, and optionally a ``/lib/modules``
tree indexed by ``depmod -b`` so that ``modprobe`` finds what we put there.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from kguest import config, image
from kguest.config import ProjectConfig
from kguest.guest import Guest
from kguest.kernels import Kernel
from kguest.options import Options
from kguest.progress import to_stderr
from kguest.provision import Provisioner

ROOT = Path(__file__).resolve().parent.parent

# Files of the kernel's /lib/modules/VER that depmod reads besides the modules.
DEPMOD_INPUTS = ("modules.builtin", "modules.builtin.modinfo", "modules.order")
# What kmod/'s sources are: the rest is kbuild's, which a build running beside the
# copy (another worker's) creates and deletes as it goes (.tmp_* files among them).
KMOD_SOURCES = ("*.c", "*.h", "Kbuild", "Makefile", "dkms.conf")
KBUILD_PRODUCTS = ("*.mod.c",)


def _not_sources(directory: str, names: list[str]) -> set[str]:
    """copytree's ``ignore``: every name but the sources and their directories."""
    keep = {
        n
        for n in names
        if not n.startswith(".")
        and not any(fnmatch.fnmatch(n, p) for p in KBUILD_PRODUCTS)
        and (
            any(fnmatch.fnmatch(n, p) for p in KMOD_SOURCES)
            or os.path.isdir(os.path.join(directory, n))
        )
    }
    return set(names) - keep


def copy_kmod(dest: Path) -> Path:
    """kmod/'s sources (no build products) copied to ``dest``."""
    shutil.copytree(ROOT / "kmod", dest, ignore=_not_sources)
    return dest


def project_config() -> ProjectConfig:
    return config.load(ROOT)


def provisioner(pytestconfig: pytest.Config, worker: str) -> Provisioner:
    """kguest's provisioning chain as the pytest options ask for it, without the
    project's module in the image (the tests decide which module the guest gets)."""
    o = pytestconfig.option
    return Provisioner(
        project_config(),
        Options(
            backend="initramfs",
            kernel=o.kernel,
            kdir=o.kdir,
            accel=o.accel,
            build=not o.no_build,
            modules=False,
            qemu=o.qemu,
        ),
        to_stderr,
        worker=worker,
    )


def stage_file(stage: Path, guest_path: str, host: Path) -> None:
    dest = stage / guest_path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(host, dest)


def add_module_tree(stage: Path, kernel: Kernel, modules: Mapping[str, Path]) -> None:
    """Put ``modules`` (path relative to /lib/modules/VER -> host .ko) into the stage
    and index them with ``depmod -b`` so that ``modprobe NAME`` works in the guest."""
    mdir = stage / "lib/modules" / kernel.version
    mdir.mkdir(parents=True, exist_ok=True)
    for name in DEPMOD_INPUTS:
        src = kernel.modules_dir / name
        if src.is_file():
            shutil.copy2(src, mdir / name)
    for rel, host in modules.items():
        stage_file(stage, f"lib/modules/{kernel.version}/{rel}", host)
    r = subprocess.run(["depmod", "-b", str(stage), kernel.version], capture_output=True, text=True)
    assert r.returncode == 0, f"depmod -b {stage} failed:\n{r.stderr}"


def boot_with_overlay(
    prov: Provisioner,
    stage: Path,
    memory_mib: int = 1024,
    cpus: int = 2,
) -> Guest:
    """Boot the project's initramfs (as ``prov`` provisions it) with the tree ``stage``
    on top, without a snapshot (a guest of one test).  The caller closes the guest (or
    uses it as a context manager)."""
    spec = prov.spec("initramfs")
    assert spec.initrd is not None
    initrd = image.with_overlay(prov.cfg, spec.initrd, stage)
    spec = dataclasses.replace(spec, initrd=initrd, memory_mib=memory_mib, cpus=cpus)
    return prov.new_guest(spec, snapshots=False).boot()


def ltp_status(status: int) -> str:
    """The LTP exit bitmask in words (1 FAIL, 2 BROK, 4 WARN, 32 CONF)."""
    if status < 0 or status > 255:
        return f"status {status}"
    bits = [n for b, n in ((1, "TFAIL"), (2, "TBROK"), (4, "TWARN"), (32, "TCONF")) if status & b]
    return f"exit {status} ({'|'.join(bits) or ('pass' if status == 0 else 'not LTP')})"
