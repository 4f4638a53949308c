"""kguest's user cache: what several projects and sessions share (guest kernels, their
build environments, downloads), outside any project tree.

Where: ``$KGUEST_CACHE_DIR``, else ``$XDG_CACHE_HOME/kguest``, else ``~/.cache/kguest``.
Each entry is a directory named by a key of its content (:func:`key`), made once:
the first process to want it takes the entry's lock and makes it; every other
process (an xdist worker, another session, another project) waits for that one,
saying every 30 s what the maker last reported, and then uses its result.  An
entry is complete when its marker file exists; an incomplete one (an interrupted
or failed make) is removed and made again by the next process that wants it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from .files import atomic_write_text, file_digest
from .progress import Say

ENV = "KGUEST_CACHE_DIR"
MARKER = ".kguest-complete"
WAIT_NOTE_SECONDS = 30.0
POLL_SECONDS = 1.0  # how often a waiter tries the lock


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The cache directory for this user and environment."""
    env = os.environ if env is None else env
    if env.get(ENV):
        return Path(env[ENV]).expanduser()
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "kguest"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "kguest"


def key(*parts: str | bytes) -> str:
    """A content key: the SHA-256 of ``parts`` (each length-prefixed), 16 hex digits."""
    h = hashlib.sha256()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(f"{len(b)}\0".encode())
        h.update(b)
    return h.hexdigest()[:16]


class Progress:
    """What an entry's maker reports: said, and written where waiters read it."""

    def __init__(self, say: Say, path: Path) -> None:
        self._say = say
        self.path = path

    def __call__(self, line: str) -> None:
        self._say(line)
        with contextlib.suppress(OSError):
            atomic_write_text(self.path, line + "\n")


@dataclasses.dataclass(frozen=True)
class Cache:
    root: Path

    @classmethod
    def default(cls) -> Cache:
        return cls(cache_root())

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def digest(self, path: Path) -> str:
        """SHA-256 of a (large) file, remembered by its path, size, inode and mtime."""
        st = path.stat()
        memo = self.path(
            "digests", key(str(path.resolve()), str(st.st_size), str(st.st_ino),
                           str(st.st_mtime_ns))
        )
        with contextlib.suppress(OSError):
            return memo.read_text().strip()
        d = file_digest(path)
        with contextlib.suppress(OSError):
            atomic_write_text(memo, d + "\n")
        return d

    def complete(self, entry: Path) -> dict[str, object] | None:
        """The metadata an entry was completed with; None when it is not complete."""
        try:
            data = json.loads((entry / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else {}

    def entry(
        self,
        rel: str,
        what: str,
        make: Callable[[Path, Say], dict[str, object]],
        say: Say,
    ) -> tuple[Path, dict[str, object]]:
        """The complete entry ``rel`` (under the root) and its metadata, made by
        ``make(directory, progress)`` if no process made it before.  ``make`` returns
        the metadata to keep; what it raises propagates (the entry stays incomplete)."""
        d = self.path(rel)
        meta = self.complete(d)
        if meta is not None:
            return d, meta
        with self.lock(d.with_name(d.name + ".lock"), what, d.with_name(d.name + ".progress"),
                       say):
            meta = self.complete(d)
            if meta is not None:
                return d, meta
            if d.exists():
                say(f"kguest: {what}: removing an incomplete earlier attempt ({d})")
                remove_tree(d)
            d.mkdir(parents=True)
            progress = Progress(say, d.with_name(d.name + ".progress"))
            meta = make(d, progress)
            atomic_write_text(d / MARKER, json.dumps(meta, indent=1, sort_keys=True) + "\n")
            with contextlib.suppress(OSError):
                progress.path.unlink()
            return d, meta

    @contextlib.contextmanager
    def lock(self, path: Path, what: str, progress: Path, say: Say) -> Iterator[None]:
        """Hold ``path`` exclusively; while another process holds it, say every 30 s
        what it is doing (its last progress line)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            waited = 0.0
            last_note = time.monotonic()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if waited == 0.0:
                    say(f"kguest: {what}: another process is making it; waiting for it "
                        f"({holder(fd)})")
                time.sleep(POLL_SECONDS)
                waited += POLL_SECONDS
                if time.monotonic() - last_note >= WAIT_NOTE_SECONDS:
                    last_note = time.monotonic()
                    note = ""
                    with contextlib.suppress(OSError):
                        note = progress.read_text().strip().removeprefix("kguest: ")
                    say(f"kguest: {what}: still waiting ({waited:.0f} s){': ' if note else ''}"
                        f"{note}")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {time.time():.0f}\n".encode(), 0)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def holder(fd: int) -> str:
    """Who holds a lock file, as its holder wrote it (pid and start time)."""
    try:
        pid, started = os.pread(fd, 64, 0).decode().split()
        return f"pid {pid}, for {time.time() - float(started):.0f} s"
    except (OSError, ValueError):
        return "pid unknown"


def remove_tree(d: Path) -> None:
    """Remove a cache directory, refusing to cross into a mount (a chroot's bind mounts
    live in private namespaces, but be safe)."""
    mounts = _mounts_under(d)
    if mounts:
        raise OSError(f"{d}: something is mounted under it ({mounts[0]}); unmount it first")
    shutil.rmtree(d, ignore_errors=False)


def _mounts_under(d: Path) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    base = str(d.resolve())
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) > 1:
            mp = parts[1].replace("\\040", " ")
            if mp == base or mp.startswith(base + "/"):
                out.append(mp)
    return out
