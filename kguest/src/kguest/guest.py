"""One running guest: start it (restored from its snapshot, or booted), run commands,
watch the kernel, shut it down.

This is also the Python API (see kguest's README)::

    with kguest.boot(backend="initramfs", memory_mib=2048, cpus=2) as g:
        r = g.run("uname -r", timeout=30)
        data = g.read_file("/sys/module/hello/parameters/reads")
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import re
import secrets
import shlex
import signal
import time
from pathlib import Path

import pexpect

from . import kmemleak
from .backends import GuestSpec, die_with_parent
from .console import CommandResult, Console, ConsoleLog
from .errors import BootError, CommandTimeout, GuestDied, KguestError
from .progress import Say, quiet, step
from .sanitizers import unknown_parameters
from .snapshot import RESTORE_TIMEOUT, Plan, SnapshotError, SnapshotStore
from .trouble import Trouble, bad_taint, scan

MODULE_FAILED = re.compile(r"KGUEST-MODULE-FAILED ([^\s:]+):? ?(.*)")
READ_CHUNK = 96 * 1024  # raw bytes per console read: its base64 stays under the output cap


@dataclasses.dataclass(frozen=True)
class TestRun:
    """A command run as a test: its result plus what the kernel did meanwhile."""

    result: CommandResult | None
    trouble: Trouble
    died: str = ""  # console text when the guest died or hung
    timed_out: bool = False  # the command was interrupted (the guest is restarted after it)
    stuck: str = ""  # tasks left in D state after the interrupt, with kernel stacks
    kernel_log: str = ""  # the kernel's log during this test (the guest's dmesg keeps it too)

    @property
    def ok_guest(self) -> bool:
        return not self.died and not self.trouble

    @property
    def output(self) -> str:
        """The command's output (a TestRun that kguest_run returned always has one)."""
        if self.result is None:
            raise KguestError("the command did not finish: the guest died", self.died[-500:])
        return self.result.output

    @property
    def status(self) -> int:
        """The command's exit status."""
        if self.result is None:
            raise KguestError("the command did not finish: the guest died", self.died[-500:])
        return self.result.status


