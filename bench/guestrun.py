"""Run sforkbench command lines in one kguest guest and bring their JSON documents back."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any

MARK_BEGIN = "@@SFORKBENCH-JSON-BEGIN@@"
MARK_END = "@@SFORKBENCH-JSON-END@@"
CHUNK = 96 * 1024  # raw bytes per console read: base64 of it stays under kguest's output cap
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
    """One kguest guest (re-booted only if it dies) running bench commands."""

    def __init__(self, memory_mib: int, cpus: int = 2, accel: str = "auto",
                 build: bool = False, root: Path | None = None, log: Path | None = None,
                 kernel: str | None = None, cmdline: tuple[str, ...] = ()) -> None:
        import kguest  # the project's harness package (repo root on sys.path)

        self._kguest = kguest
        self.kw: dict[str, Any] = {"memory_mib": memory_mib, "cpus": cpus, "accel": accel,
                                   "build": build, "root": root, "log": log,
                                   "kernel": kernel, "cmdline": cmdline}
        self.guest: Any = None
        self.boots = 0
        self.boot_seconds: list[float] = []

    def boot(self) -> None:
        t0 = time.monotonic()
        self.guest = self._kguest.boot(**self.kw)
        self.boot_seconds.append(time.monotonic() - t0)
        self.boots += 1

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
        spec = self.guest.spec
        return {"accelerator": spec.accel, "vcpus": spec.cpus, "memory_mib": spec.memory_mib,
                "kernel_name": spec.kernel.name, "kernel_version": spec.kernel.version,
                "backend": spec.backend, "boots": self.boots,
                "boot_seconds": [round(s, 1) for s in self.boot_seconds]}

    def sh(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        if self.guest is None or not self.guest.alive:
            self.boot()
        r = self.guest.run(cmd, timeout)
        return int(r.status), str(r.output)

    def fetch(self, path: str, timeout: float = 300.0) -> bytes:
        """A guest file, gzip'd and read in base64 chunks under the console output cap."""
        st, out = self.sh(f"gzip -c {path} > {path}.gz && wc -c < {path}.gz", 60)
        if st != 0:
            raise RuntimeError(f"cannot compress {path}: {out}")
        size = int(out.strip().splitlines()[-1])
        data = bytearray()
        blocks = CHUNK // 1024
        for off in range(0, size, CHUNK):
            st, out = self.sh(f"dd if={path}.gz bs=1024 skip={off // 1024} count={blocks} "
                              f"2>/dev/null | base64", timeout)
            if st != 0:
                raise RuntimeError(f"cannot read {path}: {out[-300:]}")
            data += base64.b64decode("".join(out.split()))
        if len(data) != size:
            raise RuntimeError(f"{path}: read {len(data)} of {size} bytes")
        return gzip.decompress(bytes(data))

    def run_bench(self, label: str, command: str, timeout: float) -> Outcome:
        """Run one sforkbench command (stdout to a guest file), fetch and parse it."""
        out, err = "/tmp/sforkbench.out", "/tmp/sforkbench.err"
        full = f"{command} > {out} 2> {err}"
        t0 = time.monotonic()
        if self.guest is None or not self.guest.alive:
            self.boot()
        tr = self.guest.run_test(full, timeout)
        seconds = time.monotonic() - t0
        klog = str(getattr(tr, "kernel_log", "") or "")
        if tr.died:
            self.guest.kill()
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
