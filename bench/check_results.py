"""Check a bench results file: it parses, and every workload and variant is present.

Self-contained (standard library only) so that a test can use it either way::

    python3 bench/check_results.py build/bench-smoke/results.json
    python3 -m bench.check_results build/bench-smoke/results.json
    python3 bench/check_results.py --run-smoke build/bench-smoke   # run the driver first

    from bench.check_results import check_file
    assert check_file(path) == []

Exit status 0 when the file is complete, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

SFORK_VARIANTS = ("sfork_lazy", "sfork_eager", "sfork_auto")
# SFORK_LAZY with the module's huge_pages=2 (set around its runs): region workloads only
SFORK_HUGE_VARIANTS = ("sfork_lazy_huge",)
# Shared-memory peers as a user gets them on a stock system (default-configured)...
SHM_VARIANTS = ("shm_anon", "sysv_shm", "posix_shm", "memfd", "file")
# ... and the best a user with root can configure (tuned): THP for shmem
# (shmem_enabled=advise + MADV_HUGEPAGE) and hugetlbfs pages from a reserved pool.
THP_VARIANTS = ("shm_anon_thp", "memfd_thp")
HUGETLB_VARIANTS = ("memfd_hugetlb", "sysv_hugetlb")
TUNED_VARIANTS = THP_VARIANTS + HUGETLB_VARIANTS
REGION_VARIANTS = SFORK_VARIANTS + SHM_VARIANTS
CHANNEL_VARIANTS = (*REGION_VARIANTS, "pipe", "socketpair")
PEERED = (*REGION_VARIANTS, *TUNED_VARIANTS)
REGION_PEERED = (*SFORK_VARIANTS, *SFORK_HUGE_VARIANTS, *SHM_VARIANTS, *TUNED_VARIANTS)

# Which variants each workload must have (the C program's default sets).
WORKLOADS: dict[str, tuple[str, ...]] = {
    "abundant": REGION_PEERED,
    "sparse": REGION_PEERED,
    "random": REGION_PEERED,
    "multilevel": REGION_PEERED,
    "latency": (*PEERED, "fork"),
    "fault": (*REGION_PEERED, "private", "private_thp"),
    "zerofill": ("sfork_eager", "sfork_lazy", "memset", "populate"),
    "teardown": (*REGION_PEERED, "private"),
    "publish": CHANNEL_VARIANTS,
    "pingpong": CHANNEL_VARIANTS,
    "publish_spin": CHANNEL_VARIANTS,
    "pingpong_spin": CHANNEL_VARIANTS,
    "bulk": CHANNEL_VARIANTS,
    "idle": ("sfork_auto", "shm_anon", "pipe"),
}

ENV_KEYS = ("kernel", "accelerator", "vcpus", "memory_mib")

# The targets: id -> (comparison, threshold, what is compared).  They are judged on
# Debian's 6.1 booted with its default command line, at 1 GiB, in the full plan
# (`make bench FULL=1`); on 6.12 none may be worse than in its last full run.  Every
# ratio is computed from the runs (bench/stats.py targets()); a target whose data a run
# lacks is "not measured".
TARGETS: dict[str, tuple[str, float, str]] = {
    "abundant_eager_default": (">=", 4.0, "abundant: eager / best default peer"),
    "abundant_eager_tuned": (">=", 0.95, "abundant: eager / best tuned peer"),
    "abundant_lazy_huge_default": (">=", 4.0, "abundant: lazy huge_pages=2 / best default"),
    "abundant_lazy_huge_tuned": (">=", 0.95, "abundant: lazy huge_pages=2 / best tuned"),
    "abundant_lazy_default": (">=", 1.3, "abundant: lazy 4 KiB pages / best default"),
    "lazy_huge_fault": ("<=", 0.55, "first touch: lazy 2 MiB / private 4 KiB"),
    "eager_zerofill": (">=", 0.9, "eager zero-fill / memset bandwidth"),
    "latency_4k": ("<=", 1.25, "4 KiB create+fork+exit+wait+destroy / fork"),
    "channel_publish": (">=", 3.0, "blocking publish / pipe"),
    "channel_pingpong": (">=", 3.0, "blocking ping-pong / pipe"),
    "channel_publish_spin": (">=", 3.0, "polling publish / pipe"),
    "channel_pingpong_spin": (">=", 3.0, "polling ping-pong / pipe"),
    "idle_cpu": ("<=", 0.01, "idle receiver: share of a CPU"),
    "sparse_lazy": ("<=", 1.5, "sparse: lazy / shm_anon"),
    "sparse_lazy_huge": ("<=", 1.5, "sparse: lazy huge_pages=2 / shm_anon"),
}


def check(doc: Any) -> list[str]:
    """Problems with a results document (an empty list means complete)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["results: top level is not a JSON object"]
    guest = doc.get("guest")
    if not isinstance(guest, dict):
        problems.append("results: no 'guest' object")
    else:
        problems += [f"guest: '{k}' missing" for k in ENV_KEYS if guest.get(k) in (None, "")]
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*problems, "results: no 'runs'"]

    ok: dict[tuple[str, str], int] = {}
    errors: dict[tuple[str, str], str] = {}
    for i, r in enumerate(runs):
        if not isinstance(r, dict):
            problems.append(f"runs[{i}]: not an object")
            continue
        key = (str(r.get("workload")), str(r.get("variant")))
        if r.get("warmup"):
            continue
        if r.get("ok") is True:
            v = r.get("value")
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                problems.append(f"runs[{i}] {key[0]}/{key[1]}: value {v!r} is not > 0")
                continue
            if r.get("verify_errors"):
                problems.append(f"runs[{i}] {key[0]}/{key[1]}: verify_errors")
                continue
            ok[key] = ok.get(key, 0) + 1
        else:
            errors.setdefault(key, str(r.get("error")))

    for w, variants in WORKLOADS.items():
        for v in variants:
            if ok.get((w, v), 0) == 0:
                why = errors.get((w, v))
                problems.append(f"{w}/{v}: no successful measured run"
                                + (f" (error: {why})" if why else " (absent)"))

    summary = doc.get("summary")
    if not isinstance(summary, list) or not summary:
        problems.append("results: no 'summary'")
    targets = doc.get("targets")
    if not isinstance(targets, list) or not targets:
        problems.append("results: no 'targets'")
    else:
        problems += check_targets(targets)
    return problems + check_profiles(doc)


