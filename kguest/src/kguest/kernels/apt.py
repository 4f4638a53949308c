"""Debian packages of any suite, fetched with the host's apt but a private state:
its own sources list, package lists and download cache under kguest's cache, an
empty dpkg status.  The host's apt sources, lists and installed packages are never
read or changed; nothing is installed, packages are only downloaded (and then
unpacked with ``dpkg-deb -x`` by the caller)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import KernelError
from ..progress import Say

MIRROR_ENV = "KGUEST_DEBIAN_MIRROR"
SECURITY_ENV = "KGUEST_DEBIAN_SECURITY_MIRROR"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
SUITE_RX = re.compile(r"[a-z][a-z0-9.-]*")


@dataclasses.dataclass(frozen=True)
class Package:
    name: str
    version: str
    depends: tuple[tuple[str, ...], ...]  # each a list of alternatives (names only)
    size: int = 0

    def depend_names(self) -> list[str]:
        """The first alternative of each dependency."""
        return [alts[0] for alts in self.depends if alts]


def parse_depends(field: str) -> tuple[tuple[str, ...], ...]:
    """``"a (>= 1), b | c:any"`` -> ``(("a",), ("b", "c"))``."""
    out = []
    for part in field.split(","):
        alts = tuple(
            re.split(r"[\s(:\[]", a.strip(), maxsplit=1)[0] for a in part.split("|") if a.strip()
        )
        if alts:
            out.append(alts)
    return tuple(out)


def parse_show(text: str) -> Package | None:
    """The first stanza of ``apt-cache show`` output."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        m = re.match(r"^([A-Za-z-]+):\s?(.*)$", line)
        if m:
            fields[m.group(1)] = m.group(2)
    if "Package" not in fields or "Version" not in fields:
        return None
    deps = parse_depends(fields.get("Pre-Depends", "") + "," + fields.get("Depends", ""))
    return Package(fields["Package"], fields["Version"], deps, int(fields.get("Size", "0") or 0))


