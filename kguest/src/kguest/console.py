"""The serial console protocol, over a pexpect child (QEMU or vng).

Each command is sent as one shell line::

    echo KG""BEG-<id>; ( eval '<cmd>' ) </dev/null 2>&1; echo KG""END-<id>-$?

The empty quotes keep the markers out of any echo of the line itself, so a
marker on the console is always the shell's output.  Output between the two
markers is the command's; its size is capped (head and tail kept).  The
subshell keeps ``exit`` or ``cd`` in one command from touching the next.

A command run with a watchdog (``watch=True``, the tests') starts the console
shell's ``kguest_watch`` beside it: shortly before the timeout, if the
command still runs, that prints the state and kernel stack of each of its
processes into the output, so a timeout says where the command was stuck.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import shlex
import time
from pathlib import Path
from typing import Protocol

import pexpect

from .errors import CommandTimeout, GuestDied


class Child(Protocol):
    """What Console needs from a pexpect.spawn."""

    def read_nonblocking(self, size: int = ..., timeout: float | None = ...) -> bytes: ...

    def send(self, s: str | bytes) -> int: ...

    def isalive(self) -> bool: ...


def watch_seconds(timeout: float) -> int:
    """When the watchdog of a command with ``timeout`` prints its stacks: late enough
    that a command close to its limit is left alone, early enough that the stacks
    reach the host before the timeout on a busy guest (0: too short to watch)."""
    margin = min(max(3.0, timeout * 0.25), 10.0)
    return int(timeout - margin) if timeout - margin >= 1 else 0


@dataclasses.dataclass(frozen=True)
class CommandResult:
    command: str
    output: str
    status: int
    duration: float
    truncated: int = 0  # bytes dropped by the cap


class CappedText:
    """Keep the first and last ``cap/2`` characters of a stream."""

    def __init__(self, cap: int) -> None:
        self.cap = max(cap, 64)
        self.head: list[str] = []
        self.head_len = 0
        self.tail = ""
        self.dropped = 0

    def add(self, s: str) -> None:
        half = self.cap // 2
        if self.head_len < half:
            take = s[: half - self.head_len]
            self.head.append(take)
            self.head_len += len(take)
            s = s[len(take) :]
        if not s:
            return
        self.tail += s
        if len(self.tail) > half:
            self.dropped += len(self.tail) - half
            self.tail = self.tail[-half:]

    def text(self) -> str:
        head = "".join(self.head)
        if self.dropped:
            return f"{head}\n[... kguest: {self.dropped} characters dropped ...]\n{self.tail}"
        return head + self.tail


class ConsoleLog:
    """Everything the console printed, in a file capped at ``cap`` bytes, plus a recent tail."""

    def __init__(self, path: Path | None, cap: int = 64 * 1024 * 1024, recent: int = 256 * 1024):
        self.path = path
        self.cap = cap
        self.written = 0
        self.recent_cap = recent
        self.recent = ""
        self.total = 0  # characters seen so far: a mark for since()
        self._f = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._f = path.open("a", encoding="utf-8", errors="replace")

    def add(self, s: str) -> None:
        self.total += len(s)
        self.recent = (self.recent + s)[-self.recent_cap :]
        if self._f is None:
            return
        if self.written < self.cap:
            chunk = s[: self.cap - self.written]
            self._f.write(chunk)
            self._f.flush()
            self.written += len(chunk)
            if self.written >= self.cap:
                self._f.write("\n[kguest: console log cap reached; further output not logged]\n")
                self._f.flush()

    def since(self, mark: int) -> str:
        """Console text after ``mark`` (a former ``total``), as far as ``recent`` reaches."""
        n = self.total - mark
        return self.recent[-n:] if n > 0 else ""

    def note(self, s: str) -> None:
        """A line from kguest itself, marked so it cannot be mistaken for guest output."""
        if self._f is not None:
            self._f.write(f"\n## kguest {time.strftime('%H:%M:%S')}: {s}\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class Console:
    def __init__(
        self,
        child: Child,
        log: ConsoleLog,
        max_output: int = 256 * 1024,
        interrupt_grace: float = 15.0,
    ) -> None:
        self.child = child
        self.interrupt_grace = interrupt_grace
        self.log = log
        self.max_output = max_output
        self._pending = ""  # console text read but not consumed yet
        self._seq = 0
        self._token = secrets.token_hex(3)

    def _new_id(self) -> str:
        self._seq += 1
        return f"{self._token}{self._seq}"

    def _read(self, timeout: float) -> str:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return ""
        except pexpect.EOF as e:
            raise GuestDied(
                "the guest exited (panic, reboot or QEMU died)",
                "read the console text below; the guest is restarted for the next test",
                console=self.log.recent,
            ) from e
        text = data.decode("utf-8", errors="replace").replace("\r", "")
        self.log.add(text)
        return text

    def expect(
        self, pattern: re.Pattern[str], timeout: float, sink: CappedText | None = None
    ) -> re.Match[str]:
        """Consume console text up to and including ``pattern``; earlier text goes to ``sink``.

        Raises TimeoutError (builtin) when the pattern does not show in time and
        GuestDied on EOF.
        """
        deadline = time.monotonic() + timeout
        keep = 512  # a marker split across reads is at most this long
        buf = self._pending
        self._pending = ""
        while True:
            m = pattern.search(buf)
            if m:
                if sink is not None:
                    sink.add(buf[: m.start()])
                self._pending = buf[m.end() :]
                return m
            if len(buf) > keep:
                if sink is not None:
                    sink.add(buf[:-keep])
                buf = buf[-keep:]
            left = deadline - time.monotonic()
            if left <= 0:
                if sink is not None:
                    sink.add(buf)
                else:
                    self._pending = buf
                raise TimeoutError(pattern.pattern)
            try:
                buf += self._read(min(left, 1.0))
            except GuestDied:
                if sink is not None:
                    sink.add(buf)
                raise

    def send_line(self, line: str) -> None:
        self.log.note(f"send: {line[:200]}")
        self.child.send(line + "\n")

    def sync(self, timeout: float = 10.0) -> bool:
        """True when the shell answers an echo within ``timeout``."""
        tok = self._new_id()
        self.send_line(f'echo KG""SYNC-{tok}')
        try:
            self.expect(re.compile(rf"KGSYNC-{tok}\n"), timeout)
        except TimeoutError:
            return False
        return True

    def poke(self, timeout: float, every: float = 5.0) -> bool:
        """Until ``timeout``: send an echo every ``every`` s until any of them comes
        back (a shell that is still starting loses or queues input), then drain
        the queue with one more sync."""
        deadline = time.monotonic() + timeout
        prefix = f"KGPOKE-{self._token}"
        any_poke = re.compile(rf"{prefix}-\d+\n")
        while time.monotonic() < deadline:
            self.send_line(f'echo KG""POKE-{self._token}-{self._seq}')
            self._seq += 1
            try:
                self.expect(any_poke, min(every, max(deadline - time.monotonic(), 0.1)))
            except TimeoutError:
                continue
            return self.sync(max(deadline - time.monotonic(), 30.0))
        return False

    def run(self, command: str, timeout: float, watch: bool = False) -> CommandResult:
        """Run ``command`` in the guest shell; return its output and exit status.

        ``watch``: print the command's kernel stacks into its output shortly before
        ``timeout`` if it still runs then (see the module's docstring)."""
        cid = self._new_id()
        body = f"eval {shlex.quote(command)}"
        lead = watch_seconds(timeout) if watch else 0
        if lead:
            # The subshell's own pid (read is a builtin, so /proc/self is the subshell),
            # and a watcher that is not its child (a test may wait for all its children).
            body = f"read -r kgp _ </proc/self/stat; ( kguest_watch {lead} $kgp & ); {body}"
        line = f'echo KG""BEG-{cid}; ( {body} ) </dev/null 2>&1; echo KG""END-{cid}-$?'
        t0 = time.monotonic()
        sink = CappedText(self.max_output)
        self.send_line(line)
        try:
            self.expect(re.compile(rf"KGBEG-{cid}\n"), min(timeout, 60.0))
            m = self.expect(re.compile(rf"KGEND-{cid}-(\d+)\n"), timeout, sink)
        except TimeoutError as e:
            out = sink.text()
            recovered = self.interrupt()
            raise CommandTimeout(
                f"command timed out after {timeout:.0f} s: {command}",
                "raise its timeout, or find why it hangs"
                + ("" if recovered else "; the guest stopped answering and will be restarted"),
                output=out,
                recovered=recovered,
            ) from e
        return CommandResult(
            command, sink.text(), int(m.group(1)), time.monotonic() - t0, sink.dropped
        )

    def interrupt(self) -> bool:
        """Send ^C and check that the shell answers again."""
        self.log.note("timeout: sending ^C")
        try:
            self.child.send(b"\x03")
            time.sleep(0.5)
            return self.sync(self.interrupt_grace)
        except GuestDied:
            return False
