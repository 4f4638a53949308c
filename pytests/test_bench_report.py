"""The benchmark report's handling of profiles (no guest): a profile whose trace
lost records is marked approximate in the report and fails the completeness check."""

from __future__ import annotations

from typing import Any

from bench.check_results import check_profiles
from bench.report import lost_note, profile_brief


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