class Guest:
    """A guest of one :class:`GuestSpec`.  It owns its QEMU: :meth:`boot` starts it
    (from a snapshot when ``snapshots`` has one, else cold, saving one for next time),
    :meth:`close` powers it off.  Build guests with ``Provisioner.new_guest()``, which
    applies the project's configuration."""

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
        self.snapshots = snapshots
        self.log = ConsoleLog(log_path)
        self.child: pexpect.spawn | None = None
        self.console: Console | None = None
        self.boot_seconds = 0.0
        self.boots = 0
        self.started_from = ""  # "boot" or "restore": how the running guest started
        self.saved_snapshot = False  # whether this boot saved the snapshot later guests restore
        self.tests_run = 0  # run_test() calls since it started
        self._last_taint = 0
        self._marks = 0
        self._token = secrets.token_hex(3)
        self._kmemleak: bool | None = None  # whether the kernel has kmemleak, on
        # run_test() asks kmemleak for each test's leaks (where the kernel has it);
        # an owner that checks leaks its own way turns this off
        self.check_leaks = True

    # --- lifecycle -------------------------------------------------------------

    def boot(self) -> Guest:
        """Start the guest: restore its snapshot when there is one, else boot it (and,
        where snapshots are possible, save one once it is ready)."""
        t0 = time.monotonic()
        self.saved_snapshot = False
        argv = self.spec.backend.argv(self.spec)
        store = self.snapshots
        plan = store.plan(self.spec, argv) if store is not None else None
        if store is None or plan is None:
            with step(self.say, f"booting {self.spec.label()}"):
                self._launch(argv)
                self._become_ready()
            self.started_from = "boot"
        elif not (plan.state.is_file() and self._restore(store, plan)):
            with store.lock(plan):
                # another worker may have saved it while we waited for the lock
                if not (plan.state.is_file() and self._restore(store, plan)):
                    self._boot_and_save(store, plan)
        self.boot_seconds = time.monotonic() - t0
        self.boots += 1
        self.tests_run = 0
        self._kmemleak = None
        return self

    def _launch(self, argv: list[str]) -> None:
        """Start QEMU (or vng) with ``argv``, its console on our pty."""
        self.log.note("boot: " + " ".join(argv))
        try:
            self.child = pexpect.spawn(
                argv[0],
                argv[1:],
                echo=False,
                timeout=None,
                dimensions=(50, 250),
                env=self.spec.backend.env(self.spec),
                preexec_fn=die_with_parent,
            )
        except pexpect.ExceptionPexpect as e:
            raise BootError(
                f"cannot start {argv[0]}: {e}",
                "install qemu-system-x86, or pass --qemu PATH",
            ) from None
        self.console = Console(self.child, self.log, self.max_output)

    def _become_ready(self) -> None:
        """Wait for a launched guest's shell, check its modules and its kernel."""
        con = self.console
        assert con is not None
        try:
            self.spec.backend.become_ready(con, self.spec, self.boot_timeout)
        except (TimeoutError, GuestDied) as e:
            text = self.log.recent[-20000:]
            self.kill()
            raise BootError(
                f"guest {self.spec.label()} did not become ready in {self.boot_timeout:.0f} s"
                if isinstance(e, TimeoutError)
                else f"guest {self.spec.label()} exited during boot",
                f"read the console below (full log: {self.log.path})",
                console=text,
            ) from e
        failed = MODULE_FAILED.search(self.log.recent)
        if failed:
            text = self.log.recent[failed.start() :][-8000:]
            self.kill()
            raise BootError(
                f"module {failed.group(1)} failed to load in the guest: {failed.group(2)}",
                "the modprobe error and the kernel's last words follow",
                console=text,
            )
        self._baseline()

    def _restore(self, store: SnapshotStore, plan: Plan) -> bool:
        """Start from ``plan``'s snapshot and resynchronise; False (and the guest
        stopped) when that did not work."""
        t0 = time.monotonic()
        self.log.note(f"restoring snapshot {plan.state}")
        try:
            self._launch(store.restore_argv(plan))
            con = self.console
            assert con is not None
            # Input sent before the incoming migration finishes may be lost:
            # poke until an echo comes back, then drain with one more sync.
            if not con.poke(RESTORE_TIMEOUT, every=0.3):
                raise SnapshotError(f"no console answer {RESTORE_TIMEOUT:.0f} s after -incoming")
            # The guest's wall clock stopped at the snapshot; its RNG state is
            # the same in every restored copy: set the one, stir the other.
            con.run(
                f"date -s @{int(time.time())} >/dev/null; "
                f"echo {secrets.token_hex(32)} > /dev/urandom",
                30,
            )
            self._baseline()
        except (SnapshotError, GuestDied, CommandTimeout, BootError, TimeoutError) as e:
            self.kill()
            store.restore_failed(plan, str(e).splitlines()[0])
            return False
        self.started_from = "restore"
        store.restored(plan, self.spec.label(), time.monotonic() - t0)
        return True

    def _boot_and_save(self, store: SnapshotStore, plan: Plan) -> None:
        """Boot with a QMP socket, save a snapshot once ready, and go on running."""
        with store.qmp_socket() as sock:
            with step(self.say, f"booting {self.spec.label()} (a snapshot follows)"):
                self._launch(store.save_argv(plan, sock))
                self._become_ready()
            self.started_from = "boot"
            try:
                meta = store.save(plan, sock, self.spec.label())
                self.saved_snapshot = True
                self.log.note(f"saved snapshot {plan.state} ({meta['bytes']} bytes)")
            except SnapshotError as e:
                self.log.note(f"no snapshot: {e}")
        if not self.alive or self.console is None or not self.console.sync(30.0):
            raise BootError(
                "the guest stopped answering after its snapshot was saved",
                f"read the console log {self.log.path}; --no-snapshots boots without them",
                console=self.log.recent[-8000:],
            )

    def _baseline(self) -> None:
        """Trouble while booting or loading modules (up to the first mark) stops here, as
        does a kernel command-line word of the project's that this kernel does not know
        (it would reach /init as an environment variable and change nothing)."""
        taint, log = self._look("ready")
        self._last_taint = taint
        unknown = unknown_parameters(log)
        theirs = sorted(set(unknown) & set(self.spec.append))
        if theirs:
            self.shutdown()
            raise BootError(
                f"kernel {self.spec.kernel.name} ({self.spec.kernel.version}) does not "
                f"know the command-line word(s) {' '.join(theirs)}: it passed them to "
                "user space, so they would change nothing",
                "use a kernel built with what they configure, or drop them",
                console=f'Unknown kernel command line parameters "{" ".join(unknown)}"',
            )
        excerpts = scan(log)
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
        """Copy a guest file out, whatever its size: compressed in the guest, then read
        in base64 pieces that each fit the console's output cap."""
        q = shlex.quote(path)
        gz = shlex.quote(f"/tmp/.kguest-read-{self._token}.gz")
        size = self.run(f"gzip -c {q} > {gz} && wc -c < {gz}", timeout)
        if size.status != 0 or not size.output.strip().isdigit():
            self.run(f"rm -f {gz}", 30)
            raise KguestError(
                f"cannot read {path} from the guest: {size.output[-500:]}",
                "check the path (and that the guest has room in /tmp)",
            )
        total = int(size.output)
        data = bytearray()
        try:
            for off in range(0, total, READ_CHUNK):
                r = self.run(
                    f"dd if={gz} bs=1024 skip={off // 1024} count={READ_CHUNK // 1024} "
                    "2>/dev/null | base64",
                    timeout,
                )
                if r.status != 0 or r.truncated:
                    raise KguestError(
                        f"cannot read {path} from the guest: {r.output[-500:]}",
                        "check the guest's console log",
                    )
                data += base64.b64decode("".join(r.output.split()))
        finally:
            self.run(f"rm -f {gz}", 30)
        if len(data) != total:
            raise KguestError(f"{path}: read {len(data)} of {total} bytes", "try again")
        return gzip.decompress(bytes(data))

    # --- a command as a test ---------------------------------------------------

    def _look(self, what: str) -> tuple[int, str]:
        """Mark the kernel's log; return the taint and the log since the previous mark.

        The log itself is left alone (a test's own ``dmesg`` sees everything); the
        marks, ``kguest: --- WHAT (id) ---`` lines, show where each test began."""
        self._marks += 1
        mark = f"{what} ({self._token}-{self._marks})"
        out = self._con().run(f"kguest_look {shlex.quote(mark)}", 60).output
        m = _TAINT_RX.search(out)
        if m is None:
            raise GuestDied(
                "could not read /proc/sys/kernel/tainted",
                "the guest's shell is broken; it is restarted",
                console=out,
            )
        return int(m.group(1)), out[: m.start()] + out[m.end() + 1 :]

    def run_test(self, command: str, timeout: float, name: str = "") -> TestRun:
        """Run ``command`` between two looks at taint and the kernel log.

        Kernel messages or taint that appeared between the previous test's last
        look and this test's first one (e.g. from deferred freeing) are reported
        on this test, marked as such: they are never dropped.  ``name`` labels the
        marks in the kernel's log.
        """
        con = self._con()
        self.tests_run += 1
        label = f"test {name or command[:60]}"
        before, pre_log = self._look(f"{label} begins")
        between = Trouble(
            bad_taint(self._last_taint, before, self.allowed_taint),
            tuple(scan(pre_log)),
            note="between the previous test and this one (probably caused by "
            "the previous test or its cleanup)",
            allowed=self.allowed_taint,
        )
        leak_start = self._leak_clock() if self.check_leaks else None
        mark = self.log.total
        try:
            result = con.run(command, timeout, watch=True)
        except GuestDied as e:
            text = self.log.since(mark)
            return TestRun(
                None,
                between or Trouble(excerpts=tuple(scan(_tail(text)))),
                died=_tail(text or e.console),
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
            after, klog = self._look(f"{label} ends")
        except (GuestDied, CommandTimeout) as e:
            text = self.log.since(mark)
            return TestRun(result, Trouble(excerpts=tuple(scan(text))), died=f"{_tail(text)}\n{e}")
        self._last_taint = after
        leaks = self._leaks(leak_start) if leak_start is not None else ()
        trouble = between or Trouble(
            bad_taint(before, after, self.allowed_taint),
            (*scan(klog), *leaks),
            allowed=self.allowed_taint,
        )
        return TestRun(
            result,
            trouble,
            timed_out=timed_out,
            stuck=stuck,
            kernel_log=(pre_log + klog) if between else klog,
        )

    def _leak_clock(self) -> int | None:
        """The guest's jiffies when its kernel has kmemleak (a test's start), else None."""
        run = self._guest_output
        if self._kmemleak is None:
            self._kmemleak = kmemleak.available(run)
            if self._kmemleak:
                kmemleak.clear(run)  # what booting left is no test's
        return kmemleak.jiffies(run) if self._kmemleak else None

    def _leaks(self, start: int) -> tuple[str, ...]:
        """kmemleak's reports of the objects allocated since ``start`` and unreferenced
        now, each with its allocation backtrace; costs two scans and about 5 s."""
        run = self._guest_output
        window = kmemleak.Window(start, kmemleak.jiffies(run))
        found = kmemleak.check(run, window, time.monotonic())
        return tuple(
            "kmemleak: " + leak.summary() + "\n" + "\n".join(f"    {f}" for f in leak.backtrace)
            for leak in found
        )

    def _guest_output(self, command: str) -> str:
        return self._con().run(command, KMEMLEAK_TIMEOUT).output

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


# One kmemleak scan of a KASAN guest under TCG takes up to a minute or two.
KMEMLEAK_TIMEOUT = 240.0

# The taint line of kguest_look, tagged so that a console message cannot be mistaken for it.
_TAINT_RX = re.compile(r"^KGTAINT (\d+)$", re.M)


_MARKER_RX = re.compile(r"^KG(BEG|END|SYNC|POKE)-\S*\n?", re.M)


def _tail(text: str, n: int = 12000) -> str:
    """The end of the console text, without kguest's own markers."""
    return _MARKER_RX.sub("", text)[-n:]
