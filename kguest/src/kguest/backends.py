"""Guest backends: the command line that starts a guest with its console on stdio.

* ``initramfs``: QEMU boots the kernel with kguest's busybox initramfs; /init
  prints the ready marker itself.
* ``vng``: virtme-ng boots the kernel on a copy-on-write view of the host's
  root filesystem (Python and the host's tools are there); kguest then sends
  a setup script (modules, PATH, mounts) and its own ready marker.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import shlex
import shutil
import signal
import sys
from pathlib import Path

from .errors import ConfigError
from .kernels import Kernel

# Kernel command line shared by all backends: panics end the guest (QEMU exits
# with -no-reboot) instead of leaving it half alive; console messages are kept
# to errors so the serial line stays fast (WARNINGs are read from dmesg).
BASE_APPEND = (
    "console=ttyS0",
    "quiet",
    "loglevel=4",
    "panic=-1",
    "oops=panic",
    "panic_on_warn=0",
    "printk.devkmsg=on",
)

# Under TCG a starved vCPU thread loses seconds of guest time at once: the
# RCU stall (21 s) and soft-lockup (20 s) detectors then report emulation,
# not the kernel.  Their longest settings still catch a real stall or
# lockup, after 300 s and 120 s.
TCG_APPEND = ("rcupdate.rcu_cpu_stall_timeout=300", "watchdog_thresh=60")


def kernel_append(spec: GuestSpec) -> list[str]:
    """The backend-independent part of the kernel command line."""
    return [*BASE_APPEND, *(TCG_APPEND if spec.accel != "kvm" else ()), *spec.append]


@dataclasses.dataclass(frozen=True)
class GuestSpec:
    """Everything that defines one guest; equal specs can share a booted guest."""

    backend: str
    kernel: Kernel
    memory_mib: int = 2048
    cpus: int = 2
    accel: str = "tcg"
    initrd: Path | None = None
    modules: tuple[Path, ...] = ()
    bin_dirs: tuple[Path, ...] = ()
    append: tuple[str, ...] = ()
    qemu: str = "qemu-system-x86_64"
    workdir: Path | None = None  # vng: guest cwd

    def label(self) -> str:
        return (
            f"{self.backend}/{self.kernel.name}({self.kernel.version}) "
            f"{self.memory_mib}M x{self.cpus} {self.accel}"
        )


def die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when kguest dies, so no QEMU outlives its harness."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def qemu_accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def initramfs_argv(spec: GuestSpec) -> list[str]:
    if spec.initrd is None:
        raise ConfigError("initramfs backend without an image", "build one with kguest.image")
    return [
        spec.qemu,
        *qemu_accel_args(spec.accel),
        "-m",
        str(spec.memory_mib),
        "-smp",
        str(spec.cpus),
        "-nodefaults",
        "-no-reboot",
        "-display",
        "none",
        "-monitor",
        "none",
        "-chardev",
        "stdio,id=con,signal=off,mux=off",
        "-serial",
        "chardev:con",
        "-kernel",
        str(spec.kernel.vmlinuz),
        "-initrd",
        str(spec.initrd),
        "-append",
        " ".join([*kernel_append(spec), "rdinit=/init"]),
    ]


def vng_binary() -> str:
    here = Path(sys.executable).parent / "vng"
    if here.exists():
        return str(here)
    found = shutil.which("vng")
    if not found:
        raise ConfigError("vng (virtme-ng) not found", "pip install virtme-ng in the venv")
    return found


def vng_argv(spec: GuestSpec) -> list[str]:
    if not spec.kernel.modules_dir.is_dir():
        raise ConfigError(
            f"vng needs the guest kernel's modules in {spec.kernel.modules_dir}",
            f"apt-get install linux-image-{spec.kernel.version}",
        )
    argv = [
        vng_binary(),
        "--run",
        str(spec.kernel.vmlinuz),
        "--memory",
        f"{spec.memory_mib}M",
        "--cpus",
        str(spec.cpus),
        "--qemu",
        shutil.which(spec.qemu) or spec.qemu,
        "--user",
        "root",
        "--disable-monitor",
        "--qemu-opts=-no-reboot",
        "--shell",
        "/bin/sh",  # no .bashrc, no readline
    ]
    if spec.accel != "kvm":
        argv.append("--disable-kvm")
    for a in kernel_append(spec)[1:]:
        if a not in ("quiet",):
            argv += ["--append", a]
    if spec.workdir is not None:
        argv += ["--cwd", str(spec.workdir)]
    return argv


def spawn_env(spec: GuestSpec) -> dict[str, str]:
    """vng runs its helpers (virtme-run, ...) from PATH: put the venv's bin first."""
    env = {**os.environ, "TERM": "dumb"}
    if spec.backend == "vng":
        env["PATH"] = f"{Path(vng_binary()).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def module_args(spec: GuestSpec, module: str) -> list[str]:
    """``NAME=VALUE`` parameters for ``module`` from its ``MODULE.NAME=VALUE`` words of the
    kernel command line (modprobe's convention; insmod does not read them itself)."""
    prefix = module.replace("-", "_") + "."
    return [w.removeprefix(prefix) for w in spec.append if w.startswith(prefix) and "=" in w]


def vng_setup_script(spec: GuestSpec) -> str:
    """Shell lines run once the vng shell answers: the environment HACKING.md promises."""
    lines = [
        "set +o emacs +o vi 2>/dev/null; stty -echo 2>/dev/null; unset PROMPT_COMMAND",
        "PS1=''; PS2=''; export TERM=dumb",
        "mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug",
        "mkdir -p /dev/shm; mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm",
        "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup",
    ]
    if spec.bin_dirs:
        path = ":".join(shlex.quote(str(d)) for d in spec.bin_dirs)
        lines.append(f"export PATH={path}:$PATH")
    for m in spec.modules:
        q = shlex.quote(str(m))
        args = " ".join(shlex.quote(a) for a in module_args(spec, m.name.split(".ko")[0]))
        lines.append(
            f"for d in $(modinfo -F depends {q} | tr , ' '); do modprobe $d; done; "
            f'insmod {q} {args} || echo "KGUEST""-MODULE-FAILED {m.name}"'
        )
    return "; ".join(lines)
