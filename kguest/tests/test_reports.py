"""What a module author sees, in a project of their own with tests/troublemaker as its
module: each check below is one thing that used to read badly or pass silently.

* a typo in a module or parameter name is an error (modinfo knows the names);
* a module that fails to load says why (modprobe's error and the kernel's words);
* a failing or skipped Python test shows the test's own line, no kguest source;
* the kernel's log stays readable from a test (``dmesg``);
* an Oops shows once, with the module's frames as ``troublemaker.c:LINE``;
* a test that times out shows where it was stuck (its processes' kernel stacks);
* module parameters per test: a marker, a scenario key, a matrix key;
* a passing test's guest output and kernel log reach JUnit (junit_logging=all)
  and the HTML page (pytest-html), with how its guest started.

One inner pytest session runs the project's tests (scenarios and Python); the
tests here read its JUnit XML, terminal output and HTML page.  Two more short
sessions check the set-up errors.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestkit import ROOT, build_troublemaker, inner_pytest, junit_results

from kguest import config, kernels
from kguest.kernels import Kernel

PYPROJECT = """
[tool.kguest]
build_command = []
modules = ["{ko}"]
bin_dirs = []
boot_timeout = 240
timeout = 60

[tool.kguest.matrix.lvl]
module_param = "troublemaker.level"
kind = "int"

[tool.pytest.ini_options]
junit_logging = "all"
"""

SCENARIOS = """
tests:
  - name: level_key
    binary: sh
    args: ["-c", "test $(cat /sys/module/troublemaker/parameters/level) = 5"]
    module_params: {troublemaker: ["level=5"]}
    format: exit
  - name: level_matrix
    binary: sh
    args: ["-c", "echo level=$(cat /sys/module/troublemaker/parameters/level)"]
    matrix: {lvl: ["1", "2"]}
    format: exit
"""

PY_TESTS = """
import pytest


def test_fails(kguest_run):
    kguest_run("echo to-stdout; exit 3", fmt="exit")


def test_skips(kguest_run):
    kguest_run("echo 'x.c:1: TCONF: not on this guest'; exit 32")


def test_dmesg(kguest_run):
    run = kguest_run("dmesg | grep 'troublemaker: loaded'")
    assert "level 0" in run.result.output


@pytest.mark.kguest(module_params={"troublemaker": ["level=7"]})
def test_marker_params(kguest_run):
    run = kguest_run("cat /sys/module/troublemaker/parameters/level")
    assert run.result.output.strip() == "7"


def test_passes_with_output(kguest_run):
    kguest_run("echo visible-in-junit; echo kernel-side-line > /dev/kmsg")


def test_oops(kguest_run):
    kguest_run("echo 1 > /sys/kernel/debug/troublemaker/oops")


def test_stuck(kguest_run):
    kguest_run("echo 1 > /sys/kernel/debug/troublemaker/sleep", timeout=10)


def test_after(kguest_run):
    kguest_run("true")
