"""Scenario YAML: expansion into items, ids, and every schema error (file:line + hint)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kguest.config import MatrixKey
from kguest.errors import ScenarioError
from kguest.scenarios import load_file

# A project's matrix vocabulary, as [tool.kguest.matrix] declares it (a ring-buffer module's).
KEYS = (
    MatrixKey("side", "-d", "words", ("both", "rd", "wr")),
    MatrixKey("alloc", "-a", "words", ("lazy", "eager", "auto")),
    MatrixKey("size", "-s", "size", big=256 << 20),
)


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def test_full_matrix_ids_and_argv(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        tests:
          - name: rw_visibility
            binary: ring01
            args: ["-i", 2]
            matrix:
              side: [both, rd, wr]
              alloc: [lazy, eager, auto]
              size: [4K, 2M]
        """,
    )
    cases = load_file(p, keys=KEYS)
    assert len(cases) == 18
    ids = [c.id for c in cases]
    assert ids[0] == "rw_visibility[both-lazy-4K]"
    assert "rw_visibility[rd-eager-2M]" in ids
    c = cases[ids.index("rw_visibility[rd-eager-2M]")]
    assert c.argv == ("ring01", "-d", "rd", "-a", "eager", "-s", "2M", "-i", "2")
    assert c.command == "ring01 -d rd -a eager -s 2M -i 2"
    assert c.expect.kind == "pass" and c.kernel == "default" and not c.big
    assert c.line == 2


def test_exclude_by_kernel(tmp_path: Path) -> None:
    """A kernel runs a share of the matrix: ``kernel`` in an exclude entry."""
    p = write(
        tmp_path,
        """
        tests:
          - name: m
            binary: ring06
            matrix: {side: [rd, wr], size: [4K, 2M]}
            kernels: [default, rt]
            exclude: [{kernel: rt, size: 2M}, {kernel: rt, side: wr}]
        """,
    )
    ids = {c.id for c in load_file(p, keys=KEYS)}
    assert ids == {"m[rd-4K]", "m[rd-2M]", "m[wr-4K]", "m[wr-2M]", "m[rt-rd-4K]"}


def test_exclude_names_a_kernel_the_test_has(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        tests:
          - name: m
            binary: ring06
            matrix: {side: [rd, wr]}
            exclude: [{kernel: rt}]
        """,
    )
    with pytest.raises(ScenarioError, match="kernel='rt' is not one of the test's kernels"):
        load_file(p, keys=KEYS)


def test_no_matrix_defaults_exclude_big_kernels(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        defaults:
          timeout: 30
          tags: [ring]
        tests:
          - name: plain
            binary: ring05
          - name: m
            binary: ring06
            matrix: {side: [rd, wr], size: [4K]}
            exclude: [{side: wr}]
            big: {size: [1G]}
            kernels: [default, rt]
            expect: {signal: segv}
            timeout: 99
        """,
    )
    cases = load_file(p, keys=KEYS)
    by_id = {c.id: c for c in cases}
    assert by_id["plain"].argv == ("ring05",) and by_id["plain"].timeout == 30
    assert by_id["plain"].tags == ("ring",)
    assert set(by_id) == {"plain", "m[rd-4K]", "m[rd-1G]", "m[rt-rd-4K]", "m[rt-rd-1G]"}
    assert by_id["m[rd-1G]"].big and not by_id["m[rd-4K]"].big
    assert by_id["m[rt-rd-4K]"].kernel == "rt"
    assert by_id["m[rd-4K]"].expect.name == "SIGSEGV" and by_id["m[rd-4K]"].timeout == 99


def test_whole_test_big(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        tests:
          - {name: soak, binary: ring14, big: true, matrix: {side: [both, rd]}}
        """,
    )
    cases = load_file(p, keys=KEYS)
    assert [(c.id, c.big) for c in cases] == [("soak[both]", True), ("soak[rd]", True)]


def test_expect_errno_and_format(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        tests:
          - {name: e, binary: b, expect: {errno: enomem}, format: exit, backend: vng}
        """,
    )
    (c,) = load_file(p, keys=KEYS)
    assert (c.expect.kind, c.expect.name, c.format, c.backend) == ("errno", "ENOMEM", "exit", "vng")


