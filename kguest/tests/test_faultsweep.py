"""The error-path sweep's host side: what a run's verdict is, where the failed call was,
what the guest is told to do."""

from __future__ import annotations

from kguest import faultsweep
from kguest.console import CommandResult
from kguest.guest import TestRun as Run
from kguest.results import Outcome
from kguest.trouble import Trouble

STACK = """\
 kgf_count_call+0x6e/0x140 [kguest_fault]
 kprobe_ftrace_handler+0x10b/0x1c0
 should_fail_ex+0x5/0x230
 __should_failslab+0x91/0xb0
 kmalloc_trace+0x2a/0x90
 pair_write+0x61/0x110 [faultmaker]
 full_proxy_write+0x6f/0xa0
"""


CLEAN = Trouble()


def _run(output: str, status: int, trouble: Trouble = CLEAN, died: str = "") -> Run:
    return Run(CommandResult("t", output, status, 1.0), trouble, died=died)


def test_call_site_is_the_modules_innermost_frame() -> None:
    assert faultsweep.call_site(STACK, {"faultmaker"}) == ("faultmaker", "pair_write", 0x61)
    assert faultsweep.call_site(STACK, {"other"}) is None


def test_verdicts() -> None:
    accept = ("ENOMEM",)
    passed = faultsweep.judge(_run("ok", 0), Outcome.PASS, accept, "")
    assert passed == faultsweep.Verdict(faultsweep.HANDLED, "passed") and passed.ok
    enomem = faultsweep.judge(_run("sfork: ENOMEM (12)", 2), Outcome.FAIL, accept, "")
    assert enomem.ok and "ENOMEM" in enomem.detail
    other = faultsweep.judge(_run("sfork: EINVAL (22)", 2), Outcome.FAIL, accept, "")
    assert other.what == faultsweep.TEST_FAILURE and not other.ok
    kasan = Trouble(excerpts=("\nBUG: KASAN: double-free in pair_write+0x8c/0x120 [pair]\n...",))
    reported = faultsweep.judge(_run("ok", 0, kasan), Outcome.PASS, accept, "")
    assert reported.what == faultsweep.KERNEL_REPORT
    assert reported.detail.startswith("BUG: KASAN: double-free"), reported.detail
    died = faultsweep.judge(_run("", -1, died="Kernel panic"), Outcome.FAIL, accept, "")
    assert died.what == faultsweep.KERNEL_REPORT
    leak = faultsweep.judge(
        _run("ok", 0), Outcome.PASS, accept, "unreferenced object 0xffff888 (size 64):"
    )
    assert leak.what == faultsweep.LEAK and "unreferenced object" in leak.detail


def test_setup_lets_every_allocation_be_a_candidate() -> None:
    script = faultsweep._setup_script(("slab", "page", "function"), [(0x1000, 0x2000)])
    for line in (
        "echo 0 > failslab/probability",
        "echo N > failslab/ignore-gfp-wait",
        "echo N > fail_page_alloc/ignore-gfp-wait",
        "echo N > fail_page_alloc/ignore-gfp-highmem",
        "echo 0 > fail_page_alloc/min-order",
        "echo 0 > fail_function/probability",
        "echo 1000 2000 > /sys/kernel/debug/kguest_fault/ranges",
        "echo 7 > /sys/kernel/debug/kguest_fault/kinds",
    ):
        assert line in script, line
    assert "should_failslab|should_fail_alloc_page) continue" in script
    only_slab = faultsweep._setup_script(("slab",), [(1, 2)])
    assert "fail_page_alloc" not in only_slab and "fail_function" not in only_slab


def test_table() -> None:
    rows = [
        faultsweep.Row("pair", "slab", 1, "pair.c:24 (pair_write)", faultsweep.HANDLED, "passed"),
        faultsweep.Row("pair", "slab", 2, "pair.c:26 (pair_write)", "kernel report", "BUG: x"),
    ]
    lines = faultsweep.table(rows)
    assert lines[0].split() == ["test", "kind", "N", "site", "verdict"]
    assert lines[1].endswith("handled") and lines[2].endswith("kernel report: BUG: x")
