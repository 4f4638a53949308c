"""Helpers for the self-tests: kguest's provisioning chain for a guest of the tests' own
choosing, and an inner pytest session in a project made by a test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kguest import config
from kguest.kernels import Kernel
from kguest.options import Options
from kguest.progress import to_stderr
from kguest.provision import Provisioner

ROOT = Path(__file__).resolve().parent.parent  # kguest's own project ([tool.kguest])


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
    proj: Path, junit: Path, kernel: Kernel, accel: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``pytest scenarios`` in the project ``proj`` (one worker, no cache) on
    ``kernel``; its results go to the JUnit XML ``junit``."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q"]
    cmd += [f"--junitxml={junit}", "--kernel", str(kernel.vmlinuz), "--kdir", str(kernel.kdir)]
    cmd += ["--accel", accel, "scenarios"]
    return subprocess.run(cmd, cwd=proj, capture_output=True, text=True, timeout=timeout)