# Every schema error: (yaml, line of the error, text in the message, text in the hint)
ERRORS = [
    ("", 1, "empty scenario file", "tests:"),
    ("- a\n", 1, "file: expected a mapping", "tests"),
    ("tests: []\n", 1, "non-empty list of tests", "name and binary"),
    ("foo: 1\ntests: [{name: a, binary: b}]\n", 1, "file: unknown key 'foo'", "tests, defaults"),
    (
        "defaults: {name: x}\ntests: [{name: a, binary: b}]\n",
        1,
        "defaults: unknown key 'name'",
        "binary",
    ),
    ("tests:\n  - binary: b\n", 2, "missing required key 'name'", "test id"),
    ("tests:\n  - name: a\n", 2, "missing required key 'binary'", "program"),
    ("tests:\n  - name: a\n    binary: b\n    colour: red\n", 4, "unknown key 'colour'", "matrix"),
    ("tests:\n  - name: 9a\n    binary: b\n", 2, "not a valid test name", "letters"),
    (
        "tests:\n  - {name: a, binary: b}\n  - {name: a, binary: c}\n",
        3,
        "already used on line 2",
        "unique",
    ),
    ("tests:\n  - name: a\n    binary: b c\n", 3, "not a program name", "args:"),
    ("tests:\n  - name: a\n    binary: b\n    args: -x\n", 4, "not a list of strings", "args:"),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix: [both]\n",
        4,
        "matrix: expected a mapping",
        "side",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n      colour: [red]\n",
        5,
        "unknown matrix key 'colour'",
        "side, alloc, size",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n      side: [both, up]\n",
        5,
        "side: 'up' is not allowed",
        "both, rd, wr",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n      alloc: [lazy, lazy]\n",
        5,
        "listed twice",
        "duplicate",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n      alloc: []\n",
        5,
        "expected a non-empty list",
        "alloc",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n"
        "      size:\n        - 4K\n        - 2X\n",
        7,
        "size: '2X' is not a size",
        "K, M or G",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix:\n      size: [4K, 1G]\n",
        5,
        "big size",
        "big:",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix: {size: [4K]}\n    exclude: {size: 4K}\n",
        5,
        "exclude: expected a list",
        "exclude:",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    matrix: {size: [4K]}\n    exclude:\n"
        "      - {size: 8K}\n",
        6,
        "matches no matrix value",
        "matrix values",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    expect: fail\n",
        4,
        "expect: 'fail' is not allowed",
        "{signal: SIGSEGV}",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    expect: {signal: SIGNOPE}\n",
        4,
        "unknown signal",
        "SIGSEGV",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    expect: {errno: ENOPE}\n",
        4,
        "unknown errno",
        "EINVAL",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    format: xml\n",
        4,
        "format: 'xml' is not allowed",
        "ltp, tap",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    big: yes please\n",
        4,
        "big: expected a mapping",
        "side",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    timeout: -1\n",
        4,
        "not a positive number",
        "seconds",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    timeout: soon\n",
        4,
        "not a positive number",
        "seconds",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    kernels: default\n",
        4,
        "kernels: expected a",
        "kernel names",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    kernels: [de fault]\n",
        4,
        "not a valid value",
        "must match",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    backend: docker\n",
        4,
        "backend: 'docker' is not allowed",
        "initramfs, vng",
    ),
    (
        "tests:\n  - name: a\n    binary: b\n    tags: [Smoke]\n",
        4,
        "not a valid value",
        "must match",
    ),
    ("tests:\n  - name: a\n    binary: b\n    skip: true\n", 4, "skip: expected a reason", "skip:"),
    ("tests:\n  - name: a\n    binary: b\n   bad: [\n", 4, "YAML syntax", "indentation"),
    ("tests:\n  - 3\n", 2, "tests[0]: expected a mapping", "allowed keys"),
]


@pytest.mark.parametrize(
    ("text", "line", "msg", "hint"), ERRORS, ids=[f"err{i:02d}" for i in range(len(ERRORS))]
)
def test_schema_errors(tmp_path: Path, text: str, line: int, msg: str, hint: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ScenarioError) as ei:
        load_file(p, "scenarios/bad.yaml", KEYS)
    e = ei.value
    assert str(e).startswith(f"scenarios/bad.yaml:{line}: "), str(e)
    assert msg in e.message, e.message
    assert hint in e.hint, e.hint


# --- a project's own matrix keys ---------------------------------------------------------

USER_KEYS = (
    MatrixKey("mode", "-m", "words", ("blocking", "nonblocking")),
    MatrixKey("count", "-c", "int"),
    MatrixKey("label", "-l", "text"),
    MatrixKey("buf", "-b", "size", big=1 << 20),
)


