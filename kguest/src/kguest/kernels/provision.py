"""A kernel the project provides itself: a command that provisions it (run in the
project root, idempotent) and the descriptor it writes, or a vmlinuz and headers
already on disk."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

from ..config import kernel_table as table
from ..errors import KernelError
from ..progress import Say, step
from .kernel import Kernel, check_match


def provisioned(
    name: str, command: tuple[str, ...], descriptor: Path, root: Path, say: Say
) -> Kernel:
    """A kernel that ``command`` (run in ``root``) provisions and describes in ``descriptor``.

    The command must be idempotent (quick when the kernel is there already), so it
    runs every time as root; without root the descriptor must exist.  kernel.json
    holds VMLINUZ, KDIR, MODULES_DIR, BUILD_PREFIX (a list, e.g. a chroot) and
    optionally TIMEOUT_MUL (how much slower than the default kernel tests run).
    """
    shown = " ".join(command)
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
                    f"fix provision in {table(name)} (run in {root})",
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


def on_disk(
    name: str, vmlinuz: Path, kdir: Path, prefix: tuple[str, ...], timeout_mul: float = 1.0
) -> Kernel:
    """A vmlinuz and its headers already on disk (a kernel you built yourself)."""
    return dataclasses.replace(check_match(name, vmlinuz, kdir, prefix), timeout_mul=timeout_mul)
