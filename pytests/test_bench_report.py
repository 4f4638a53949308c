"""The benchmark report (no guest): a profile whose trace lost records is marked
approximate in the report and fails the completeness check; the terminal summary of a
run is plain text of a fixed shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.check_results import TARGETS, check_profiles
from bench.report import lost_note, profile_brief
from bench.summary import terminal_summary


def _profile(overrun: int) -> dict[str, Any]:
    return {
        "label": "fault:sfork_lazy:4M@handle_mm_fault",
        "graph_functions": "handle_mm_fault",
        "lines": 3000,
        "overrun": overrun,
        "functions": [
            {"name": "handle_mm_fault", "depth": 0, "calls": 10, "total_us": 100.0,
             "self_us": 10.0},
            {"name": "shmem_fault", "depth": 1, "calls": 10, "total_us": 90.0,
             "self_us": 90.0},
        ],
    }


def test_whole_profile_is_not_marked() -> None:
    assert lost_note(_profile(0)) == ""
    assert "approximate" not in profile_brief(_profile(0))


def test_lost_records_mark_the_profile_approximate() -> None:
    note = lost_note(_profile(1000))
    assert "approximate" in note and "1000" in note and "25%" in note
    assert note in profile_brief(_profile(1000))


def test_check_profiles() -> None:
    doc: dict[str, Any] = {"plan": {"profiles": ["fault:sfork_lazy:4M@handle_mm_fault"]},
                           "profiles": [_profile(0)]}
    assert check_profiles(doc) == []
    doc["profiles"] = [_profile(7)]
    assert check_profiles(doc) == ["profile fault:sfork_lazy:4M@handle_mm_fault: "
                                   "7 trace records lost"]
    doc["profiles"] = []
    assert check_profiles(doc) == ["profile fault:sfork_lazy:4M@handle_mm_fault: missing"]
    p = _profile(0)
    p["functions"] = []
    doc["profiles"] = [p]
    assert check_profiles(doc) == ["profile fault:sfork_lazy:4M@handle_mm_fault: "
                                   "no record of handle_mm_fault"]


# --------------------------------------------------------------------------- summary

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
FULL_61 = RESULTS / "2026-12-07-full" / "results.json"  # the newest 6.1 full run
LABELS = ("suite", "bench", "answer", "targets", "report")


def _quick_from_full(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """A quick-sized run of 6.1 (the committed full run cut to 128 MiB, mode quick) and
    a JUnit file of a suite."""
    doc = json.loads(FULL_61.read_text())
    doc["runs"] = [r for r in doc["runs"] if int(r["size"]) <= 128 << 20]
    doc.update(mode="quick", started="2027-01-01T00:00:00+00:00", cmdline_extra=[])
    junit = tmp_path / "junit.xml"
    junit.write_text('<testsuites><testsuite name="pytest" errors="0" failures="1" '
                     'skipped="2" tests="40"/></testsuites>')
    return doc, junit


def test_summary_shape(tmp_path: Path) -> None:
    """make run's summary: plain text within 100 columns, the labels in order, the answer
    at this run's size beside the committed full run's, one aligned row per target."""
    doc, junit = _quick_from_full(tmp_path)
    text = terminal_summary(doc, junit, tmp_path / "report.md")
    lines = text.splitlines()
    assert all(len(ln) <= 100 for ln in lines), [ln for ln in lines if len(ln) > 100]
    assert not any(m in text for m in ("**", "`", "|", "---")), "Markdown in the summary"
    assert "sfork: summary" in lines[0]
    labels = [ln.split()[0] for ln in lines[1:] if not ln.startswith(" ")]
    assert labels == list(LABELS)
    assert "40 tests: 37 passed, 1 failed, 0 errors, 2 skipped" in text
    words = " ".join(text.split())
    assert "at 128 MiB (abundant)" in words and "full run of 2026-12-07" in words
    assert "measured 3.77x and 0.96x at 1 GiB" in words
    head = next(i for i, ln in enumerate(lines) if ln.strip().startswith("target "))
    rows = lines[head:head + 1 + len(TARGETS)]
    assert [r[10:].split("  ")[0].strip() for r in rows[1:]] == [
        label for _, _, label in TARGETS.values()]
    for col in ("needed", "this run", "at", "full run"):
        at = rows[0].index(col)
        assert all(r[at - 2:at] == "  " for r in rows[1:]), col
        assert all(r[at] != " " for r in rows[1:] if col != "at"), col
    assert sum(r[rows[0].index("at"):].startswith("128 MiB") for r in rows) == 7
    assert "indicative (quick plan" in words
    assert lines[-1].startswith("report") and str(tmp_path / "report.md") in lines[-1]


def test_summary_of_the_full_run_of_record() -> None:
    """The newest committed 6.1 full run is the run the targets are judged on, and the
    answer says so; beside it stands the full run before it, never itself."""
    doc = json.loads(FULL_61.read_text())
    text = terminal_summary(doc, None, None)
    assert all(len(ln) <= 100 for ln in text.splitlines())
    words = " ".join(text.split())
    assert "full run of record" in words and "indicative" not in words
    assert "in the full run of 2026-12-02 (bench/results/2026-12-02-full)" in words


def test_summary_without_results(tmp_path: Path) -> None:
    text = terminal_summary(None, tmp_path / "missing.xml")
    assert "no JUnit file" in text and "no results" in text
