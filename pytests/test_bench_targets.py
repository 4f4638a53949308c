"""The issue's targets are computed from the runs (no guest): each row follows the data,
tuned and default-configured peers are kept apart, and missing data is "not measured"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report, stats

GIB = 1 << 30


def _runs(times: dict[str, float], workload: str = "abundant", size: int = GIB,
          reps: int = 3) -> list[dict[str, Any]]:
    return [{"workload": workload, "variant": v, "size": size, "rep": r, "warmup": False,
             "ok": True, "value": t * (1 + 0.01 * r), "unit": "ns", "ns": {}, "counters": {}}
            for r in range(reps) for v, t in times.items()]


def _target(runs: list[dict[str, Any]], tid: str) -> dict[str, Any]:
    tg = {t["id"]: t for t in stats.targets(stats.summarize(runs), runs)}
    return tg[tid]


def test_abundant_against_default_and_tuned_peers() -> None:
    runs = _runs({"sfork_lazy": 1.0e9, "memfd": 3.5e9, "shm_anon": 4.0e9,
                  "memfd_thp": 1.1e9, "sysv_hugetlb": 1.3e9})
    d, t = _target(runs, "abundant_lazy_default"), _target(runs, "abundant_lazy_tuned")
    assert d["passed"] is True and abs(d["ratio"] - 3.5) < 0.01 and "memfd" in d["detail"]
    assert t["passed"] is True and abs(t["ratio"] - 1.1) < 0.01 and "memfd_thp" in t["detail"]
    # a faster tuned peer turns the tuned row into a miss, the default row stays
    runs = _runs({"sfork_lazy": 1.0e9, "memfd": 3.5e9, "memfd_thp": 0.8e9})
    assert _target(runs, "abundant_lazy_tuned")["passed"] is False
    assert _target(runs, "abundant_lazy_default")["passed"] is True


def test_missing_data_is_not_measured() -> None:
    runs = _runs({"sfork_lazy": 1.0e9, "memfd": 3.5e9})
    assert _target(runs, "abundant_lazy_tuned")["passed"] is None
    assert _target(runs, "idle_cpu")["passed"] is None


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
    """sfork_lazy_huge (huge_pages=2) gets its own target rows, computed from its runs
    and never mixed with the default-policy sfork_lazy; without its runs there are none."""
    runs = _runs({"sfork_lazy": 4.0e9, "sfork_lazy_huge": 1.2e9, "shm_anon": 4.0e9,
                  "memfd_thp": 1.2e9})
    d = _target(runs, "abundant_lazy_huge_default")
    assert abs(d["ratio"] - 4.0e9 / 1.2e9) < 0.01 and d["passed"] is True
    assert "huge_pages=2" in d["what"] and "sfork_lazy_huge" in d["detail"]
    assert _target(runs, "abundant_lazy_default")["passed"] is False
    sparse = _runs({"sfork_lazy": 3e6, "sfork_lazy_huge": 60e6, "shm_anon": 3e6},
                   workload="sparse")
    assert _target(sparse, "sparse_lazy")["passed"] is True
    assert _target(sparse, "sparse_lazy_huge")["passed"] is False
    ids = {t["id"] for t in stats.targets(stats.summarize(_runs({"sfork_lazy": 1e9})))}
    assert "abundant_lazy_huge_default" not in ids and "lazy_huge_fault" not in ids