def test_user_keys_ids_argv_in_declaration_order(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """
        tests:
          - name: echo
            binary: hello_echo
            args: [-v]
            matrix: {count: [1, 100], mode: [blocking, nonblocking], buf: [4K]}
            big: {buf: [2M]}
        """,
    )
    cases = load_file(p, keys=USER_KEYS)
    ids = [c.id for c in cases]
    assert ids[:4] == [
        "echo[blocking-1-4K]",
        "echo[blocking-100-4K]",
        "echo[nonblocking-1-4K]",
        "echo[nonblocking-100-4K]",
    ]
    assert "echo[blocking-100-2M]" in ids and len(ids) == 8
    c = cases[1]
    assert c.argv == ("hello_echo", "-m", "blocking", "-c", "100", "-b", "4K", "-v")
    assert c.params == (("mode", "blocking"), ("count", "100"), ("buf", "4K"))


@pytest.mark.parametrize(
    ("matrix", "msg", "hint"),
    [
        ("{mode: [spinning]}", "mode: 'spinning' is not allowed", "allowed: blocking, nonblocking"),
        ("{count: [ten]}", "count: 'ten' is not an integer", "a decimal integer"),
        ("{label: ['a b']}", "label: 'a b' is not one word", "any word"),
        ("{buf: [2M]}", "buf 2M is a big size", "big: {buf: [...]}"),
        ("{side: [both]}", "unknown matrix key 'side'", "allowed: mode, count, label, buf"),
    ],
)
def test_user_key_errors(tmp_path: Path, matrix: str, msg: str, hint: str) -> None:
    p = write(tmp_path, f"tests:\n  - name: a\n    binary: b\n    matrix: {matrix}\n")
    with pytest.raises(ScenarioError) as ei:
        load_file(p, "s.yaml", USER_KEYS)
    assert str(ei.value).startswith("s.yaml:4: ") and msg in ei.value.message, ei.value.message
    assert hint in ei.value.hint, ei.value.hint


def test_undeclared_key_says_how_to_declare_it(tmp_path: Path) -> None:
    p = write(tmp_path, "tests:\n  - {name: a, binary: b, matrix: {mode: [x]}}\n")
    with pytest.raises(ScenarioError) as ei:
        load_file(p, "s.yaml")
    assert "unknown matrix key 'mode'" in ei.value.message
    assert "[tool.kguest.matrix.mode]" in ei.value.hint


TARGET_KEYS = (
    MatrixKey("mode", "-m", "words", ("blocking", "nonblocking")),
    MatrixKey("bug", "", "words", ("none", "oops"), module_param="ringdev.bug"),
    MatrixKey("zeroing", "", "int", cmdline="init_on_alloc"),
)


def test_keys_for_module_params_and_cmdline_words(tmp_path: Path) -> None:
    """A matrix key may set a module parameter or a kernel command-line word of the
    item's guest instead of an option; scenario keys add their own."""
    p = write(
        tmp_path,
        """
        tests:
          - name: t
            binary: ringdev_rw
            matrix: {mode: [blocking], bug: [none, oops], zeroing: ["0"]}
            module_params: {ringdev: [size=4096], other-mod: ["x=1"]}
            cmdline: [nokaslr]
        """,
    )
    cases = load_file(p, keys=TARGET_KEYS)
    assert [c.id for c in cases] == ["t[blocking-none-0]", "t[blocking-oops-0]"]
    c = cases[1]
    assert c.argv == ("ringdev_rw", "-m", "blocking")
    assert c.module_params == (("ringdev", ("size=4096", "bug=oops")), ("other_mod", ("x=1",)))
    assert c.cmdline == ("nokaslr", "init_on_alloc=0")


@pytest.mark.parametrize(
    ("entry", "msg"),
    [
        ("module_params: [a]", "module_params: must be a table"),
        ("module_params: {ringdev: [size]}", "'size' is not name=value"),
        ("module_params: {'ring dev': [a=1]}", "not a module name"),
        ("cmdline: nokaslr", "cmdline: expected a non-empty list"),
        ("cmdline: ['a b']", "cmdline: 'a b' is not a valid value"),
    ],
)
def test_guest_keys_errors(tmp_path: Path, entry: str, msg: str) -> None:
    p = write(tmp_path, f"tests:\n  - name: a\n    binary: b\n    {entry}\n")
    with pytest.raises(ScenarioError) as ei:
        load_file(p, "s.yaml", TARGET_KEYS)
    assert str(ei.value).startswith("s.yaml:") and msg in ei.value.message, ei.value.message
