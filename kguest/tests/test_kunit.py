"""KUnit test modules: the cases read from the source, the results read from the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from kguest import kunit
from kguest.errors import ConfigError

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "kunitmaker/kunitmaker_test.c"


def test_cases_from_the_source() -> None:
    suites = kunit.read_suites(SOURCE)
    assert [s.name for s in suites] == ["kunitmaker", "kunitmaker_crash"]
    assert [c.name for c in suites[0].cases] == [
        "kunitmaker_adds",
        "kunitmaker_fails",
        "kunitmaker_use_after_free",
    ]
    lines = SOURCE.read_text().splitlines()
    for c in suites[0].cases + suites[1].cases:
        assert f"KUNIT_CASE({c.name})" in lines[c.line - 1]


def test_unregistered_and_commented_suites(tmp_path: Path) -> None:
    src = tmp_path / "t.c"
    src.write_text(
        "static struct kunit_case a[] = { KUNIT_CASE(x), /* KUNIT_CASE(gone), */ {} };\n"
        'static struct kunit_suite s = { .name = "s", .test_cases = a };\n'
        "// kunit_test_suite(t);\n"
        "kunit_test_suite(s);\n"
    )
    (suite,) = kunit.read_suites(src)
    assert [c.name for c in suite.cases] == ["x"]
    src.write_text("static struct kunit_case a[] = { KUNIT_CASE(x), {} };\n")
    with pytest.raises(ConfigError, match="no suite registered"):
        kunit.read_suites(src)
    src.write_text("kunit_test_suites(&nowhere);\n")
    with pytest.raises(ConfigError, match="'nowhere'"):
        kunit.read_suites(src)


LOG = """\
[   10.000001]     KTAP version 1
[   10.000002]     # Subtest: kunitmaker
[   10.000003]     1..3
[   10.000004]     ok 1 kunitmaker_adds
[   10.000005]     # kunitmaker_fails: EXPECTATION FAILED at kunitmaker_test.c:22
[   10.000006]     not ok 2 kunitmaker_fails
[   10.000007] ==================================================================
[   10.000008] BUG: KASAN: use-after-free in kunitmaker_use_after_free+0x1/0x2 [kunitmaker_test]
[   10.000009]     ok 3 kunitmaker_use_after_free
[   10.000010] # kunitmaker: pass:2 fail:1 skip:0 total:3
[   10.000011] ok 1 kunitmaker
[   10.000012]     KTAP version 1
[   10.000013]     # Subtest: kunitmaker_crash
[   10.000014]     1..2
"""


def test_results_per_case() -> None:
    suites = kunit.read_suites(SOURCE)
    found, extra = kunit.results(LOG, suites, died=False)
    assert found[("kunitmaker", "kunitmaker_adds")].status == "pass"
    failed = found[("kunitmaker", "kunitmaker_fails")]
    assert failed.status == "fail" and "EXPECTATION FAILED" in failed.log
    kasan = found[("kunitmaker", "kunitmaker_use_after_free")]
    assert kasan.status == "fail" and "KASAN: use-after-free" in kasan.detail
    assert ("kunitmaker_crash", "kunitmaker_crashes") not in found  # not reported: missing
    assert extra == []


def test_a_death_is_the_running_case() -> None:
    suites = kunit.read_suites(SOURCE)
    log = LOG + "[   10.1] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
    found, _ = kunit.results(log, suites, died=True)
    crashed = found[("kunitmaker_crash", "kunitmaker_crashes")]
    assert crashed.status == "fail" and "died" in crashed.detail and "NULL pointer" in crashed.log
    assert ("kunitmaker_crash", "kunitmaker_after_crash") not in found


def test_skip_and_undeclared_cases() -> None:
    suites = kunit.read_suites(SOURCE)
    log = (
        "    # Subtest: kunitmaker\n    ok 1 kunitmaker_adds # SKIP no hardware\n"
        "    ok 4 kunitmaker_new\n"
    )
    found, extra = kunit.results(log, suites, died=False)
    assert found[("kunitmaker", "kunitmaker_adds")] == kunit.CaseResult("skip", "no hardware", "")
    assert extra == ["kunitmaker.kunitmaker_new"]
