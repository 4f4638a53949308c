"""One running guest: boot it, run commands, watch the kernel, shut it down.

This is also the Python API (see kguest/README.md)::

    with kguest.boot(backend="initramfs", memory_mib=2048, cpus=2) as g:
        r = g.run("uname -r", timeout=30)
        data = g.read_file("/sys/module/hello/parameters/reads")  # e.g. examples/hello
"""

from __future__ import annotations

import base64
import dataclasses
import re
import signal
import time
from pathlib import Path

import pexpect

from .backends import (
    GuestSpec,
    die_with_parent,
    initramfs_argv,
    spawn_env,
    vng_argv,
    vng_setup_script,
)
from .console import CommandResult, Console, ConsoleLog
from .errors import BootError, CommandTimeout, GuestDied, KguestError
from .progress import Say, quiet, step
from .snapshot import SnapshotStore
from .trouble import PATTERNS, Trouble, bad_taint, scan

READY = re.compile(r"KGUEST-READY\n")
MODULE_FAILED = re.compile(r"KGUEST-MODULE-FAILED (\S+)")


@dataclasses.dataclass(frozen=True)
class TestRun:
    """A command run as a test: its result plus what the kernel did meanwhile."""

    result: CommandResult | None
    trouble: Trouble
    died: str = ""  # console text when the guest died or hung
    timed_out: bool = False  # the command was interrupted (the guest is restarted after it)
    stuck: str = ""  # tasks left in D state after the interrupt, with kernel stacks
    kernel_log: str = ""  # the dmesg part new during this test

    @property
    def ok_guest(self) -> bool:
        return not self.died and not self.trouble


