"""The targets are computed from the runs (no guest): one row per entry of the catalogue
(bench/check_results.py TARGETS), each following the data, tuned and default-configured
peers kept apart, and missing data "not measured"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report, stats
from bench.check_results import TARGETS, check_targets

GIB = 1 << 30


def _runs(times: dict[str, float], workload: str = "abundant", size: int = GIB,
          reps: int = 3) -> list[dict[str, Any]]:
    return [{"workload": workload, "variant": v, "size": size, "rep": r, "warmup": False,
             "ok": True, "value": t * (1 + 0.01 * r), "unit": "ns", "ns": {}, "counters": {}}
            for r in range(reps) for v, t in times.items()]


def _target(runs: list[dict[str, Any]], tid: str) -> dict[str, Any]:
    tg = {t["id"]: t for t in stats.targets(stats.summarize(runs), runs)}
    return tg[tid]


def test_one_row_per_target_with_its_threshold() -> None:
    tgs = stats.targets(stats.summarize(_runs({"sfork_eager": 1e9})))
    assert [t["id"] for t in tgs] == list(TARGETS)
    assert [(t["op"], t["threshold"]) for t in tgs] == [(op, thr) for op, thr, _ in
                                                        TARGETS.values()]
    assert check_targets(tgs) == []
    assert check_targets(tgs[1:]) == [f"target {tgs[0]['id']}: missing"]
    tgs[0]["threshold"] = 3.0
    assert check_targets(tgs) == [f"target {tgs[0]['id']}: >= 3.0, not >= 4.0"]


def test_abundant_against_default_and_tuned_peers() -> None:
    runs = _runs({"sfork_eager": 1.0e9, "memfd": 4.5e9, "shm_anon": 5.0e9,
                  "memfd_thp": 1.1e9, "sysv_hugetlb": 1.3e9})
    d, t = _target(runs, "abundant_eager_default"), _target(runs, "abundant_eager_tuned")
    assert d["passed"] is True and abs(d["ratio"] - 4.5) < 0.01 and "memfd" in d["detail"]
    assert t["passed"] is True and abs(t["ratio"] - 1.1) < 0.01 and "memfd_thp" in t["detail"]
    # 3.5x the best default peer is no longer enough; a faster tuned peer turns the tuned
    # row into a miss
    runs = _runs({"sfork_eager": 1.0e9, "memfd": 3.5e9, "memfd_thp": 0.8e9})
    assert _target(runs, "abundant_eager_default")["passed"] is False
    assert _target(runs, "abundant_eager_tuned")["passed"] is False


def test_lazy_4k_against_default_peers_only() -> None:
    """A lazy region with 4 KiB pages needs 1.3x the best default peer; it has no row
    against the tuned ones."""
    runs = _runs({"sfork_lazy": 1.0e9, "shm_anon": 1.35e9, "memfd_thp": 0.5e9})
    assert _target(runs, "abundant_lazy_default")["passed"] is True
    assert "abundant_lazy_tuned" not in {t["id"] for t in stats.targets(
        stats.summarize(runs), runs)}
    runs = _runs({"sfork_lazy": 1.0e9, "shm_anon": 1.25e9})
    assert _target(runs, "abundant_lazy_default")["passed"] is False


def test_cycle_zerofill_and_huge_fault_thresholds() -> None:
    lat = _runs({"sfork_auto": 1.24e6, "fork": 1.0e6}, workload="latency", size=4096)
    assert _target(lat, "latency_4k")["passed"] is True
    lat = _runs({"sfork_auto": 1.30e6, "fork": 1.0e6}, workload="latency", size=4096)
    assert _target(lat, "latency_4k")["passed"] is False
    # eager fill = eager call - lazy call: 1.1 s for 1 GiB against memset's 1.0 s: 0.91
    zf = _runs({"sfork_eager": 1.2e9, "sfork_lazy": 0.1e9, "memset": 1.0e9},
               workload="zerofill")
    tg = _target(zf, "eager_zerofill")
    assert abs(tg["ratio"] - 1 / 1.1) < 0.01 and tg["passed"] is True
    fault = _runs({"sfork_lazy_huge": 5.4e3, "private": 10e3, "sfork_lazy": 2e3},
                  workload="fault", size=16 << 20)
    tg = _target(fault, "lazy_huge_fault")
    assert abs(tg["ratio"] - 0.54) < 0.01 and tg["passed"] is True
    assert "lazy_fault" not in {t["id"] for t in stats.targets(stats.summarize(fault))}


def test_missing_data_is_not_measured() -> None:
    runs = _runs({"sfork_eager": 1.0e9, "memfd": 3.5e9})
    assert _target(runs, "abundant_eager_tuned")["passed"] is None
    assert _target(runs, "idle_cpu")["passed"] is None
    assert _target(runs, "latency_4k")["passed"] is None


def test_idle_share_and_sparse_memory() -> None:
    idle = [{"workload": "idle", "variant": "sfork_auto", "size": 4096, "rep": r,
             "warmup": False, "ok": True, "value": cpu, "idle_ns": 2e9, "unit": "ns",
             "ns": {}, "counters": {}} for r, cpu in enumerate((10e6, 12e6, 14e6))]
    tg = _target(idle, "idle_cpu")
    assert abs(tg["ratio"] - 0.006) < 1e-9 and tg["passed"] is True
    sparse = _runs({"sfork_lazy": 6e6, "shm_anon": 3e6}, workload="sparse")
    for r in sparse:
        r["memory_kb"] = {"region": 12288 if r["variant"] == "sfork_lazy" else 24,
                          "shmem_pmd_mapped": 0, "hugetlb_mapped": 0}
    tg = _target(sparse, "sparse_lazy")
    assert tg["passed"] is False and "12.0 MiB held" in tg["detail"]


def test_ratio_plot_beside_the_absolute_one(tmp_path: Path) -> None:
    runs = _runs({"sfork_lazy": 1e9, "memfd": 3e9, "memfd_thp": 1.2e9}, size=GIB) + \
        _runs({"sfork_lazy": 1e8, "memfd": 2e8, "memfd_thp": 1e8}, size=GIB // 8)
    files = report.make_plots({"summary": stats.summarize(runs), "catalog": {}}, tmp_path)
    assert files["abundant-ratio"] == "plot-abundant-ratio.png"
    assert (tmp_path / "plot-abundant-ratio.png").stat().st_size > 0


def test_lazy_huge_rows_follow_their_own_runs() -> None:
    """sfork_lazy_huge (huge_pages=2) has target rows of its own, computed from its runs
    and never mixed with the default-policy sfork_lazy; without its runs they are not
    measured."""
    runs = _runs({"sfork_lazy": 5.0e9, "sfork_lazy_huge": 1.2e9, "shm_anon": 5.0e9,
                  "memfd_thp": 1.2e9})
    d = _target(runs, "abundant_lazy_huge_default")
    assert abs(d["ratio"] - 5.0e9 / 1.2e9) < 0.01 and d["passed"] is True
    assert "huge_pages=2" in d["what"] and "sfork_lazy_huge" in d["detail"]
    assert _target(runs, "abundant_lazy_default")["passed"] is False
    sparse = _runs({"sfork_lazy": 3e6, "sfork_lazy_huge": 60e6, "shm_anon": 3e6},
                   workload="sparse")
    assert _target(sparse, "sparse_lazy")["passed"] is True
    assert _target(sparse, "sparse_lazy_huge")["passed"] is False
    tgs = {t["id"]: t for t in stats.targets(stats.summarize(_runs({"sfork_lazy": 1e9})))}
    assert tgs["abundant_lazy_huge_default"]["passed"] is None
    assert tgs["lazy_huge_fault"]["passed"] is None
