"""Taint flags and kernel-log scanning."""

from __future__ import annotations

from kguest.trouble import Trouble, bad_taint, scan, taint_letters, taint_mask

WARN_LOG = """[   10.1] ring: region created
[   10.2] ------------[ cut here ]------------
[   10.2] troublemaker: deliberate warning
[   10.2] WARNING: CPU: 0 PID: 91 at troublemaker.c:20 warn_write+0x5/0x10 [troublemaker]
[   10.2] Modules linked in: troublemaker(OE)
[   10.2] Call Trace:
[   10.2]  <TASK>
"""


def test_taint_letters() -> None:
    assert taint_letters(4096 | 8192) == "OE"
    assert taint_letters(512) == "W"
    assert taint_letters(0) == ""
    assert taint_mask("OE") == 12288


def test_bad_taint_allows_only_o_and_e() -> None:
    assert bad_taint(0, 12288) == 0  # loading the out-of-tree module
    assert bad_taint(12288, 12288 | 512) == 512  # WARN
    assert bad_taint(512, 512 | 12288) == 0  # old W does not count again
    assert bad_taint(0, 64) == 64  # U
    assert bad_taint(0, 512, allowed="W") == 0


def test_scan_finds_warning_with_context() -> None:
    hits = scan(WARN_LOG)
    assert len(hits) == 1
    assert "deliberate warning" in hits[0] and "Call Trace" in hits[0]


def test_scan_clean_and_user_segfault_lines() -> None:
    log = "[1.0] ring02[220]: segfault at 7f2a error 7 in ring02[401000+ad000]\n[1.1] Code: 89\n"
    assert scan(log) == []
    assert scan("") == []


def test_oom_kill_is_not_trouble() -> None:
    log = """[141.0] ring11 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0
[141.0] CPU: 1 PID: 1109 Comm: ring11 Tainted: G           OE      6.1.0-56-amd64 #1
[141.0] Call Trace:
[141.0]  <TASK>
[141.0]  oom_kill_process.cold+0xb/0x10
[141.0] RIP: 0033:0x4017c3
[141.0] Memory cgroup out of memory: Killed process 114 (ring11)
"""
    assert scan(log) == []


def test_scan_patterns() -> None:
    for line in [
        "BUG: unable to handle page fault",
        "Kernel panic - not syncing: x",
        "refcount_t: underflow; use-after-free.",
        "list_add corruption. prev->next",
        "Oops: 0002 [#1] SMP",
        "general protection fault, probably",
    ]:
        assert scan(f"[1.0] {line}\n"), line


def test_trouble_report() -> None:
    t = Trouble(new_taint=512, excerpts=("WARNING: x",))
    assert t and "gained W" in t.report() and "WARNING: x" in t.report()
    assert not Trouble()
    # the message names the configured allowance, whatever it is
    assert 'not in allowed_taint = "OE"' in t.report()
    t = Trouble(new_taint=4096, allowed="E")
    assert "gained O" in t.report() and 'not in allowed_taint = "E"' in t.report()
