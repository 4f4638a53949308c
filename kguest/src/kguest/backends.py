"""Guest backends: how a guest starts, when it is ready, whether QEMU can save it.

* :class:`Initramfs`: QEMU boots the kernel with kguest's busybox initramfs;
  its /init loads the modules and prints the ready marker itself.
* :class:`Vng`: virtme-ng boots the kernel on a copy-on-write view of the
  host's root filesystem (Python and the host's tools are there); kguest then
  sends a setup script (modules, PATH, mounts) and waits for its own marker.

Everything that differs between the two lives here; the rest of kguest holds a
:class:`Backend` and asks it.  :data:`BACKENDS` maps the names users write
(``backend = "vng"``, ``--vm-backend``) to them.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import shlex
import shutil
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import ClassVar

from .config import BACKEND_NAMES
from .console import Console
from .errors import ConfigError
from .kernels import Kernel

READY = re.compile(r"KGUEST-READY\n")

# Kernel command line shared by all backends: panics end the guest (QEMU exits
# with -no-reboot) instead of leaving it half alive; console messages are kept
# to errors so the serial line stays fast (WARNINGs are read from the log).
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


@dataclasses.dataclass(frozen=True)
class GuestSpec:
    """Everything that defines one guest; equal specs can share a booted guest."""

    backend: Backend
    kernel: Kernel
    memory_mib: int = 2048
    cpus: int = 2
    accel: str = "tcg"
    initrd: Path | None = None
    modules: tuple[Path, ...] = ()
    test_modules: tuple[Path, ...] = ()  # in the image, for tests to load (KUnit)
    bin_dirs: tuple[Path, ...] = ()
    append: tuple[str, ...] = ()
    qemu: str = "qemu-system-x86_64"
    workdir: Path | None = None  # vng: guest cwd

    def label(self) -> str:
        extra = f" +{len(self.append)} words" if self.append else ""
        return (
            f"{self.backend.name}/{self.kernel.name}({self.kernel.version}) "
            f"{self.memory_mib}M x{self.cpus} {self.accel}{extra}"
        )

    def kernel_append(self) -> list[str]:
        """The backend-independent part of the kernel command line."""
        return [*BASE_APPEND, *(TCG_APPEND if self.accel != "kvm" else ()), *self.append]


def die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when kguest dies, so no QEMU outlives its harness."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def qemu_accel_args(accel: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def module_args(spec: GuestSpec, module: str) -> list[str]:
    """``NAME=VALUE`` parameters for ``module`` from its ``MODULE.NAME=VALUE`` words of the
    kernel command line (modprobe's convention; insmod does not read them itself)."""
    prefix = module.replace("-", "_") + "."
    return [w.removeprefix(prefix) for w in spec.append if w.startswith(prefix) and "=" in w]


def shell_functions() -> str:
    """The console shell's helpers (package data ``data/initramfs/kguest.sh``): the
    watchdog that prints a command's kernel stacks before its timeout."""
    return resources.files("kguest").joinpath("data/initramfs/kguest.sh").read_text()


@dataclasses.dataclass(frozen=True)
class Backend:
    """One way to run a guest.  Instances compare by kind (they have no fields)."""

    name: ClassVar[str]
    # why QEMU cannot save a snapshot of this kind of guest ("" when it can)
    no_snapshot: ClassVar[str] = ""
    needs_image: ClassVar[bool] = False  # an initramfs built by kguest.image

    def argv(self, spec: GuestSpec) -> list[str]:
        raise NotImplementedError

    def env(self, spec: GuestSpec) -> dict[str, str]:
        return {**os.environ, "TERM": "dumb"}

    def become_ready(self, console: Console, spec: GuestSpec, timeout: float) -> None:
        """Wait until the guest's shell runs kguest's commands; TimeoutError if not."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Initramfs(Backend):
    name: ClassVar[str] = "initramfs"
    needs_image: ClassVar[bool] = True

    def argv(self, spec: GuestSpec) -> list[str]:
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
            " ".join([*spec.kernel_append(), "rdinit=/init"]),
        ]

    def become_ready(self, console: Console, spec: GuestSpec, timeout: float) -> None:
        console.expect(READY, timeout)


@dataclasses.dataclass(frozen=True)
class Vng(Backend):
    name: ClassVar[str] = "vng"
    no_snapshot: ClassVar[str] = (
        "the vng backend runs on the host's filesystem (9p/virtiofs), "
        "which QEMU cannot save in a snapshot"
    )

    @staticmethod
    def binary() -> str:
        here = Path(sys.executable).parent / "vng"
        if here.exists():
            return str(here)
        found = shutil.which("vng")
        if not found:
            raise ConfigError(
                "vng (virtme-ng) not found", "pip install 'kguest[vng]' (virtme-ng) in the venv"
            )
        return found

    def argv(self, spec: GuestSpec) -> list[str]:
        if not spec.kernel.modules_dir.is_dir():
            raise ConfigError(
                f"vng needs the guest kernel's modules in {spec.kernel.modules_dir}",
                f"apt-get install linux-image-{spec.kernel.version}",
            )
        argv = [
            self.binary(),
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
        for a in spec.kernel_append()[1:]:
            if a not in ("quiet",):
                argv += ["--append", a]
        if spec.workdir is not None:
            argv += ["--cwd", str(spec.workdir)]
        return argv

    def env(self, spec: GuestSpec) -> dict[str, str]:
        """vng runs its helpers (virtme-run, ...) from PATH: put the venv's bin first."""
        env = super().env(spec)
        env["PATH"] = f"{Path(self.binary()).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def become_ready(self, console: Console, spec: GuestSpec, timeout: float) -> None:
        # The vng shell comes up after an unknown delay: poke until it answers.
        if not console.poke(timeout):
            raise TimeoutError("vng shell")
        console.send_line(self.setup_script(spec) + '; echo "KGUEST""-READY"')
        console.expect(READY, 120.0)
        if not console.sync(10.0):
            raise TimeoutError("vng shell after setup")

    @staticmethod
    def setup_script(spec: GuestSpec) -> str:
        """Shell lines run once the vng shell answers: the environment kguest promises."""
        lines = [
            "set +o emacs +o vi 2>/dev/null; stty -echo 2>/dev/null; unset PROMPT_COMMAND",
            "PS1=''; PS2=''; export TERM=dumb",
            "mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug",
            "mkdir -p /dev/shm; mountpoint -q /dev/shm || mount -t tmpfs tmpfs /dev/shm",
            "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup",
            shell_functions().strip(),
        ]
        if spec.bin_dirs:
            path = ":".join(shlex.quote(str(d)) for d in spec.bin_dirs)
            lines.append(f"export PATH={path}:$PATH")
        for m in spec.modules:
            q = shlex.quote(str(m))
            args = " ".join(shlex.quote(a) for a in module_args(spec, m.name.split(".ko")[0]))
            lines.append(
                f"for d in $(modinfo -F depends {q} | tr , ' '); do modprobe $d; done; "
                f"kgerr=$(insmod {q} {args} 2>&1) || "
                f'{{ echo "KGUEST""-MODULE-FAILED {m.name}: $kgerr"; dmesg | tail -n 20; }}'
            )
        return "\n".join(lines)


BACKENDS: dict[str, Backend] = {b.name: b for b in (Initramfs(), Vng())}
assert tuple(BACKENDS) == BACKEND_NAMES, "config.BACKEND_NAMES lists every backend"


def get(name: str) -> Backend:
    """The backend called ``name`` (a config value or an option)."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(
            f"backend {name!r} is not known", f"use one of {', '.join(BACKENDS)}"
        ) from None
