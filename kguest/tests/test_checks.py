"""Coverage, the error-path sweep and KUnit items, in guests of a check kernel (one with
gcov, fault injection, KUnit and KASAN: --check-kernel=VMLINUZ --check-kdir=DIR).

A project of the test's own has tests/faultmaker (a write that allocates two objects;
its bug frees the first twice when the second allocation fails; ``fixed=1`` removes
it) as its module and tests/kunitmaker (cases that pass, fail, trip KASAN and crash)
as its KUnit module.  Two inner sessions:

* ``--kguest-coverage`` with the scenarios and the KUnit module: the reports, the
  summary line against the tracefile, one item per KUnit case;
* ``--kguest-fault-sweep``: the ordinary test passes, the sweep finds the double free
  (a KASAN report) at the second slab allocation of the test with the bug, and the
  same test with the bug removed sweeps clean.

A second project has tests/troublemaker as its module: a test that makes it leak fails
with kmemleak's report of the object and its allocation backtrace; the next passes.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestkit import inner_pytest, junit_results

from kguest import kernels
from kguest.kernels import Kernel

HERE = Path(__file__).resolve().parent

PYPROJECT = """
[tool.kguest]
build_command = []
modules = ["faultmaker/faultmaker.ko"]
bin_dirs = []
boot_timeout = 900
timeout = 300

[tool.kguest.kunit]
modules = ["kunitmaker/kunitmaker_test.ko"]

[tool.kguest.fault_sweep]
accept_errnos = ["ENOMEM"]
kinds = ["slab", "page"]
kmemleak = false        # a scan per run costs a minute or two under TCG
max_n = 12

[tool.pytest.ini_options]
junit_logging = "all"
"""

SCENARIOS = """
defaults: {format: exit}
tests:
  - name: pair
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/faultmaker/pair || { echo 'pair: ENOMEM'; exit 1; }"]
  - name: pair_fixed
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/faultmaker/pair || { echo 'pair: ENOMEM'; exit 1; }"]
    module_params: {faultmaker: ["fixed=1"]}
