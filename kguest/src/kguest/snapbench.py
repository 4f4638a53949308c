"""What snapshots cost and save, for ``kguest bench-harness`` (numbers, not assertions).

In one guest configuration (the initramfs backend, the project's modules), with a
snapshot directory of its own so that the first start really saves:

* ``boot_and_save_s`` / ``save_s`` / ``bytes``: the first start (a boot) and its save;
* ``restore_s``: new QEMUs restored to the ready point (console answering, baseline read);
* ``restart_after_panic_s``: from sending a deliberate panic to the next guest answering,
  restored from the snapshot, and once cold (``--no-snapshots``) for comparison;
* ``isolation``: ``n`` trivial tests (with the taint/dmesg checks) on one guest against
  the same tests each on a freshly restored guest: the overhead per test.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import ProjectConfig
from .errors import KguestError
from .guest import Guest
from .options import Options
from .progress import to_stderr
from .provision import Provisioner
from .snapshot import SnapshotStore

PANIC = "echo c > /proc/sysrq-trigger"


def _r(xs: list[float]) -> list[float]:
    return [round(x, 2) for x in xs]


def time_snapshots(
    cfg: ProjectConfig, opts: Options, repeat: int = 3, n: int = 5
) -> dict[str, Any]:
    prov = Provisioner(cfg, dataclasses.replace(opts, snapshots=False), to_stderr, worker="bench")
    try:
        spec = prov.spec("initramfs")
    except KguestError as e:
        return {"error": str(e)}

    def guest(store: SnapshotStore | None) -> Guest:
        # the provisioner's guest, with a snapshot directory of its own (or none)
        return prov.new_guest(spec, snapshots=store or False).boot()

    def panic_restart(g: Guest, store: SnapshotStore | None) -> tuple[float, Guest]:
        t0 = time.monotonic()
        run = g.run_test(PANIC, 60)
        if not run.died:
            raise KguestError("the deliberate panic did not end the guest", "see its console log")
        g.close()
        g = guest(store)
        g.run("true", 60)
        return time.monotonic() - t0, g

    out: dict[str, Any] = {"label": spec.label()}
    with tempfile.TemporaryDirectory(dir=cfg.build_path, prefix="bench-snapshots-") as d:
        store = SnapshotStore(Path(d), to_stderr)
        g = guest(store)
        try:
            if not store.saved:
                return {"error": "no snapshot was saved: " + "; ".join(sorted(store.said))}
            out["boot_and_save_s"] = round(g.boot_seconds, 2)
            out["save_s"] = store.saved[-1]["save_s"]
            out["bytes"] = store.saved[-1]["bytes"]
            restores = []
            for _ in range(repeat):
                g.close()
                g = guest(store)
                assert g.started_from == "restore", g.started_from
                restores.append(g.boot_seconds)
            out["restore_s"] = _r(restores)
            panics = []
            for _ in range(repeat):
                took, g = panic_restart(g, store)
                panics.append(took)
            out["restart_after_panic_s"] = _r(panics)
            t0 = time.monotonic()
            for _ in range(n):
                g.run_test("true", 60)
            shared = (time.monotonic() - t0) / n
            t0 = time.monotonic()
            for _ in range(n):
                g.close()
                g = guest(store)
                g.run_test("true", 60)
            isolated = (time.monotonic() - t0) / n
            out["isolation"] = {
                "tests": n,
                "per_test_shared_s": round(shared, 2),
                "per_test_isolated_s": round(isolated, 2),
                "overhead_per_test_s": round(isolated - shared, 2),
            }
        finally:
            g.close()
    cold = guest(None)
    try:
        took, cold = panic_restart(cold, None)
        out["restart_after_panic_cold_s"] = round(took, 2)
    finally:
        cold.close()
    out["median"] = {
        "restore_s": round(statistics.median(out["restore_s"]), 2),
        "restart_after_panic_s": round(statistics.median(out["restart_after_panic_s"]), 2),
    }
    return out
