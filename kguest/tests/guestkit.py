"""Helpers for the self-tests: kguest's provisioning chain for a guest of the tests' own
choosing, the troublemaker module built for it, and an inner pytest session in a
project made by a test (with its JUnit results)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kguest import config
from kguest.kernels import Kernel
from kguest.options import Options
from kguest.progress import to_stderr
from kguest.provision import Provisioner

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent  # kguest's own project ([tool.kguest])


def provisioner(pytestconfig: pytest.Config, worker: str) -> Provisioner:
    """kguest's provisioning chain as the pytest options ask for it, for the tests'
    own project (no build, no module: each test decides what the guest gets)."""
    o = pytestconfig.option
    return Provisioner(
        config.load(ROOT),
        Options(
            backend="initramfs",
            kernel=o.kernel,
            kdir=o.kdir,
            accel=o.accel,
            build=False,
            modules=False,
            qemu=o.qemu,
        ),
        to_stderr,
        worker=worker,
    )


def inner_pytest(
    proj: Path,
    junit: Path,
    kernel: Kernel,
    accel: str,
    timeout: float,
    args: tuple[str, ...] = ("scenarios",),
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run pytest with ``args`` (default: ``scenarios``) in the project ``proj`` (one
    worker, no cache) on ``kernel``; its results go to the JUnit XML ``junit``.  Its
    kguest cache (snapshots) is ``proj/kguest-cache``, not the user's; ``extra_env`` adds
    to its environment."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q"]
    cmd += [f"--junitxml={junit}", "--kernel", str(kernel.vmlinuz), "--kdir", str(kernel.kdir)]
    cmd += ["--accel", accel, *args]
    # The inner session is a test subject: CI=true (a skip fails) only when a test asks.
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["KGUEST_CACHE_DIR"] = str(proj / "kguest-cache")
    env.update(extra_env or {})
    return subprocess.run(cmd, cwd=proj, capture_output=True, text=True, timeout=timeout, env=env)


def build_troublemaker(kdir: Path, out: Path, name: str = "troublemaker") -> Path:
    """tests/troublemaker built against ``kdir`` in ``out`` (as ``name``.ko)."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "troublemaker/troublemaker.c", out / "troublemaker.c")
    kbuild = (
        "obj-m := troublemaker.o\n"
        if name == "troublemaker"
        else (f"obj-m := {name}.o\n{name}-y := troublemaker.o\n")
    )
    (out / "Kbuild").write_text(kbuild)
    r = subprocess.run(
        ["make", "-C", str(kdir), f"M={out}", "modules"], capture_output=True, text=True
    )
    assert r.returncode == 0, f"building troublemaker failed:\n{r.stdout}\n{r.stderr}"
    return out / f"{name}.ko"


def junit_results(junit: Path) -> dict[str, tuple[str, str, str]]:
    """item name -> (outcome, failure/skip text, system-out) from a JUnit XML file."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome, text, sysout = "passed", "", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = child.tag
                text = child.text or child.get("message") or ""
            elif child.tag == "system-out":
                sysout = child.text or ""
        out[case.get("name", "")] = (outcome, text, sysout)
    return out