"""


@dataclasses.dataclass(frozen=True)
class Run:
    proj: Path
    ko: Path
    kernel: Kernel
    accel: str
    out: str  # the inner session's terminal output
    results: dict[str, tuple[str, str, str]]  # JUnit: name -> (outcome, text, system-out)
    html: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("reports")
    o = pytestconfig.option
    kernel = kernels.select(config.load(ROOT), print, o.kernel or None, None, o.kdir)
    ko = build_troublemaker(kernel.kdir, tmp / "troublemaker")
    proj = tmp / "proj"
    (proj / "scenarios").mkdir(parents=True)
    (proj / "pyproject.toml").write_text(PYPROJECT.format(ko=ko))
    (proj / "scenarios/levels.yaml").write_text(textwrap.dedent(SCENARIOS))
    (proj / "test_points.py").write_text(PY_TESTS)
    junit = tmp / "junit.xml"
    html = tmp / "report.html"
    args = ("-rs", f"--html={html}", "--self-contained-html", "scenarios", "test_points.py")
    r = inner_pytest(proj, junit, kernel, o.accel, timeout=1500, args=args)
    out = r.stdout + r.stderr
    yield Run(proj, ko, kernel, o.accel, out, junit_results(junit), html.read_text())


def _failure(run: Run, name: str) -> str:
    outcome, text, _ = run.results[name]
    assert outcome == "failure", f"{name}: {outcome}\n{run.out[-6000:]}"
    return text


@pytest.mark.guest
def test_python_failure_shows_no_kguest_source(run: Run) -> None:
    text = _failure(run, "test_fails")
    assert "exit status 3" in text and "to-stdout" in text, text
    assert 'kguest_run("echo to-stdout; exit 3", fmt="exit")' in text  # the test's line
    for leak in ("def finish", "plugin.py", "__tracebackhide__", "raise GuestTestFailure"):
        assert leak not in text, f"{leak!r} in the failure:\n{text}"
    terminal = run.out[run.out.index("test_fails") :]
    assert "def finish" not in terminal and "kguest/plugin.py" not in terminal


@pytest.mark.guest
def test_skip_points_at_the_test(run: Run) -> None:
    outcome, text, _ = run.results["test_skips"]
    assert outcome == "skipped" and "not on this guest" in text, text
    line = next(ln for ln in run.out.splitlines() if ln.startswith("SKIPPED") and "TCONF" in ln)
    assert re.search(r"test_points\.py:\d+: TCONF: not on this guest", line), line


@pytest.mark.guest
def test_a_skip_fails_under_ci(run: Run, tmp_path: Path) -> None:
    """Under CI=true a guest test that cannot run is a broken prerequisite, not a skip."""
    junit = tmp_path / "junit.xml"
    args = ("test_points.py", "-k", "test_skips")
    r = inner_pytest(
        run.proj, junit, run.kernel, run.accel, 600, args, extra_env={"CI": "true"}
    )
    outcome, text, _ = junit_results(junit)["test_skips"]
    assert r.returncode == pytest.ExitCode.TESTS_FAILED and outcome == "failure", r.stdout
    assert "skipped under CI=true: TCONF: not on this guest" in text, text


@pytest.mark.guest
def test_dmesg_in_a_test_sees_the_boot_log(run: Run) -> None:
    assert run.results["test_dmesg"][0] == "passed", run.results["test_dmesg"]


@pytest.mark.guest
def test_oops_once_with_file_and_line(run: Run) -> None:
    text = _failure(run, "test_oops")
    assert text.count("BUG: kernel NULL pointer dereference") == 1, text
    src = (Path(__file__).parent / "troublemaker/troublemaker.c").read_text().splitlines()
    line = next(i for i, s in enumerate(src, 1) if "troublemaker: reading" in s)
    assert re.search(
        rf"oops_write\+0x[0-9a-f]+/0x[0-9a-f]+ \[troublemaker\] \(\S*troublemaker\.c:{line}\)", text
    ), text
    assert run.results["test_after"][0] == "passed", run.results["test_after"]


@pytest.mark.guest
def test_timeout_shows_the_stuck_stack(run: Run) -> None:
    text = _failure(run, "test_stuck")
    assert "timed out after" in text and "kguest: still running after" in text, text
    assert re.search(
        r"sleep_write\+0x[0-9a-f]+/0x[0-9a-f]+ \[troublemaker\] \(\S*troublemaker\.c:\d+\)", text
    ), text


@pytest.mark.guest
def test_module_params_per_test(run: Run) -> None:
    assert run.results["test_marker_params"][0] == "passed", run.results["test_marker_params"]
    assert run.results["level_key"][0] == "passed", run.results["level_key"]
    for value in ("1", "2"):
        outcome, _, sysout = run.results[f"level_matrix[{value}]"]
        assert outcome == "passed" and f"level={value}" in sysout, (outcome, sysout)


@pytest.mark.guest
def test_passing_output_reaches_junit_and_html(run: Run) -> None:
    outcome, _, sysout = run.results["test_passes_with_output"]
    assert outcome == "passed"
    assert "visible-in-junit" in sysout and "kernel-side-line" in sysout, sysout
    assert "visible-in-junit" in run.html and "kernel-side-line" in run.html
    assert "Guest start" in run.html and re.search(r"(restore|boot) \d+\.\d\d s", run.html)


def _setup_error(run: Run, tmp: Path, *args: str) -> str:
    r = inner_pytest(
        run.proj,
        tmp / "junit.xml",
        run.kernel,
        run.accel,
        timeout=600,
        args=("test_points.py", "-k", "dmesg or marker", *args),
    )
    out = r.stdout + r.stderr
    assert r.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out
    return out


@pytest.mark.guest
def test_module_and_parameter_typos_are_errors(run: Run, tmp_path: Path) -> None:
    out = _setup_error(run, tmp_path, "--module-param", "troublemakr.level=1")
    assert "the guest has no module 'troublemakr'" in out and "its modules: troublemaker" in out
    assert out.count("ERROR at setup") == 1, out  # reported once, then the run stops
    out = _setup_error(run, tmp_path, "--module-param", "troublemaker.lvel=1")
    assert "troublemaker has no parameter 'lvel'" in out
    assert "its parameters: fail_init, level" in out
    r = subprocess.run(
        [
            str(Path(sys.executable).parent / "kguest"),
            "run",
            "--module-param",
            "troublemaker.lvel=1",
            "--",
            "true",
        ],
        cwd=run.proj,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 125 and "has no parameter 'lvel'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.guest
def test_load_error_says_why(run: Run, tmp_path: Path) -> None:
    out = _setup_error(run, tmp_path, "--module-param", "troublemaker.fail_init=1")
    assert "module troublemaker failed to load in the guest" in out, out
    assert "Invalid argument" in out, out  # modprobe's words
    assert "fail_init is set, refusing to load" in out, out  # the kernel's
    assert "make build" not in out


@pytest.mark.guest
def test_a_command_line_word_the_kernel_does_not_know_is_an_error(run: Run, tmp_path: Path) -> None:
    """Debian's 6.1 has no kmemleak: kmemleak=on must not pass silently."""
    out = _setup_error(
        run, tmp_path, "--kernel-cmdline", "kguest_no_such_option=1", "--no-snapshots"
    )
    assert "does not know the command-line word(s) kguest_no_such_option=1" in out, out
