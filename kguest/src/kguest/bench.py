"""``kguest bench-harness``: how long the harness itself takes (not a test).

Records the cold boot time of each backend, what snapshots cost and save
(kguest/snapbench.py: save, restore, restart after a panic, per-test
isolation), and the wall time of the scenario suite at ``-n auto`` with and
without snapshots, side by side, as JSON, with the host's load average
before and after (the numbers move with it).  ``--quick`` skips the suite.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .backends import BACKENDS
from .config import ProjectConfig
from .errors import KguestError
from .options import Options
from .progress import to_stderr
from .provision import Provisioner
from .snapbench import time_snapshots


def time_boots(cfg: ProjectConfig, opts: Options, repeat: int = 2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prov = Provisioner(cfg, opts, to_stderr, worker="bench")
    for backend in BACKENDS:
        times: list[float] = []
        try:
            spec = prov.spec(backend)
            for _ in range(repeat):
                g = prov.new_guest(spec, snapshots=False)
                t0 = time.monotonic()
                g.boot()
                boot = time.monotonic() - t0
                t1 = time.monotonic()
                g.run("true", 60)
                rtt = time.monotonic() - t1
                g.close()
                times.append(boot)
            out[backend] = {"boot_s": times, "command_roundtrip_s": rtt, "accel": spec.accel}
        except KguestError as e:
            out[backend] = {"error": str(e)}
    return out


def time_suite(
    cfg: ProjectConfig, workers: str, extra: list[str], snapshots: bool = True
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        workers,
        str(cfg.scenario_path),
        *extra,
        *([] if snapshots else ["--no-snapshots"]),
    ]
    to_stderr(f"kguest: timing suite: {' '.join(cmd)}")
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=cfg.root, capture_output=True, text=True)
    wall = time.monotonic() - t0
    last = proc.stdout.strip().splitlines()[-1:] or [""]
    return {
        "workers": workers,
        "snapshots": snapshots,
        "wall_s": round(wall, 1),
        "exit": proc.returncode,
        "summary": last[0],
    }


def bench_harness(
    cfg: ProjectConfig, opts: Options, output: Path, quick: bool, pytest_args: list[str]
) -> int:
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_avg_before": [round(x, 2) for x in os.getloadavg()],
        },
        "boots": time_boots(cfg, opts),
        "snapshots": time_snapshots(cfg, opts),
    }
    if not quick:
        result["suite"] = [
            time_suite(cfg, "auto", pytest_args, snapshots=True),
            time_suite(cfg, "auto", pytest_args, snapshots=False),
        ]
    result["host"]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    out = output if output.is_absolute() else cfg.root / output
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    to_stderr(f"kguest: wrote {out}")
    return 0
