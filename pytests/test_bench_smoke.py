"""The benchmark driver's smoke plan: one guest boot, tiny sizes.

Proves that `make bench` has a working path end to end (build, boot, the
in-guest program, JSON, plots, report) and that every workload has every
variant; the numbers themselves are not looked at (benchmarks report, they
are not assertions, and this runs beside other guests).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.check_results import run_smoke


@pytest.mark.guest
def test_bench_smoke_is_complete(tmp_path: Path) -> None:
    problems = run_smoke(tmp_path / "bench", python=sys.executable)
    assert problems == [], "\n".join(problems)
