"""Choose the accelerator: KVM only when a bounded probe boot succeeds, else TCG.

/dev/kvm existing is not enough (nested virtualisation can hang a guest at
"Booting from ROM"), so the probe boots a tiny initramfs with ``-accel kvm``
and kills QEMU after ``bound`` seconds.  The answer is cached per machine in
~/.cache/kguest/accel.json, keyed by host kernel, QEMU and /dev/kvm identity.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .backends import die_with_parent
from .errors import ConfigError
from .files import atomic_write, file_lock
from .progress import Say

PROBE_MARKER = b"KGUEST-PROBE-OK"


def cache_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kguest" / "accel.json"


def machine_key(qemu: str, kvm: Path = Path("/dev/kvm")) -> str:
    try:
        st = kvm.stat()
        kvm_id = f"kvm{st.st_rdev}"
    except OSError:
        kvm_id = "none"
    q = Path(shutil.which(qemu) or qemu)
    try:
        qid = f"{q.resolve()}:{int(q.resolve().stat().st_mtime)}"
    except OSError:
        qid = qemu
    return f"{platform.node()}|{platform.release()}|{qid}|{kvm_id}"


def probe_kvm(qemu: str, vmlinuz: Path, initrd: Path, bound: float) -> tuple[bool, str]:
    """Boot with KVM; True when the marker appears within ``bound`` seconds."""
    cmd = [
        qemu,
        "-accel",
        "kvm",
        "-cpu",
        "host",
        "-m",
        "256",
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-kernel",
        str(vmlinuz),
        "-initrd",
        str(initrd),
        "-append",
        "console=ttyS0 quiet panic=-1",
    ]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a killed harness must not leave a hung probe
        )
    except OSError as e:
        return False, f"cannot start {qemu}: {e}"
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    out = b""
    deadline = time.monotonic() + bound
    try:
        while time.monotonic() < deadline:
            chunk = proc.stdout.read()
            if chunk:
                out += chunk
                if PROBE_MARKER in out:
                    return True, "probe boot reached its marker"
            elif proc.poll() is not None:
                tail = out[-300:].decode(errors="replace")
                return False, f"qemu exited {proc.returncode}: {tail}"
            else:
                time.sleep(0.1)
        return False, f"no answer within {bound:.0f} s (KVM hangs here)"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()


def choose(
    requested: str,
    qemu: str,
    vmlinuz: Path,
    initrd_factory: Callable[[], Path],
    bound: float,
    say: Say,
    cache: Path | None = None,
) -> str:
    """``auto`` -> ``kvm`` or ``tcg``; ``kvm``/``tcg`` are returned as given."""
    if requested in ("kvm", "tcg"):
        return requested
    if requested != "auto":
        raise ConfigError(f"--accel {requested!r} is not known", "use auto, kvm or tcg")
    kvm = Path("/dev/kvm")
    if not os.access(kvm, os.R_OK | os.W_OK):
        return "tcg"
    cache = cache or cache_path()
    key = machine_key(qemu)
    with file_lock(cache.with_suffix(".lock")):
        try:
            data = json.loads(cache.read_text())
        except (OSError, ValueError):
            data = {}
        if isinstance(data.get(key), dict) and data[key].get("accel") in ("kvm", "tcg"):
            return str(data[key]["accel"])
        t0 = time.monotonic()
        say(f"kguest: probing KVM (bounded to {bound:.0f} s) ...")
        ok, why = probe_kvm(qemu, vmlinuz, initrd_factory(), bound)
        accel = "kvm" if ok else "tcg"
        say(
            f"kguest: KVM probe: {why} -> using {accel} ({time.monotonic() - t0:.1f} s; "
            f"cached in {cache}; --accel overrides)"
        )
        data[key] = {"accel": accel, "why": why, "when": time.strftime("%Y-%m-%d %H:%M:%S")}
        atomic_write(cache, (json.dumps(data, indent=1) + "\n").encode())
        return accel
