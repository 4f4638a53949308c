"""LTP / TAP / KTAP output and exit codes -> pass, fail, skip."""

from __future__ import annotations

import pytest

from kguest.results import (
    Outcome,
    auto_verdict,
    expect_errno,
    expect_signal,
    ltp_verdict,
    parse_ltp,
    parse_tap,
    tap_verdict,
)

LTP_PASS = """tst_test.c:892: TINFO: LTP version: ring
ring01.c:75: TPASS: region 1, child: all 8192 bytes read zero
ring01.c:108: TPASS: round 0: child sees all bytes

Summary:
passed   2
"""


def test_parse_ltp_lines() -> None:
    lines = parse_ltp(LTP_PASS + "garbage TPASS: not at line start\nTFAIL: bare\n")
    assert [ln.kind for ln in lines] == ["TINFO", "TPASS", "TPASS", "TFAIL"]
    assert lines[1].message == "region 1, child: all 8192 bytes read zero"


@pytest.mark.parametrize(
    ("text", "status", "outcome", "reason_has"),
    [
        (LTP_PASS, 0, Outcome.PASS, "2 TPASS"),
        ("x.c:1: TCONF: no /dev/ring\n", 32, Outcome.SKIP, "TCONF: no /dev/ring"),
        ("x.c:1: TFAIL: byte 4 is 0x5a\n", 1, Outcome.FAIL, "TFAIL: byte 4 is 0x5a"),
        ("x.c:1: TBROK: fork failed: EAGAIN\n", 2, Outcome.FAIL, "TBROK"),
        ("x.c:1: TWARN: cleanup failed\nx.c:2: TPASS: ok\n", 4, Outcome.FAIL, "TWARN"),
        ("x.c:1: TPASS: a\nx.c:2: TFAIL: b\nx.c:3: TBROK: c\n", 3, Outcome.FAIL, "TFAIL|TBROK"),
        # exit 0 but a TFAIL line: the lines win
        ("x.c:1: TFAIL: lost\n", 0, Outcome.FAIL, "TFAIL: lost"),
        # TCONF together with TPASS and exit 0 is a pass
        ("x.c:1: TPASS: a\nx.c:2: TCONF: no 1G\n", 0, Outcome.PASS, "1 TPASS"),
        ("x.c:1: TPASS: a\n", 139, Outcome.FAIL, "SIGSEGV"),
        ("x.c:1: TINFO: hi\n", 127, Outcome.FAIL, "not found"),
        ("x.c:1: TINFO: hi\n", 64, Outcome.FAIL, "exit status 64"),
    ],
)
def test_ltp_verdict(text: str, status: int, outcome: Outcome, reason_has: str) -> None:
    v = ltp_verdict(text, status)
    assert v.outcome is outcome
    assert reason_has in v.reason


KTAP = """KTAP version 1
1..3
    KTAP version 1
    1..2
    ok 1 sub_a
    ok 2 sub_b
ok 1 suite_a
ok 2 suite_b # SKIP no hardware
not ok 3 suite_c
"""


def test_parse_tap_and_ktap() -> None:
    tap = parse_tap(KTAP)
    assert [(t.ok, t.number, t.description) for t in tap][-3:] == [
        (True, 1, "suite_a"),
        (True, 2, "suite_b"),
        (False, 3, "suite_c"),
    ]
    assert tap[-2].skipped and tap[-2].directive == "SKIP no hardware"


@pytest.mark.parametrize(
    ("text", "status", "outcome", "reason_has"),
    [
        ("1..2\nok 1 a\nok 2 - b\n", 0, Outcome.PASS, "2 ok"),
        ("1..2\nok 1 a\nnot ok 2 - b\n", 1, Outcome.FAIL, "not ok 2 b"),
        ("1..1\nnot ok 1 a # TODO later\n", 0, Outcome.PASS, ""),
        ("1..1\nok 1 a # SKIP no ring\n", 0, Outcome.SKIP, "SKIP no ring"),
        ("1..3\nok 1 a\nok 2 b\n", 0, Outcome.FAIL, "plan 1..3 but 2"),
        ("1..1\nok 1 a\n", 1, Outcome.FAIL, "exit status 1"),
        (KTAP, 0, Outcome.FAIL, "not ok 3 suite_c"),
    ],
)
def test_tap_verdict(text: str, status: int, outcome: Outcome, reason_has: str) -> None:
    v = tap_verdict(text, status)
    assert v.outcome is outcome
    assert reason_has in v.reason


def test_auto_picks_reader() -> None:
    assert auto_verdict("x.c:1: TCONF: n/a\n", 32).outcome is Outcome.SKIP
    assert auto_verdict("1..1\nnot ok 1 x\n", 1).outcome is Outcome.FAIL
    assert auto_verdict("hello\n", 0).outcome is Outcome.PASS
    assert auto_verdict("hello\n", 3).outcome is Outcome.FAIL


def test_expect_signal() -> None:
    assert expect_signal(128 + 11, "SIGSEGV").outcome is Outcome.PASS
    assert expect_signal(128 + 11, "segv").outcome is Outcome.PASS
    v = expect_signal(0, "SIGSEGV")
    assert v.outcome is Outcome.FAIL and "exit status 0" in v.reason
    assert "SIGBUS" in expect_signal(128 + 7, "SIGSEGV").reason


def test_expect_errno() -> None:
    assert expect_errno("", 22, "EINVAL").outcome is Outcome.PASS
    assert expect_errno("x.c:3: TBROK: ioctl: ENOMEM (12)\n", 2, "ENOMEM").outcome is Outcome.PASS
    assert expect_errno("ENOMEM\n", 0, "ENOMEM").outcome is Outcome.FAIL
    assert expect_errno("", 1, "EINVAL").outcome is Outcome.FAIL