def check_targets(targets: list[Any]) -> list[str]:
    """Every target of TARGETS is in the document, with its threshold.  Whether it was
    measured is the run's business (a small run's zero-fill can come out below the
    noise), not a sign of an incomplete document."""
    problems: list[str] = []
    got = {t.get("id"): t for t in targets if isinstance(t, dict)}
    for tid, (op, thr, _) in TARGETS.items():
        t = got.get(tid)
        if t is None:
            problems.append(f"target {tid}: missing")
        elif t.get("op") != op or t.get("threshold") != thr:
            problems.append(f"target {tid}: {t.get('op')} {t.get('threshold')}, "
                            f"not {op} {thr}")
    return problems


def check_profiles(doc: dict[str, Any]) -> list[str]:
    """Every profile the plan asked for came back whole: its graphed functions were
    traced and the ring buffer lost nothing (lost records make self times wrong)."""
    problems: list[str] = []
    asked = (doc.get("plan") or {}).get("profiles") or []
    got = {str(p.get("label")): p for p in doc.get("profiles") or [] if isinstance(p, dict)}
    for label in asked:
        p = got.get(label)
        if p is None:
            problems.append(f"profile {label}: missing")
            continue
        roots = str(p.get("graph_functions") or "").split(",")
        names = {f.get("name") for f in p.get("functions") or [] if f.get("depth") == 0}
        if not any(r in names for r in roots) or not p.get("lines"):
            problems.append(f"profile {label}: no record of {', '.join(roots)}")
        if p.get("overrun"):
            problems.append(f"profile {label}: {p['overrun']} trace records lost")
    return problems


def check_file(path: Path | str, report: bool = True) -> list[str]:
    """Problems with the results file at ``path`` (and its report beside it when ``report``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        return [f"{p}: cannot read/parse: {e}"]
    problems = check(doc)
    if report:
        md = p.parent / "report.md"
        if not md.is_file() or not md.read_text().strip():
            problems.append(f"{md}: missing or empty")
        elif not list(p.parent.glob("*.png")):
            problems.append(f"{p.parent}: no plots (*.png)")
    return problems


ROOT = Path(__file__).resolve().parent.parent


def run_smoke(out: Path, python: str = sys.executable, timeout: float = 900.0) -> list[str]:
    """Run the driver's smoke plan into ``out`` (one guest boot, well under a minute of guest
    time) and check what it wrote."""
    cmd = [python, "-m", "bench.driver", "--smoke", "--out", str(out)]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    problems = check_file(out / "results.json")
    if p.returncode != 0 or problems:
        tail = (p.stdout + p.stderr)[-3000:]
        problems.append(f"driver exited {p.returncode}; its output ends:\n{tail}")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("results", type=Path,
                    help="results.json written by bench.driver (with --run-smoke: the "
                         "output directory)")
    ap.add_argument("--no-report", action="store_true", help="do not require report.md/plots")
    ap.add_argument("--run-smoke", action="store_true",
                    help="run `python -m bench.driver --smoke --out DIR` first, then check")
    a = ap.parse_args(argv)
    if a.run_smoke:
        problems = run_smoke(a.results)
        a.results = a.results / "results.json"
    else:
        problems = check_file(a.results, report=not a.no_report)
    for line in problems:
        print(line)
    if not problems:
        print(f"{a.results}: ok ({len(WORKLOADS)} workloads, all variants present)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
