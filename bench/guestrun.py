"""Run sforkbench command lines in one kguest guest and bring their JSON documents back."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import kguest

MARK_BEGIN = "@@SFORKBENCH-JSON-BEGIN@@"
MARK_END = "@@SFORKBENCH-JSON-END@@"
KLOG_LINE = re.compile(r"^\[\s*\d+\.\d+\]")


def parse_doc(text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]], str]:
    """(document, salvaged results, problem).  A complete document is returned whole; when the
    program died midway its one-line result records are salvaged."""
    start = text.find(MARK_BEGIN)
    if start < 0:
        return None, [], "no begin marker"
    body = text[start + len(MARK_BEGIN):]
    end = body.find(MARK_END)
    if end >= 0:
        body = body[:end]
    lines = [ln for ln in body.splitlines() if not KLOG_LINE.match(ln)]
    try:
        return json.loads("\n".join(lines)), [], ""
    except ValueError as e:
        problem = f"incomplete JSON ({e})" if end >= 0 else "no end marker (program died?)"
    salvaged = []
    for ln in lines:
        ln = ln.strip().rstrip(",")
        if ln.startswith('{"workload"'):
            with contextlib.suppress(ValueError):
                salvaged.append(json.loads(ln))
    return None, salvaged, problem


@dataclasses.dataclass
class Outcome:
    label: str
    command: str
    status: int | None
    seconds: float
    doc: dict[str, Any] | None
    salvaged: list[dict[str, Any]]
    problem: str
    stderr: str = ""
    kernel_log: str = ""
    raw: str = ""


class BenchGuest:
    """One kguest guest (started again only if it dies) running bench commands."""

    def __init__(self, memory_mib: int, cpus: int = 2, accel: str = "auto",
                 build: bool = False, root: Path | None = None, log: Path | None = None,
                 kernel: str | None = None, cmdline: tuple[str, ...] = ()) -> None:
        self.memory_mib, self.cpus, self.accel, self.build = memory_mib, cpus, accel, build
        self.root, self.log, self.kernel, self.cmdline = root, log, kernel, cmdline
        self.guest: kguest.Guest | None = None
        self.boots = 0
        self.boot_seconds: list[float] = []

    def boot(self) -> kguest.Guest:
        t0 = time.monotonic()
        self.guest = kguest.boot(memory_mib=self.memory_mib, cpus=self.cpus, accel=self.accel,
                                 build=self.build, root=self.root, log=self.log,
                                 kernel=self.kernel, cmdline=self.cmdline)
        self.boot_seconds.append(time.monotonic() - t0)
        self.boots += 1
        return self.guest

    def running(self) -> kguest.Guest:
        """The guest, started again if it died."""
        if self.guest is None or not self.guest.alive:
            return self.boot()
        return self.guest

    def close(self) -> None:
        if self.guest is not None:
            self.guest.close()
            self.guest = None

    def __enter__(self) -> BenchGuest:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def info(self) -> dict[str, Any]:
        spec = self.running().spec
        return {"accelerator": spec.accel, "vcpus": spec.cpus, "memory_mib": spec.memory_mib,
                "kernel_name": spec.kernel.name, "kernel_version": spec.kernel.version,
                "backend": spec.backend.name, "boots": self.boots,
                "boot_seconds": [round(s, 1) for s in self.boot_seconds]}

    def sh(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        r = self.running().run(cmd, timeout)
        return r.status, r.output

    def fetch(self, path: str, timeout: float = 300.0) -> bytes:
        """A guest file, whatever its size (kguest reads it compressed, in pieces)."""
        try:
            return self.running().read_file(path, timeout)
        except kguest.KguestError as e:
            raise RuntimeError(str(e)) from e

    def run_bench(self, label: str, command: str, timeout: float) -> Outcome:
        """Run one sforkbench command (stdout to a guest file), fetch and parse it."""
        out, err = "/tmp/sforkbench.out", "/tmp/sforkbench.err"
        full = f"{command} > {out} 2> {err}"
        t0 = time.monotonic()
        guest = self.running()
        tr = guest.run_test(full, timeout, name=label)
        seconds = time.monotonic() - t0
        klog = tr.kernel_log
        if tr.died:
            guest.kill()
            self.guest = None
            return Outcome(label, command, None, seconds, None, [],
                           f"guest died or hung: {str(tr.died)[-2000:]}", kernel_log=klog)
        status = tr.result.status if tr.result is not None else None
        problem = "" if status == 0 else f"exit status {status}"
        if tr.trouble:
            problem = (problem + "; " if problem else "") + "kernel reported trouble"
        try:
            raw = self.fetch(out).decode("utf-8", errors="replace")
            stderr = self.fetch(err).decode("utf-8", errors="replace")
        except (RuntimeError, OSError, ValueError) as e:
            return Outcome(label, command, status, seconds, None, [],
                           f"{problem}; fetch failed: {e}".strip("; "), kernel_log=klog)
        doc, salvaged, p2 = parse_doc(raw)
        if p2:
            problem = (problem + "; " if problem else "") + p2
        return Outcome(label, command, status, seconds, doc, salvaged, problem,
                       stderr=stderr[-4000:], kernel_log=klog[-8000:], raw=raw)
