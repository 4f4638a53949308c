"""The pytest plugin's collection: scenario items, ids, opt-in selection, errors."""

from __future__ import annotations

import textwrap

import pytest

PYPROJECT = """
[tool.kguest]
build_command = []
modules = []
bin_dirs = []

[tool.kguest.matrix.side]
option = "-d"
kind = "words"
values = ["both", "rd", "wr"]

[tool.kguest.matrix.alloc]
option = "-a"
kind = "words"
values = ["lazy", "eager", "auto"]

[tool.kguest.matrix.size]
option = "-s"
kind = "size"
big = "256M"

[tool.kguest.kernels.rt]
vmlinuz = "/nonexistent/vmlinuz"
kdir = "/nonexistent/build"
"""

SCEN = """
tests:
  - name: rw_visibility
    binary: ring01
    matrix: {side: [both, rd], alloc: [eager], size: [4K, 2M]}
    big: {size: [1G]}
    kernels: [default, rt]
    tags: [smoke]
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject=PYPROJECT)
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios/s.yaml").write_text(textwrap.dedent(SCEN))
    (pytester.path / "other.yaml").write_text("not: a scenario\n")
    return pytester


def ids(result: pytest.RunResult) -> list[str]:
    return [ln.split("::", 1)[1] for ln in result.outlines if "::" in ln]


def test_default_selection(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert ids(r) == [
        "rw_visibility[both-eager-4K]",
        "rw_visibility[both-eager-2M]",
        "rw_visibility[rd-eager-4K]",
        "rw_visibility[rd-eager-2M]",
    ]
    r.stdout.fnmatch_lines(["*4/12 tests collected (8 deselected)*"])


def test_big_and_kernels_opt_in(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "--big", "--kernels=default,rt")
    assert len(ids(r)) == 12
    assert "rw_visibility[rt-rd-eager-1G]" in ids(r)
    # one kernel's items together (a worker reboots only when the kernel changes)
    kinds = ["rt" if "[rt-" in i else "default" for i in ids(r)]
    assert kinds == ["default"] * 6 + ["rt"] * 6
    r = project.runpytest("--collect-only", "-q", "--kernels=rt")
    assert ids(r) == [
        "rw_visibility[rt-both-eager-4K]",
        "rw_visibility[rt-both-eager-2M]",
        "rw_visibility[rt-rd-eager-4K]",
        "rw_visibility[rt-rd-eager-2M]",
    ]


def test_repeat_runs_every_test_n_times(project: pytest.Pytester) -> None:
    project.makepyfile(test_py="def test_a():\n    pass\n")
    r = project.runpytest("--collect-only", "-q", "--kguest-repeat", "2", "-k", "4K or test_a")
    assert ids(r) == [
        "test_a[1of2]",
        "test_a[2of2]",
        "rw_visibility[both-eager-4K-1of2]",
        "rw_visibility[both-eager-4K-2of2]",
        "rw_visibility[rd-eager-4K-1of2]",
        "rw_visibility[rd-eager-4K-2of2]",
    ]
    r = project.runpytest("--collect-only", "-q", "--kguest-repeat", "0")
    r.stderr.fnmatch_lines(["*kguest: --kguest-repeat 0: not a count*"])


def test_kernels_apply_to_python_tests(project: pytest.Pytester) -> None:
    """--kernels copies each Python test that uses a guest for every other kernel (ids as
    a scenario's: the kernel first); one with a marker kernel runs only if selected."""
    project.makepyfile(
        test_py="""
        import pytest

        def test_guest(kguest_run):
            pass

        @pytest.mark.parametrize("n", [1, 2])
        def test_param(kguest_guest, n):
            pass

        @pytest.mark.kguest(kernel="rt")
        def test_pinned(kguest_run):
            pass

        def test_plain():
            pass
        """
    )
    r = project.runpytest("--collect-only", "-q", "test_py.py")
    assert ids(r) == ["test_guest", "test_param[1]", "test_param[2]", "test_plain"]
    r = project.runpytest("--collect-only", "-q", "--kernels=default,rt", "test_py.py")
    assert ids(r) == [
        "test_guest",
        "test_param[1]",
        "test_param[2]",
        "test_pinned",
        "test_plain",
        "test_guest[rt]",
        "test_param[rt-1]",
        "test_param[rt-2]",
    ]
    r = project.runpytest("--collect-only", "-q", "--kernels=all", "test_py.py")
    assert len(ids(r)) == 8
    r = project.runpytest("--collect-only", "-q", "--kernels=rt", "test_py.py")
    assert ids(r) == [
        "test_pinned",
        "test_plain",
        "test_guest[rt]",
        "test_param[rt-1]",
        "test_param[rt-2]",
    ]


def test_markers_select(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "-m", "not smoke")
    assert ids(r) == []
    r = project.runpytest("--collect-only", "-q", "-k", "rd and 2M")
    assert ids(r) == ["rw_visibility[rd-eager-2M]"]


def test_schema_error_is_a_collection_error(project: pytest.Pytester) -> None:
    (project.path / "scenarios/bad.yaml").write_text(
        "tests:\n  - name: x\n    binary: y\n    matrix: {side: [up]}\n"
    )
    r = project.runpytest("--collect-only", "-q")
    r.stdout.fnmatch_lines(
        ["*scenarios/bad.yaml:4: side: 'up' is not allowed*", "*-> allowed: both, rd, wr*"]
    )
    assert r.ret == pytest.ExitCode.INTERRUPTED


def test_config_error_is_one_usage_error(project: pytest.Pytester) -> None:
    """A broken [tool.kguest] stops the run before anything is collected, with kguest's
    one line (and its hint), never a traceback; the same under xdist."""
    toml = project.path / "pyproject.toml"
    toml.write_text(PYPROJECT.replace("bin_dirs = []", "bin_dir = []"))
    for extra in ([], ["-n", "2"]):
        r = project.runpytest("--collect-only", "-q", *extra)
        r.stderr.fnmatch_lines(
            [
                "*kguest: *pyproject.toml: unknown key ?tool.kguest? bin_dir",
                "*-> allowed: *bin_dirs*",
            ]
        )
        assert r.ret == pytest.ExitCode.USAGE_ERROR
        assert "Traceback" not in r.stdout.str() + r.stderr.str()
        assert (r.stdout.str() + r.stderr.str()).count("unknown key") == 1
    toml.write_text(PYPROJECT.replace('kind = "size"', 'kind = "bytes"'))
    r = project.runpytest("--collect-only", "-q")
    r.stderr.fnmatch_lines(
        ["*?tool.kguest.matrix.size? kind = 'bytes' is not known", "*allowed: words, size*"]
    )
    assert r.ret == pytest.ExitCode.USAGE_ERROR


def test_unknown_kernel_name_is_one_usage_error(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "--kernels=default,6.12")
    r.stderr.fnmatch_lines(
        ["*kguest: --kernels: unknown kernel '6.12'*", '*declared: default, rt*"6.12"*']
    )
    assert r.ret == pytest.ExitCode.USAGE_ERROR


def test_yaml_outside_scenario_dir_named_on_the_command_line(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "other.yaml")
    r.stdout.fnmatch_lines(["*other.yaml is not a scenario: it is outside scenario_dir*"])
    assert r.ret == pytest.ExitCode.INTERRUPTED
    # found by a directory walk, a YAML file elsewhere is not kguest's business
    r = project.runpytest("--collect-only", "-q")
    assert r.ret == pytest.ExitCode.OK and len(ids(r)) == 4


def test_user_matrix_keys_make_the_ids(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject="[tool.kguest]\nbuild_command = []\n"
        '[tool.kguest.matrix.mode]\noption = "-m"\nkind = "words"\n'
        'values = ["blocking", "nonblocking"]\n'
        '[tool.kguest.matrix.count]\noption = "-c"\nkind = "int"\n',
    )
    (pytester.path / "scenarios").mkdir()
    (pytester.path / "scenarios/h.yaml").write_text(
        "tests:\n  - {name: echo, binary: e, matrix: {mode: [blocking], count: [1, 100]}}\n"
    )
    r = pytester.runpytest("--collect-only", "-q")
    assert ids(r) == ["echo[blocking-1]", "echo[blocking-100]"]


def test_bad_module_param_option_is_a_usage_error(project: pytest.Pytester) -> None:
    r = project.runpytest("--collect-only", "-q", "--module-param", "hello")
    r.stderr.fnmatch_lines(["*--module-param 'hello' is not MODULE.NAME=VALUE*"])
    assert r.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_set_up_error_is_reported_once_and_ends_the_run(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """A failing build (the user's) is reported once, on one test, with kguest's message
    and the build's last lines; the run stops there, also with two xdist workers."""
    pytester.makefile(".toml", pyproject='[tool.kguest]\nbuild_command = ["false"]\n')
    pytester.makepyfile(
        test_x="\n".join(f"def test_{i}(kguest_run):\n    kguest_run('true')\n" for i in range(6))
    )
    r = pytester.runpytest("-q", "-p", "no:cacheprovider", "-rs", *workers)
    out = r.stdout.str()
    r.stdout.fnmatch_lines(["*build failed (exit 1): false KDIR=*", "*-> fix the build error*"])
    assert out.count("--- last lines of") == 1, out
    assert "Interrupted: kguest: build failed (exit 1)" in out, out
    assert "Traceback" not in out and "GuestRunner" not in out and "plugin.py" not in out
    assert r.ret == pytest.ExitCode.INTERRUPTED


def test_skip_key_is_reported_without_a_guest(project: pytest.Pytester) -> None:
    (project.path / "scenarios/skip.yaml").write_text(
        "tests:\n  - {name: later, binary: y, skip: not written yet}\n"
    )
    r = project.runpytest("-q", "scenarios/skip.yaml", "-rs")
    r.stdout.fnmatch_lines(["*SKIPPED*not written yet*"])
    assert r.ret == pytest.ExitCode.OK


KUNIT_SOURCE = """
static struct kunit_case hello_cases[] = { KUNIT_CASE(hello_adds), KUNIT_CASE(hello_reads), {} };
static struct kunit_suite hello_suite = { .name = "hello", .test_cases = hello_cases };
kunit_test_suite(hello_suite);
"""


def test_kunit_cases_are_items(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        pyproject='[tool.kguest]\nbuild_command = []\n[tool.kguest.kunit]\n'
        'modules = ["k/hello_test.ko"]\nkernels = ["default", "rt"]\n'
        '[tool.kguest.kernels.rt]\nvmlinuz = "/nonexistent"\nkdir = "/nonexistent"\n',
    )
    (pytester.path / "k").mkdir()
    (pytester.path / "k/hello_test.c").write_text(KUNIT_SOURCE)
    (pytester.path / "k/other.c").write_text("int x;\n")
    r = pytester.runpytest("--collect-only", "-q", "k")
    assert ids(r) == ["hello.hello_adds", "hello.hello_reads"], r.stdout.str()
    r = pytester.runpytest("--collect-only", "-q", "--kernels=all", "k")
    assert ids(r) == [
        "hello.hello_adds",
        "hello.hello_adds[rt]",
        "hello.hello_reads",
        "hello.hello_reads[rt]",
    ], r.stdout.str()


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--kguest-coverage", "coverage needs a kernel with CONFIG_GCOV_KERNEL; kernel default"),
        ("--kguest-fault-sweep", "--kguest-fault-sweep needs a kernel with CONFIG_FAULT_INJECTION"),
    ],
)
def test_a_kernel_without_the_feature_is_one_error(
    pytester: pytest.Pytester, flag: str, message: str
) -> None:
    """Debian's kernel has neither gcov nor fault injection: one line, before any build."""
    pytester.makefile(".toml", pyproject='[tool.kguest]\nbuild_command = ["false"]\n')
    pytester.makepyfile(test_x="def test_a(kguest_run):\n    kguest_run('true')\n")
    r = pytester.runpytest("-q", "-p", "no:cacheprovider", flag)
    out = r.stdout.str()
    assert f"Interrupted: kguest: {message}" in out, out
    assert "build failed" not in out and "Traceback" not in out


@pytest.mark.parametrize("workers", [[], ["-n", "2"]])
def test_more_results_of_an_item_get_their_own_ids(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """An item's further results (a sweep's N, a KUnit case its source lacks) are reported
    under their own node ids, with and without xdist (whose workers allow one id per item)."""
    pytester.makefile(".toml", pyproject="[tool.kguest]\nbuild_command = []\n")
    pytester.makepyfile(
        test_x="""
from kguest.plugin import emit_report, sub_id

def test_a(request):
    for n, ok in ((1, True), (2, False)):
        emit_report(request.node, sub_id(request.node.nodeid, f"sweep-slab-{n}"), ok,
                    f"failed at {n}", "out", 0.1, [])
"""
    )
    junit = pytester.path / "junit.xml"
    r = pytester.runpytest("-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *workers)
    r.assert_outcomes(passed=2, failed=1)
    xml = junit.read_text()
    assert 'name="test_a[sweep-slab-1]"' in xml and 'name="test_a[sweep-slab-2]"' in xml
    assert "failed at 2" in xml and "kguest_subreports" not in xml
