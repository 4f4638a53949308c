"""In a guest of their own: a deliberate WARN, taint, panic and hangs are reported on the
test that caused them, and the session goes on and passes the tests after each.

The guest loads tests/troublemaker (a test-only module) instead of the project's; an
inner pytest session runs a scenario file in order; this test reads its JUnit XML.
These are the only places a kernel WARN is expected.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from guestkit import build_troublemaker, inner_pytest, junit_results

from kguest import config, kernels

HERE = Path(__file__).resolve().parent
CLEAN = "test $(( $(cat /proc/sys/kernel/tainted) & ~12288 )) -eq 0"  # only O and E

SCENARIO = f"""
defaults: {{format: exit, timeout: 30}}
tests:
  - {{name: before, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: warn, binary: sh, args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/warn"]}}
  - {{name: after_warn, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: taint, binary: sh, args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/taint"]}}
  - {{name: after_taint, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: hang_user, binary: sh, args: ["-c", "echo going; sleep 600"], timeout: 4}}
  - {{name: after_hang_user, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: panic, binary: sh, args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/panic"]}}
  - {{name: after_panic, binary: sh, args: ["-c", "{CLEAN}"]}}
  - name: hang_kernel
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/hang"]
    timeout: 4
  - {{name: after_hang_kernel, binary: sh, args: ["-c", "{CLEAN}"]}}
  - name: hang_console
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/freeze"]
    timeout: 4
  - {{name: after_hang_console, binary: sh, args: ["-c", "{CLEAN}"]}}
"""


@pytest.mark.guest
def test_trouble_is_reported_on_the_right_test(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    root = HERE.parent
    cfg = config.load(root)
    kernel = kernels.select(
        cfg, print, pytestconfig.option.kernel or None, None, pytestconfig.option.kdir
    )
    ko = build_troublemaker(kernel.kdir, tmp_path / "troublemaker")
    proj = tmp_path / "proj"
    (proj / "scenarios").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [tool.kguest]
        build_command = []
        modules = ["{ko}"]
        bin_dirs = []
        boot_timeout = 240
        """)
    )
    (proj / "scenarios/trouble.yaml").write_text(SCENARIO)
    junit = tmp_path / "junit.xml"
    r = inner_pytest(proj, junit, kernel, pytestconfig.option.accel, timeout=1200)
    log = f"inner session:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    res = {k: v[:2] for k, v in junit_results(junit).items()}
    for name in (
        "before",
        "after_warn",
        "after_taint",
        "after_hang_user",
        "after_panic",
        "after_hang_kernel",
        "after_hang_console",
    ):
        assert res[name][0] == "passed", f"{name}: {res[name]}\n{log}"

    outcome, text = res["warn"]
    assert outcome == "failure", log
    assert "kernel trouble" in text and "deliberate warning" in text and "gained W" in text

    outcome, text = res["taint"]
    assert outcome == "failure" and "gained U" in text, text

    outcome, text = res["hang_user"]
    assert outcome == "failure" and "timed out" in text and "going" in text, text

    outcome, text = res["panic"]
    assert outcome == "failure" and "deliberate panic" in text and "guest died" in text, text

    outcome, text = res["hang_kernel"]
    assert outcome == "failure" and "timed out" in text and "(D state)" in text, text
    assert "hang_write" in text, text  # the kernel stack of the stuck task

    outcome, text = res["hang_console"]
    assert outcome == "failure" and "stopped answering" in text, text

    # one boot, then one after each trouble (WARN, taint, three timeouts, panic)
    boots = list((proj / "build/kguest/logs/main").glob("console-*.log"))
    assert len(boots) == 7, log
    assert r.returncode == 1, log