class PrivateApt:
    """apt for one Debian suite, with all its state in ``root``."""

    def __init__(self, root: Path, suite: str, say: Say) -> None:
        if not SUITE_RX.fullmatch(suite):
            raise KernelError(f"{suite!r} is not a Debian suite name", 'e.g. "trixie"')
        self.root = root
        self.suite = suite
        self.say = say
        self.mirror = os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR
        self.security = os.environ.get(SECURITY_ENV) or DEFAULT_SECURITY
        for d in ("lists/partial", "archives/partial", "etc/parts"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "status").touch()

    def _options(self) -> list[str]:
        r = self.root
        opts = {
            "Dir::Etc::sourcelist": r / "etc/sources.list",
            "Dir::Etc::sourceparts": r / "etc/parts",
            "Dir::Etc::preferences": r / "etc/preferences",
            "Dir::Etc::preferencesparts": r / "etc/parts",
            "Dir::State::lists": r / "lists",
            "Dir::State::status": r / "status",
            "Dir::Cache": r / "cache",
            "Dir::Cache::archives": r / "archives",
            "Acquire::Languages": "none",
            "Acquire::Retries": "3",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
            "Debug::NoLocking": "1",
        }
        if os.geteuid() == 0:
            opts["APT::Sandbox::User"] = "root"
        out = []
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        return out

    def _sources(self, extra: bool) -> str:
        signed = f" [signed-by={KEYRING}]" if KEYRING.is_file() else ""
        lines = [f"deb{signed} {self.mirror} {self.suite} main"]
        if extra:
            lines += [
                f"deb{signed} {self.mirror} {self.suite}-updates main",
                f"deb{signed} {self.security} {self.suite}-security main",
            ]
        return "\n".join(lines) + "\n"

    def _run(
        self, tool: str, args: list[str], cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        exe = shutil.which(tool)
        if exe is None:
            raise KernelError(f"{tool} not found", "kguest fetches Debian packages with apt: "
                              "run it on Debian or Ubuntu, or declare the kernel with "
                              "vmlinuz + kdir")
        return subprocess.run(
            [exe, "-q", *self._options(), *args],
            capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"},
        )

    def _has_lists(self, suite: str) -> bool:
        return any((self.root / "lists").glob(f"*_dists_{suite}_main_binary-amd64_Packages*"))

    def update(self) -> None:
        """Fetch the suite's package lists (with its -updates and -security when the
        archive has them).  A suite the archive lacks, or no network, is one line."""
        (self.root / "etc/sources.list").write_text(self._sources(extra=True))
        problems = _problems(self._run("apt-get", ["update"]))
        if not problems:
            return
        text = "\n".join(problems)
        if _NETWORK.search(text):
            raise KernelError(
                f"cannot reach the Debian archive {self.mirror} for suite {self.suite!r} "
                f"({_NETWORK.search(text).group(0)})",  # type: ignore[union-attr]
                f"check the network (or set {MIRROR_ENV} to a reachable mirror) and retry",
            )
        main = [ln for ln in problems if re.search(rf"[ /]{re.escape(self.suite)}[ /]", ln)]
        if main or not self._has_lists(self.suite):
            raise KernelError(
                f"Debian suite {self.suite!r} not found at {self.mirror}",
                'use a suite the archive has, e.g. debian = "bookworm" or "trixie"',
            )
        # only -updates or -security missing (unstable has neither): the suite alone
        (self.root / "etc/sources.list").write_text(self._sources(extra=False))
        problems = _problems(self._run("apt-get", ["update"]))
        if problems or not self._has_lists(self.suite):
            raise KernelError(
                f"apt-get update for Debian suite {self.suite!r} failed: "
                f"{problems[0] if problems else 'no package lists'}",
                f"check that {self.mirror} has {self.suite!r}",
            )

    def ensure_lists(self, max_age: float | None = None) -> None:
        """Update the lists when there are none (or they are older than ``max_age`` s)."""
        lists = [p for p in (self.root / "lists").glob("*_Packages*") if p.is_file()]
        if lists and (max_age is None or
                      time.time() - min(p.stat().st_mtime for p in lists) < max_age):
            return
        self.say(f"kguest: apt-get update for Debian {self.suite} (private lists in {self.root})")
        self.update()

    def show(self, name: str) -> Package:
        """The candidate version of a package."""
        p = self._run("apt-cache", ["show", "--no-all-versions", name])
        pkg = parse_show(p.stdout) if p.returncode == 0 else None
        if pkg is None:
            raise KernelError(
                f"Debian {self.suite} has no package {name!r}",
                f"check the name (apt-cache show {name} on a {self.suite} system)",
            )
        return pkg

    def download(self, pkgs: list[Package], dest: Path) -> list[Path]:
        """Download ``pkgs`` (at their versions) into ``dest``; the .deb paths."""
        dest.mkdir(parents=True, exist_ok=True)
        want = [f"{p.name}={p.version}" for p in pkgs]
        r = self._run("apt-get", ["download", *want], cwd=dest)
        if r.returncode != 0:
            errors = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("E:")]
            raise KernelError(
                f"apt-get download {' '.join(want)} failed: {_first(errors)}",
                "check the network and retry",
            )
        out = []
        for p in pkgs:
            ver = p.version.replace(":", "%3a")
            found = [d for d in dest.glob(f"{p.name}_{ver}_*.deb")]
            if not found:
                raise KernelError(f"apt-get download left no {p.name}_{ver}_*.deb in {dest}",
                                  "retry; if it persists, remove the directory")
            out.append(found[0])
        return out


_NETWORK = re.compile(r"Could not resolve[^\n]*|Temporary failure resolving[^\n]*|"
                      r"Network is unreachable|Connection (?:failed|refused|timed out)|"
                      r"Could not connect[^\n]*|No route to host|Unable to connect[^\n]*")


def _problems(p: subprocess.CompletedProcess[str]) -> list[str]:
    """apt's error lines (an "Err:" line joined with its detail); apt-get update
    exits 0 when a fetch fails, so its output is what tells."""
    lines = (p.stdout + "\n" + p.stderr).splitlines()
    out = []
    for i, ln in enumerate(lines):
        if ln.startswith("Err:"):
            detail = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].startswith(" ") \
                else ""
            out.append(f"{ln.strip()} {detail}".strip())
        elif ln.startswith(("E:", "W: Failed to fetch")):
            out.append(ln.strip())
    if p.returncode != 0 and not out:
        out.append(f"apt-get exited {p.returncode}")
    return out


def _first(lines: list[str]) -> str:
    return lines[0].strip() if lines else "no message"


def unpack(deb: Path, dest: Path) -> None:
    """``dpkg-deb -x``: a package's files under ``dest``, no scripts run."""
    dest.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], capture_output=True, text=True)
    if r.returncode != 0:
        raise KernelError(f"dpkg-deb -x {deb.name} failed: {r.stderr.strip()}",
                          f"remove {deb} and retry (a broken download?)")