"""


@dataclasses.dataclass(frozen=True)
class Project:
    root: Path
    kernel: Kernel
    accel: str
    tmp: Path


def _build(src: Path, dest: Path, kdir: Path) -> None:
    shutil.copytree(src, dest)
    r = subprocess.run(
        ["make", "-C", str(kdir), f"M={dest}", "modules"], capture_output=True, text=True
    )
    assert r.returncode == 0, f"building {src.name} failed:\n{r.stdout[-3000:]}\n{r.stderr}"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Project:
    o = pytestconfig.option
    if not o.check_kernel:
        pytest.skip("no check kernel: pass --check-kernel=VMLINUZ --check-kdir=DIR")
    kdir = Path(o.check_kdir) if o.check_kdir else None
    kernel = kernels.check_match("check", Path(o.check_kernel), kdir or Path(o.check_kernel).parent)
    tmp = tmp_path_factory.mktemp("checks")
    root = tmp / "proj"
    (root / "scenarios").mkdir(parents=True)
    _build(HERE / "faultmaker", root / "faultmaker", kernel.kdir)
    _build(HERE / "kunitmaker", root / "kunitmaker", kernel.kdir)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "scenarios/checks.yaml").write_text(textwrap.dedent(SCENARIOS))
    return Project(root, kernel, o.accel, tmp)


@dataclasses.dataclass(frozen=True)
class Session:
    out: str
    results: dict[str, tuple[str, str, str]]


def _session(p: Project, name: str, *args: str) -> Session:
    junit = p.tmp / f"{name}.xml"
    r = inner_pytest(p.root, junit, p.kernel, p.accel, timeout=3600, args=args)
    return Session(r.stdout + r.stderr, junit_results(junit))


@pytest.fixture(scope="module")
def covered(project: Project) -> Iterator[Session]:
    yield _session(
        project, "coverage", "--kguest-coverage", "scenarios", "kunitmaker/kunitmaker_test.c"
    )


@pytest.fixture(scope="module")
def swept(project: Project) -> Iterator[Session]:
    yield _session(project, "sweep", "--kguest-fault-sweep", "-rA", "scenarios")


@pytest.mark.guest
@pytest.mark.check_kernel
def test_coverage_reports(project: Project, covered: Session) -> None:
    out = covered.out
    assert covered.results["pair"][0] == "passed", out[-5000:]
    cov = project.root / "build/kguest/coverage"
    trace = (cov / "coverage.info").read_text()
    assert (cov / "html/index.html").is_file() and (cov / "cobertura.xml").is_file()
    src = project.root / "faultmaker/faultmaker.c"
    assert f"SF:{src}" in trace and "/coverage/build/" not in trace  # the project's path
    section = trace[trace.index(f"SF:{src}") :].split("end_of_record")[0]
    totals = {k: int(v) for k, v in re.findall(r"^(LH|LF|BRH|BRF):(\d+)$", section, re.M)}
    line = next(ln for ln in out.splitlines() if ln.startswith("faultmaker/faultmaker.c: lines"))
    assert (
        line.startswith(f"faultmaker/faultmaker.c: lines {totals['LH']}/{totals['LF']} ")
        and f"branches {totals['BRH']}/{totals['BRF']} " in line
    ), (line, totals)
    # the success path ran, the failure path never did
    lines = src.read_text().splitlines()
    hits = {int(n): int(c) for n, c in re.findall(r"^DA:(\d+),(\d+)", section, re.M)}
    assert hits[next(i for i, s in enumerate(lines, 1) if "kfree(second);" in s)] >= 2
    assert hits[next(i for i, s in enumerate(lines, 1) if "ret = -ENOMEM;" in s)] == 0
    # module init ran once per configuration (two: with and without fixed=1), not per restore
    init = next(i for i, s in enumerate(lines, 1) if 'debugfs_create_dir("faultmaker"' in s)
    assert hits[init] == 2, hits[init]


@pytest.mark.guest
@pytest.mark.check_kernel
def test_kunit_cases_are_items(covered: Session) -> None:
    res = covered.results
    out = covered.out
    assert res["kunitmaker.kunitmaker_adds"][0] == "passed", out[-5000:]
    outcome, text, _ = res["kunitmaker.kunitmaker_fails"]
    assert outcome == "failure" and "not ok" in text, text
    outcome, text, _ = res["kunitmaker.kunitmaker_use_after_free"]
    # "slab-use-after-free" since 6.5
    assert outcome == "failure" and re.search(r"KASAN: (slab-)?use-after-free", text), text
    outcome, text, _ = res["kunitmaker_crash.kunitmaker_crashes"]
    assert outcome == "failure" and "guest died during this case" in text, text
    assert "kunitmaker_crashes" in text and "null-ptr-deref" in text, text  # KASAN's words
    outcome, text, _ = res["kunitmaker_crash.kunitmaker_after_crash"]
    assert outcome == "failure" and "not run: the guest died" in text, text


@pytest.mark.guest
@pytest.mark.check_kernel
def test_sweep_finds_the_double_free(swept: Session) -> None:
    res, out = swept.results, swept.out
    assert res["pair"][0] == "passed", out[-5000:]  # the ordinary test passes
    assert res["pair[sweep-slab-1]"][0] == "passed", res["pair[sweep-slab-1]"]  # ENOMEM: handled
    outcome, text, _ = res["pair[sweep-slab-2]"]
    assert outcome == "failure", out[-5000:]
    assert "kernel report" in text and "KASAN: double-free" in text, text
    assert re.search(r"slab call 2 failing at \S*faultmaker\.c:\d+ \(pair_write\)", text), text
    assert "pair[sweep-slab-3]" not in res  # the third run injected nothing: the end
    row = next(ln for ln in out.splitlines() if re.match(r"pair\s+slab\s+2\s", ln))
    assert "kernel report" in row, row


@pytest.mark.guest
@pytest.mark.check_kernel
def test_sweep_clean_without_the_bug(swept: Session) -> None:
    fixed = {k: v for k, v in swept.results.items() if k.startswith("pair_fixed[sweep-")}
    assert {"pair_fixed[sweep-slab-1]", "pair_fixed[sweep-slab-2]"} <= set(fixed), fixed
    assert all(v[0] == "passed" for v in fixed.values()), fixed


LEAK_PYPROJECT = """
[tool.kguest]
build_command = []
modules = ["troublemaker/troublemaker.ko"]
bin_dirs = []
boot_timeout = 900
timeout = 300
"""

LEAK_SCENARIOS = """
defaults: {format: exit}
tests:
  - name: leaks
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/leak"]
  - name: after_the_leak
    binary: "true"
"""


@pytest.mark.guest
@pytest.mark.check_kernel
def test_a_leak_fails_the_test_that_made_it(project: Project) -> None:
    root = project.tmp / "leaky"
    (root / "scenarios").mkdir(parents=True)
    _build(HERE / "troublemaker", root / "troublemaker", project.kernel.kdir)
    (root / "pyproject.toml").write_text(LEAK_PYPROJECT)
    (root / "scenarios/leaks.yaml").write_text(textwrap.dedent(LEAK_SCENARIOS))
    junit = project.tmp / "leaks.xml"
    r = inner_pytest(root, junit, project.kernel, project.accel, timeout=1800)
    res = junit_results(junit)
    outcome, text, _ = res["leaks"]
    assert outcome == "failure", (r.stdout + r.stderr)[-5000:]
    assert "kmemleak: unreferenced object" in text and "(64 bytes)" in text, text
    assert "leak_write" in text, text  # the allocation's backtrace names the module's function
    assert res["after_the_leak"][0] == "passed", res["after_the_leak"]
