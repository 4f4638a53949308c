"""Guest snapshots: save a guest once at its ready point, restore it in about a second.

A snapshot is QEMU's migration stream of a ready guest (modules loaded, the
console shell at its ready marker, dmesg read), written once to
``snapshots/<key>.vmstate`` of kguest's user cache over QMP (``migrate
exec:cat > FILE``); the guest that saved it goes on running.  A restore
starts a new QEMU with the same command line plus ``-incoming exec:cat
FILE``.  The initramfs guest has no disk, so the stream is the whole guest
and a restoring QEMU only *reads* the file: every xdist worker restores from
the one file at the same time, and no file is ever written by two QEMUs
(there is no writable image to overlay or copy).

The key is a hash of everything that shapes the guest: the QEMU command line
with each file in it (kernel, initramfs: modules, binaries) replaced by the
hash of its content, and QEMU's version.  Another kernel, module, image,
memory size, CPU count, accelerator or command-line word gives another key; a
snapshot whose inputs changed or vanished is deleted, and only the newest
:data:`KEEP` are kept (each costs roughly the guest's used memory on disk).

Not possible, said once per process, then the guest boots as before: the vng
backend (its root is the host's filesystem over 9p/virtiofs, which QEMU does
not migrate), and a QEMU whose QMP lacks ``migrate`` (or has no QMP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .backends import GuestSpec
from .errors import KguestError
from .files import file_digest, file_lock
from .progress import Say

FORMAT = "kguest-snapshot-1"
KEEP = 12  # snapshots kept on disk, for every project of the user (newest used first)
SAVE_TIMEOUT = 120.0
RESTORE_TIMEOUT = 60.0
MAX_RESTORE_FAILURES = 2  # per key and process; then this process boots that guest
LEFTOVER_AGE = 600.0  # seconds: a partial save older than this was abandoned


class SnapshotError(KguestError):
    """Saving or restoring did not work; the caller boots instead."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one guest start uses snapshots: its key and the file that holds (or will hold) it."""

    key: str
    state: Path
    argv: tuple[str, ...]  # the command line the key was computed from
    family: str  # the same guest but for its image's content: a newer key supersedes

    @property
    def meta(self) -> Path:
        return self.state.with_suffix(".json")

    @property
    def lock(self) -> Path:
        return self.state.with_name(f".{self.key}.lock")