class Guest:
    def __init__(
        self,
        spec: GuestSpec,
        log_path: Path | None = None,
        say: Say = quiet,
        boot_timeout: float = 180.0,
        max_output: int = 256 * 1024,
        allowed_taint: str = "OE",
        snapshots: SnapshotStore | None = None,
    ) -> None:
        self.spec = spec
        self.say = say
        self.boot_timeout = boot_timeout
        self.max_output = max_output
        self.allowed_taint = allowed_taint
        self.log = ConsoleLog(log_path)
        self.child: pexpect.spawn | None = None
        self.console: Console | None = None
        self.boot_seconds = 0.0
        self.boots = 0
        self._last_taint = 0
        self._argv: list[str] = []
        self.snapshots = snapshots
        self.started_from = ""  # "boot" or "restore": how the running guest started
        self.tests_run = 0  # run_test() calls since it started

    # --- lifecycle -------------------------------------------------------------

    def argv(self) -> list[str]:
        return (
            initramfs_argv(self.spec) if self.spec.backend == "initramfs" else vng_argv(self.spec)
        )

    def boot(self) -> Guest:
        argv = self.argv()
        t0 = time.monotonic()
        if self.snapshots is None or not self.snapshots.start(self, argv):
            with step(self.say, f"booting {self.spec.label()}"):
                self.launch(argv)
                self.become_ready()
            self.started_from = "boot"
        self.boot_seconds = time.monotonic() - t0
        self.boots += 1
        self.tests_run = 0
        return self

    def launch(self, argv: list[str]) -> None:
        """Start QEMU (or vng) with ``argv``, its console on our pty."""
        self.log.note("boot: " + " ".join(argv))
        self._argv = argv
        try:
            self.child = pexpect.spawn(
                argv[0],
                argv[1:],
                echo=False,
                timeout=None,
                dimensions=(50, 250),
                env=spawn_env(self.spec),
                preexec_fn=die_with_parent,
            )
        except pexpect.ExceptionPexpect as e:
            raise BootError(
                f"cannot start {argv[0]}: {e}",
                "install qemu-system-x86, or pass --qemu PATH",
            ) from None
        self.console = Console(self.child, self.log, self.max_output)

    def become_ready(self) -> None:
        """Wait for the ready marker of a launched guest, check its modules and kernel."""
        assert self.console is not None
        argv = self._argv
        try:
            if self.spec.backend == "vng":
                self._vng_ready()
            else:
                self.console.expect(READY, self.boot_timeout)
        except (TimeoutError, GuestDied) as e:
            text = self.log.recent[-20000:]
            self.kill()
            raise BootError(
                f"guest {self.spec.label()} did not become ready in {self.boot_timeout:.0f} s"
                if isinstance(e, TimeoutError)
                else f"guest {self.spec.label()} exited during boot",
                f"read the console below (full log: {self.log.path}); try the same "
                f"command by hand: {' '.join(argv)}",
                console=text,
            ) from e
        failed = MODULE_FAILED.search(self.log.recent)
        if failed:
            text = self.log.recent[-8000:]
            self.kill()
            raise BootError(
                f"module {failed.group(1)} failed to load in the guest",
                "read the modprobe error and dmesg below; check the module "
                "was built for this kernel (make build KDIR=...)",
                console=text,
            )
        self._baseline()

    def _vng_ready(self) -> None:
        assert self.console is not None
        # The vng shell comes up after an unknown delay: poke until it answers.
        if not self.console.poke(self.boot_timeout):
            raise TimeoutError("vng shell")
        self.console.send_line(vng_setup_script(self.spec) + '; echo "KGUEST""-READY"')
        self.console.expect(READY, 120.0)
        if not self.console.sync(10.0):
            raise TimeoutError("vng shell after setup")

    def _baseline(self) -> None:
        """Boot-time kernel trouble (e.g. while loading the module) stops the session."""
        pat = "|".join(PATTERNS)
        r = self.run(f"cat /proc/sys/kernel/tainted; dmesg -c | grep -E -A 30 '{pat}'", timeout=60)
        lines = r.output.splitlines()
        excerpts = scan("\n".join(lines[1:]))
        taint = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
        self._last_taint = taint
        if excerpts or bad_taint(0, taint, self.allowed_taint):
            text = "\n".join(excerpts) or f"taint {taint:#x}"
            self.shutdown()
            raise BootError(
                "the kernel reported trouble while booting / loading modules",
                "fix the module's init path; the kernel's words follow",
                console=text,
            )

    @property
    def alive(self) -> bool:
        return self.child is not None and self.child.isalive()

    def kill(self) -> None:
        if self.child is not None:
            try:
                if self.child.isalive():
                    self.child.kill(signal.SIGKILL)
                self.child.close(force=True)
            except (OSError, pexpect.ExceptionPexpect):
                pass
        self.child = None
        self.console = None

    def shutdown(self, timeout: float = 15.0) -> None:
        """Power off cleanly when possible, else kill QEMU."""
        if self.alive and self.console is not None:
            try:
                self.console.send_line("sync; poweroff -f")
                assert self.child is not None
                self.child.expect(pexpect.EOF, timeout=timeout)
            except (pexpect.ExceptionPexpect, OSError):
                pass
        self.kill()
        self.log.note("shut down")

    def close(self) -> None:
        self.shutdown()
        self.log.close()

    def __enter__(self) -> Guest:
        if not self.alive:
            self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- commands --------------------------------------------------------------

    def _con(self) -> Console:
        if self.console is None or not self.alive:
            raise GuestDied(
                "the guest is not running",
                "boot it (Guest.boot()) first",
                console=self.log.recent[-8000:],
            )
        return self.console

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run a shell command; output is stdout+stderr, capped.  Raises on timeout/death."""
        return self._con().run(command, timeout)

    def check(self, command: str, timeout: float = 60.0) -> CommandResult:
        r = self.run(command, timeout)
        if r.status != 0:
            raise KguestError(
                f"`{command}` exited {r.status}:\n{r.output}", "see the command's output above"
            )
        return r

    def read_file(self, path: str, timeout: float = 120.0) -> bytes:
        """Copy a guest file out (base64 over the console)."""
        q = path.replace("'", "'\\''")
        r = self.run(f"base64 '{q}'", timeout)
        if r.status != 0 or r.truncated:
            raise KguestError(
                f"cannot read {path} from the guest: {r.output[-500:]}",
                "check the path; files larger than the output cap need chunking",
            )
        return base64.b64decode("".join(r.output.split()))

    # --- a command as a test ---------------------------------------------------

    def run_test(self, command: str, timeout: float) -> TestRun:
        """Run ``command`` between two looks at taint and the kernel log.

        Kernel messages or taint that appeared between the previous test's last
        look and this test's first one (e.g. from deferred freeing) are reported
        on this test, marked as such: they are never dropped.
        """
        con = self._con()
        self.tests_run += 1
        pre = con.run(LOOK, 60)
        before, pre_log = _look(pre.output)
        between = Trouble(
            bad_taint(self._last_taint, before, self.allowed_taint),
            tuple(scan(pre_log)),
            note="between the previous test and this one (probably caused by "
            "the previous test or its cleanup)",
            allowed=self.allowed_taint,
        )
        mark = self.log.total
        try:
            result = con.run(command, timeout)
        except GuestDied as e:
            text = self.log.since(mark)
            return TestRun(
                None, between or Trouble(excerpts=tuple(scan(text))), died=_tail(text or e.console)
            )
        except CommandTimeout as e:
            if not e.recovered:
                text = self.log.since(mark)
                return TestRun(
                    None,
                    between or Trouble(excerpts=tuple(scan(text))),
                    died=f"{e.message}\n--- output so far ---\n{e.output}\n"
                    f"--- console since the test started ---\n{_tail(text)}",
                    timed_out=True,
                )
            result = CommandResult(command, e.output + "\n[kguest: interrupted by ^C]", -1, timeout)
            timed_out = True
            stuck = self._stuck_tasks()
        else:
            timed_out = False
            stuck = ""
        try:
            post = con.run(LOOK, 60)
        except (GuestDied, CommandTimeout) as e:
            text = self.log.since(mark)
            return TestRun(result, Trouble(excerpts=tuple(scan(text))), died=f"{_tail(text)}\n{e}")
        after, klog = _look(post.output)
        self._last_taint = after
        trouble = between or Trouble(
            bad_taint(before, after, self.allowed_taint),
            tuple(scan(klog)),
            allowed=self.allowed_taint,
        )
        return TestRun(
            result,
            trouble,
            timed_out=timed_out,
            stuck=stuck,
            kernel_log=(pre_log + klog) if between else klog,
        )

    def _stuck_tasks(self) -> str:
        """Tasks in uninterruptible sleep, with their kernel stacks (after a timeout)."""
        script = (
            "for s in /proc/[0-9]*/status; do d=${s%/status}; "
            "grep -q '^State:.D' $s 2>/dev/null || continue; "
            'echo "pid ${d#/proc/} $(cat $d/comm) (D state):"; cat $d/stack 2>/dev/null; done'
        )
        try:
            return self._con().run(script, 30).output.strip()
        except (GuestDied, CommandTimeout):
            return "(could not list tasks: the guest stopped answering)"


# One look at the kernel: its taint, tagged so that a console message cannot be
# mistaken for it, and the log since the last look.
LOOK = 'echo "KGTAINT $(cat /proc/sys/kernel/tainted)"; dmesg -c'
_TAINT_RX = re.compile(r"^KGTAINT (\d+)$", re.M)


def _look(output: str) -> tuple[int, str]:
    m = _TAINT_RX.search(output)
    if m is None:
        raise GuestDied(
            "could not read /proc/sys/kernel/tainted",
            "the guest's shell is broken; it is restarted",
            console=output,
        )
    return int(m.group(1)), output[: m.start()] + output[m.end() + 1 :]


def _tail(text: str, n: int = 12000) -> str:
    return text[-n:]