class Qmp:
    """A minimal QMP client over a unix socket: one command at a time, events skipped."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise SnapshotError(f"no QMP socket at {path}: {e}") from e
                time.sleep(0.1)
        self.f = self.sock.makefile("rw", encoding="utf-8")
        self._reply()  # the greeting
        self.command("qmp_capabilities")

    def _reply(self) -> dict[str, Any]:
        while True:
            line = self.f.readline()
            if not line:
                raise SnapshotError("QEMU closed the QMP connection")
            msg: dict[str, Any] = json.loads(line)
            if "event" not in msg:
                return msg

    def command(self, name: str, **args: Any) -> Any:
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        r = self._reply()
        if "error" in r:
            raise SnapshotError(f"QMP {name}: {r['error'].get('desc', r['error'])}")
        return r.get("return")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()
            self.sock.close()


class SnapshotStore:
    """This process's view of the snapshot directory (one per Provisioner).

    The store plans (which file holds a guest), builds the command lines that
    save and restore, saves over QMP and deletes stale files.  The guest
    decides when to restore and when to boot (Guest.boot()); the store never
    starts or stops a guest itself.
    """

    def __init__(self, directory: Path, say: Say) -> None:
        self.dir = directory
        self.say = say
        self.said: set[str] = set()  # lines said once
        self._digests: dict[tuple[str, int, int], str] = {}
        self._qemu: dict[str, tuple[str, str]] = {}  # binary -> (version, why not)
        self._broken: set[str] = set()  # keys that failed this process: boot instead
        self._restore_failures: dict[str, int] = {}
        self.saved: list[dict[str, Any]] = []  # what this process saved (for bench-harness)

    def say_once(self, line: str) -> None:
        if line not in self.said:
            self.said.add(line)
            self.say(line)

    def unsupported(self, spec: GuestSpec) -> str:
        """Why ``spec`` cannot use snapshots ("" when it can)."""
        if spec.backend.no_snapshot:
            return spec.backend.no_snapshot
        if spec.qemu not in self._qemu:
            self._qemu[spec.qemu] = probe_qemu(spec.qemu)
        return self._qemu[spec.qemu][1]

    # --- plans ---------------------------------------------------------------------

    def digest(self, path: Path) -> str:
        st = path.stat()
        k = (str(path), st.st_size, st.st_mtime_ns)
        if k not in self._digests:
            self._digests[k] = file_digest(path)
        return self._digests[k]

    def plan(self, spec: GuestSpec, argv: list[str]) -> Plan | None:
        """Where the snapshot of the guest ``argv`` starts lives; None when this guest
        cannot have one (said once, with the reason) or saving it failed here before."""
        why = self.unsupported(spec)
        if why:
            self.say_once(f"kguest: snapshots off for {spec.label()}: {why}; booting instead")
            return None
        version = self._qemu[spec.qemu][0]
        h = hashlib.sha256()
        h.update(f"{FORMAT}\0{spec.backend.name}\0{version}\0".encode())
        for a in argv:
            p = Path(a)
            word = f"file:{self.digest(p)}" if p.is_absolute() and p.is_file() else a
            h.update(f"{len(word)}\0{word}\0".encode())
        key = h.hexdigest()[:24]
        if key in self._broken:
            return None
        # Same family: everything equal but the initramfs (another build of
        # the same project's modules and binaries), which the new key replaces.
        fam = hashlib.sha256(f"{FORMAT}\0{spec.backend.name}\0{spec.qemu}".encode())
        for a in argv:
            word = "<initrd>" if spec.initrd is not None and a == str(spec.initrd) else a
            fam.update(f"{len(word)}\0{word}\0".encode())
        return Plan(key, self.dir / f"{key}.vmstate", tuple(argv), fam.hexdigest()[:24])

    def lock(self, plan: Plan) -> contextlib.AbstractContextManager[None]:
        """Held while one process boots and saves ``plan``: the others wait, then restore."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return file_lock(plan.lock)

    # --- restore --------------------------------------------------------------------

    @staticmethod
    def restore_argv(plan: Plan) -> list[str]:
        """The command line of a QEMU that starts from ``plan``'s file."""
        return [*plan.argv, "-incoming", f"exec:cat {shlex.quote(str(plan.state))}"]

    def restored(self, plan: Plan, label: str, seconds: float) -> None:
        os.utime(plan.state)
        self.say(f"kguest: booting {label} from its snapshot: done in {seconds:.1f} s")

    def restore_failed(self, plan: Plan, why: str) -> None:
        """A damaged file is saved again by the boot that follows; twice is a pattern:
        this process then boots that guest every time."""
        n = self._restore_failures.get(plan.key, 0) + 1
        self._restore_failures[plan.key] = n
        if n >= MAX_RESTORE_FAILURES:
            self._broken.add(plan.key)
        plan.state.unlink(missing_ok=True)
        self.say(f"kguest: restoring {plan.state.name} failed ({why}); booting instead")

    # --- save -----------------------------------------------------------------------

    @staticmethod
    @contextlib.contextmanager
    def qmp_socket() -> Iterator[Path]:
        """A path for the QMP socket of a guest that will be saved (removed after)."""
        sockdir = Path(tempfile.mkdtemp(prefix="kguest-qmp-"))
        try:
            yield sockdir / "qmp.sock"
        finally:
            shutil.rmtree(sockdir, ignore_errors=True)

    @staticmethod
    def save_argv(plan: Plan, sock: Path) -> list[str]:
        """The command line of a QEMU that boots ``plan``'s guest and can be saved."""
        return [*plan.argv, "-qmp", f"unix:{sock},server=on,wait=off"]

    def save(self, plan: Plan, sock: Path, label: str) -> dict[str, Any]:
        """Save the running guest behind ``sock``; it goes on running.  Returns what was
        recorded; SnapshotError when it failed (that key is then not tried again here)."""
        t0 = time.monotonic()
        tmp = plan.state.with_name(f".{plan.state.name}.{os.getpid()}.tmp")
        qmp: Qmp | None = None
        try:
            qmp = Qmp(sock)
            qmp.command("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
            qmp.command("migrate", uri=f"exec:cat > {shlex.quote(str(tmp))}")
            status = ""
            deadline = time.monotonic() + SAVE_TIMEOUT
            while time.monotonic() < deadline:
                info = qmp.command("query-migrate") or {}
                status = info.get("status", "")
                if status in ("completed", "failed", "cancelled"):
                    break
                time.sleep(0.05)
            # after a migration the source is paused: run it again either way
            qmp.command("cont")
            if status != "completed":
                raise SnapshotError(f"migration to {tmp} ended as {status or 'timeout'}")
            os.replace(tmp, plan.state)
        except (OSError, ValueError, SnapshotError) as e:
            self._broken.add(plan.key)
            self.say_once(f"kguest: cannot save a snapshot of {label}: {e}")
            raise SnapshotError(str(e)) from e
        finally:
            if qmp is not None:
                qmp.close()
            tmp.unlink(missing_ok=True)
        took = time.monotonic() - t0
        size = plan.state.stat().st_size
        meta: dict[str, Any] = {
            "format": FORMAT,
            "key": plan.key,
            "family": plan.family,
            "label": label,
            "argv": list(plan.argv),
            "inputs": {a: _stamp(Path(a)) for a in plan.argv if _is_file(a)},
            "bytes": size,
            "save_s": round(took, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        plan.meta.write_text(json.dumps(meta, indent=1) + "\n")
        self.saved.append(meta)
        self.say(f"kguest: saved a snapshot of {label} ({size / 1e6:.0f} MB, {took:.1f} s)")
        self.prune(keep_key=plan.key, family=plan.family)
        return meta

    # --- stale snapshots ------------------------------------------------------------

    def prune(self, keep_key: str = "", family: str = "", keep: int = KEEP) -> list[Path]:
        """Delete stale snapshots: those of ``family`` other than ``keep_key`` (a newer
        image replaced theirs), those whose input files changed or vanished, and
        all but the newest ``keep``."""
        removed: list[Path] = []
        states = sorted(self.dir.glob("*.vmstate"), key=lambda p: _mtime(p), reverse=True)
        for i, state in enumerate(states):
            if state.stem == keep_key:
                continue
            meta = state.with_suffix(".json")
            if i >= keep or stale(meta) or (family and _family(meta) == family):
                removed.append(state)
                with contextlib.suppress(OSError):
                    state.unlink()
                    state.with_suffix(".json").unlink(missing_ok=True)
                    state.with_name(f".{state.stem}.lock").unlink(missing_ok=True)
        for meta in self.dir.glob("*.json"):
            if not meta.with_suffix(".vmstate").exists():
                meta.unlink(missing_ok=True)
        for tmp in self.dir.glob(".*.tmp"):  # a save killed half-way
            if time.time() - _mtime(tmp) > LEFTOVER_AGE:
                removed.append(tmp)
                tmp.unlink(missing_ok=True)
        return removed


def stale(meta: Path) -> bool:
    """A snapshot is stale when a file it was made from changed or is gone."""
    try:
        inputs = json.loads(meta.read_text())["inputs"]
    except (OSError, ValueError, KeyError, TypeError):
        return True
    return any(_stamp(Path(p)) != stamp for p, stamp in inputs.items())


def _family(meta: Path) -> str:
    try:
        return str(json.loads(meta.read_text()).get("family", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _is_file(a: str) -> bool:
    p = Path(a)
    return p.is_absolute() and p.is_file()


def _stamp(p: Path) -> list[int]:
    try:
        st = p.stat()
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns]


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def probe_qemu(qemu: str, timeout: float = 20.0) -> tuple[str, str]:
    """(version, "") when ``qemu`` offers QMP with ``migrate``; ("", why) otherwise."""
    exe = shutil.which(qemu) or qemu
    script = "".join(
        json.dumps({"execute": c}) + "\n"
        for c in ("qmp_capabilities", "query-version", "query-commands", "quit")
    )
    try:
        r = subprocess.run(
            [exe, "-nodefaults", "-machine", "none", "-display", "none", "-qmp", "stdio"],
            input=script,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return "", f"{qemu} could not be probed ({e})"
    replies = []
    for line in r.stdout.splitlines():
        with contextlib.suppress(ValueError):
            msg = json.loads(line)
            if isinstance(msg, dict) and "return" in msg:
                replies.append(msg["return"])
    if len(replies) < 3 or not isinstance(replies[2], list):
        err = (r.stderr.strip().splitlines() or ["no QMP answer"])[-1]
        return "", f"{qemu} offers no QMP ({err})"
    names = {c.get("name") for c in replies[2] if isinstance(c, dict)}
    if not {"migrate", "query-migrate", "cont"} <= names:
        return "", f"{qemu}'s QMP has no migrate command"
    v = replies[1] if isinstance(replies[1], dict) else {}
    q = v.get("qemu", {})
    return f"{q.get('major')}.{q.get('minor')}.{q.get('micro')} {v.get('package', '')}".strip(), ""
