"""YAML scenarios: load, validate (file:line errors), expand the matrix into items.

A file holds ``tests:`` (a list) and optional ``defaults:`` merged into each test::

    defaults: {timeout: 120}
    tests:
      - name: echo
        binary: hello_echo
        args: ["-v"]
        matrix: {mode: [blocking, nonblocking], count: [1, 100]}
        exclude: [{mode: nonblocking, count: 1}]
        big: {count: [100000]}        # extra values, collected only with --big
                                      # (big: true: the whole test only with --big)
        expect: pass                  # or {signal: SIGSEGV} or {errno: EINVAL}
        format: auto                  # auto | ltp | tap | exit
        kernels: [default]            # others are collected only with --kernels
        backend: initramfs            # or vng
        tags: [smoke]                 # pytest markers
        skip: "why"                   # collected, reported as skipped
        isolation: test               # a freshly restored guest for each item
                                      # (default worker: one guest per worker)

The matrix keys are the project's own, declared in ``[tool.kguest.matrix]``
(config.MatrixKey: the option each becomes, the kind of its values).  Items
are named ``name[v1-v2...]`` with the values in the keys' declaration order
(the kernel first when not "default"), and run ``binary OPT1 v1 OPT2 v2 ...
args...`` in the guest.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from .config import BACKENDS, SIZE_RX, MatrixKey, parse_size
from .errors import ScenarioError
from .results import errno_number, signal_number

INT_RX = re.compile(r"^-?[0-9]+$")
WORD_RX = re.compile(r"^[A-Za-z0-9_.,:=+/]+$")  # free text: one word, safe in an item id
NAME_RX = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
KERNEL_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # "default", "rt", "6.12"
TAG_RX = re.compile(r"^[a-z][a-z0-9_]*$")
FORMATS = ("auto", "ltp", "tap", "exit")
ISOLATIONS = ("worker", "test")
TEST_KEYS = {
    "name": "a test id: letters, digits, _ and .",
    "binary": "the program to run (on the guest PATH, or an absolute guest path)",
    "args": "a list of extra arguments",
    "matrix": "a mapping of the project's matrix keys ([tool.kguest.matrix]) to lists of values",
    "exclude": "a list of partial matrix combinations to drop",
    "big": "extra matrix values collected only with --big, or true for the whole test",
    "expect": "pass, {signal: NAME} or {errno: NAME}",
    "format": "how to read the result: " + ", ".join(FORMATS),
    "timeout": "seconds (a positive number)",
    "kernels": "a list of kernel names (default, rt, 6.12, ...)",
    "backend": "one of " + ", ".join(BACKENDS),
    "tags": "a list of marker names ([a-z][a-z0-9_]*)",
    "skip": "a reason string: collect the items but skip them",
    "isolation": "worker (one guest per worker, the default) or test "
    "(each item on a freshly restored guest)",
    "description": "free text",
}
FILE_KEYS = ("tests", "defaults")
_NOUN = {"size": "a size", "int": "an integer", "text": "one word"}


@dataclasses.dataclass(frozen=True)
class Expect:
    kind: str  # "pass" | "signal" | "errno"
    name: str = ""

    def describe(self) -> str:
        return self.kind if self.kind == "pass" else f"{self.kind} {self.name}"


@dataclasses.dataclass(frozen=True)
class Case:
    """One collected item."""

    id: str  # echo[blocking-100]
    name: str
    params: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]
    expect: Expect
    format: str
    timeout: float | None
    kernel: str
    backend: str | None
    tags: tuple[str, ...]
    big: bool
    skip: str
    path: str
    line: int
    isolation: str = "worker"

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# --- YAML with line numbers ---------------------------------------------------------


class _Map(dict[str, Any]):
    lines: dict[str, int]
    line: int


class _Seq(list[Any]):
    lines: list[int]
    line: int


class _Loader(yaml.SafeLoader):
    pass


def _map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    m = _Map()
    m.lines = {}
    m.line = node.start_mark.line + 1
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        m[key] = loader.construct_object(vnode, deep=True)
        m.lines[key] = knode.start_mark.line + 1
    return m


def _seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    s = _Seq(loader.construct_object(v, deep=True) for v in node.value)
    s.lines = [v.start_mark.line + 1 for v in node.value]
    s.line = node.start_mark.line + 1
    return s


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)


def _line(obj: Any, key: str | None = None, default: int = 1) -> int:
    if key is not None and isinstance(obj, _Map):
        return obj.lines.get(key, obj.line)
    return int(getattr(obj, "line", default))


# --- validation -----------------------------------------------------------------------


class _V:
    def __init__(self, path: str, keys: dict[str, MatrixKey]) -> None:
        self.path = path
        self.keys = keys

    def err(self, line: int, msg: str, hint: str = "") -> ScenarioError:
        return ScenarioError(self.path, line, msg, hint)

    def str_list(
        self,
        obj: Any,
        key: str,
        where: Any,
        pattern: re.Pattern[str] | None = None,
        allowed: tuple[str, ...] | None = None,
    ) -> list[str]:
        line = _line(where, key)
        if not isinstance(obj, list) or not obj:
            raise self.err(
                line,
                f"{key}: expected a non-empty list, got {obj!r}",
                f"{key}: {TEST_KEYS.get(key, '')}",
            )
        out = []
        for i, v in enumerate(obj):
            vline = obj.lines[i] if isinstance(obj, _Seq) else line
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                v = str(v)
            if not isinstance(v, str):
                raise self.err(vline, f"{key}: {v!r} is not a string")
            if allowed is not None and v not in allowed:
                raise self.err(
                    vline, f"{key}: {v!r} is not allowed", f"allowed: {', '.join(allowed)}"
                )
            if pattern is not None and not pattern.match(v):
                raise self.err(
                    vline, f"{key}: {v!r} is not a valid value", f"must match {pattern.pattern}"
                )
            if v in out:
                raise self.err(vline, f"{key}: {v!r} listed twice", "drop the duplicate")
            out.append(v)
        return out

    def matrix(self, obj: Any, key: str, where: Any) -> dict[str, list[str]]:
        if not isinstance(obj, dict):
            raise self.err(
                _line(where, key),
                f"{key}: expected a mapping, got {obj!r}",
                f"e.g. {key}: {{KEY: [value, ...]}}; KEY from [tool.kguest.matrix]: "
                + (", ".join(self.keys) or "none declared"),
            )
        out: dict[str, list[str]] = {}
        for mk, values in obj.items():
            spec = self.keys.get(mk)
            if spec is None:
                raise self.err(
                    _line(obj, mk),
                    f"{key}: unknown matrix key {mk!r}",
                    f"allowed: {', '.join(self.keys)}"
                    if self.keys
                    else "declare it in pyproject.toml: [tool.kguest.matrix."
                    f'{mk}] option = "-x", kind = "words", values = [...]',
                )
            allowed = spec.values if spec.kind == "words" else None
            vals = self.str_list(values, mk, obj, allowed=allowed)
            rx = {"size": SIZE_RX, "int": INT_RX, "text": WORD_RX}.get(spec.kind)
            for i, v in enumerate(vals):
                if rx is not None and not rx.match(v):
                    line = values.lines[i] if isinstance(values, _Seq) else _line(obj, mk)
                    raise self.err(
                        line, f"{mk}: {v!r} is not {_NOUN[spec.kind]}", f"{mk}: {spec.describe()}"
                    )
            out[mk] = vals
        return out

    def expect(self, obj: Any, where: Any) -> Expect:
        line = _line(where, "expect")
        if obj == "pass":
            return Expect("pass")
        if isinstance(obj, dict) and len(obj) == 1:
            ((kind, name),) = obj.items()
            if kind == "signal" and isinstance(name, str):
                try:
                    signal_number(name)
                except KeyError:
                    raise self.err(
                        line,
                        f"expect: unknown signal {name!r}",
                        "use a name such as SIGSEGV, SIGBUS, SIGKILL",
                    ) from None
                return Expect(
                    "signal",
                    name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper(),
                )
            if kind == "errno" and isinstance(name, str):
                try:
                    errno_number(name)
                except KeyError:
                    raise self.err(
                        line,
                        f"expect: unknown errno {name!r}",
                        "use a name such as EINVAL, ENOMEM, EFAULT",
                    ) from None
                return Expect("errno", name.upper())
        raise self.err(
            line,
            f"expect: {obj!r} is not allowed",
            "allowed: pass, {signal: SIGSEGV}, {errno: EINVAL}",
        )


def _check_keys(
    v: _V, obj: Any, allowed: dict[str, str] | tuple[str, ...], what: str, line: int
) -> None:
    if not isinstance(obj, dict):
        raise v.err(
            line,
            f"{what}: expected a mapping, got {type(obj).__name__}",
            f"allowed keys: {', '.join(allowed)}",
        )
    for k in obj:
        if k not in allowed:
            raise v.err(
                _line(obj, k), f"{what}: unknown key {k!r}", f"allowed keys: {', '.join(allowed)}"
            )


def load_file(
    path: Path, rel: str | None = None, keys: tuple[MatrixKey, ...] = ()
) -> list[Case]:
    """Parse and validate one scenario file; return its expanded cases.

    ``keys``: the project's matrix keys (ProjectConfig.matrix), in id order.
    """
    name = rel or str(path)
    v = _V(name, {k.name: k for k in keys})
    try:
        doc = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise v.err(
            (mark.line + 1) if mark else 1,
            f"YAML syntax: {e.problem}",
            "fix the YAML (indentation, quotes, colons)",
        ) from e
    except yaml.YAMLError as e:
        raise v.err(1, f"YAML: {e}", "fix the YAML") from e
    if doc is None:
        raise v.err(1, "empty scenario file", "add `tests:` with at least one test")
    _check_keys(v, doc, FILE_KEYS, "file", 1)
    if "tests" not in doc:
        raise v.err(1, "no `tests:` list", "add `tests:` with at least one test")
    defaults = doc.get("defaults") or _Map()
    if "defaults" in doc:
        _check_keys(
            v,
            defaults,
            {k: d for k, d in TEST_KEYS.items() if k != "name"},
            "defaults",
            _line(doc, "defaults"),
        )
    tests = doc["tests"]
    if not isinstance(tests, list) or not tests:
        raise v.err(
            _line(doc, "tests"),
            "tests: expected a non-empty list of tests",
            "each entry is a mapping with at least name and binary",
        )
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tests):
        tline = tests.lines[i] if isinstance(tests, _Seq) else 1
        _check_keys(v, t, TEST_KEYS, f"tests[{i}]", tline)
        merged = _Map({**defaults, **t})
        merged.lines = {**getattr(defaults, "lines", {}), **t.lines}
        merged.line = t.line
        for req in ("name", "binary"):
            if req not in merged:
                raise v.err(tline, f"tests[{i}]: missing required key {req!r}", TEST_KEYS[req])
        cases.extend(_expand(v, merged, seen))
    return cases


def _expand(v: _V, t: _Map, seen: dict[str, int]) -> list[Case]:
    name = t["name"]
    if not isinstance(name, str) or not NAME_RX.match(name):
        raise v.err(_line(t, "name"), f"name: {name!r} is not a valid test name", TEST_KEYS["name"])
    if name in seen:
        raise v.err(
            _line(t, "name"),
            f"name: {name!r} already used on line {seen[name]}",
            "names must be unique within a file",
        )
    seen[name] = _line(t, "name")
    binary = t["binary"]
    if not isinstance(binary, str) or not binary or " " in binary:
        raise v.err(
            _line(t, "binary"),
            f"binary: {binary!r} is not a program name",
            "one word; put arguments under args:",
        )
    args: list[str] = []
    if "args" in t:
        raw = t["args"]
        if not isinstance(raw, list) or not all(isinstance(a, (str, int)) for a in raw):
            raise v.err(
                _line(t, "args"),
                f"args: {raw!r} is not a list of strings",
                'e.g. args: ["-i", "5"]',
            )
        args = [str(a) for a in raw]
    matrix = v.matrix(t["matrix"], "matrix", t) if "matrix" in t else {}
    for k, vals in matrix.items():
        limit = v.keys[k].big
        for val in vals:
            if limit is not None and parse_size(val) >= limit:
                raise v.err(
                    _line(t["matrix"], k),
                    f"matrix: {k} {val} is a big size (>= {limit} bytes)",
                    f"move it under `big: {{{k}: [...]}}` so it runs only with --big",
                )
    whole_big = t.get("big") is True
    big = v.matrix(t["big"], "big", t) if "big" in t and not whole_big else {}
    excludes: list[dict[str, str]] = []
    if "exclude" in t:
        ex = t["exclude"]
        if not isinstance(ex, list):
            raise v.err(
                _line(t, "exclude"),
                "exclude: expected a list of mappings",
                "e.g. exclude: [{KEY: value, ...}]",
            )
        for j, e in enumerate(ex):
            eline = ex.lines[j] if isinstance(ex, _Seq) else _line(t, "exclude")
            if not isinstance(e, dict) or not e:
                raise v.err(
                    eline, f"exclude: {e!r} is not a mapping", "e.g. {KEY: value, ...}"
                )
            for k, val in e.items():
                known = set(matrix.get(k, [])) | set(big.get(k, []))
                if k not in v.keys or str(val) not in known:
                    raise v.err(
                        eline,
                        f"exclude: {k}={val!r} matches no matrix value",
                        f"matrix values: {dict(matrix)}",
                    )
            excludes.append({k: str(val) for k, val in e.items()})
    expect = v.expect(t["expect"], t) if "expect" in t else Expect("pass")
    fmt = t.get("format", "auto")
    if fmt not in FORMATS:
        raise v.err(
            _line(t, "format"), f"format: {fmt!r} is not allowed", f"allowed: {', '.join(FORMATS)}"
        )
    timeout = t.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise v.err(
            _line(t, "timeout"),
            f"timeout: {timeout!r} is not a positive number",
            "seconds, e.g. timeout: 120",
        )
    kernels = v.str_list(t["kernels"], "kernels", t, KERNEL_RX) if "kernels" in t else ["default"]
    backend = t.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise v.err(
            _line(t, "backend"),
            f"backend: {backend!r} is not allowed",
            f"allowed: {', '.join(BACKENDS)}",
        )
    tags = v.str_list(t["tags"], "tags", t, TAG_RX) if "tags" in t else []
    skip = t.get("skip", "")
    if not isinstance(skip, str):
        raise v.err(_line(t, "skip"), "skip: expected a reason string", 'skip: "why"')
    isolation = t.get("isolation", "worker")
    if isolation not in ISOLATIONS:
        raise v.err(
            _line(t, "isolation"),
            f"isolation: {isolation!r} is not allowed",
            f"allowed: {', '.join(ISOLATIONS)}",
        )

    order = list(v.keys)
    combos: list[tuple[dict[str, str], bool]] = [
        (c, whole_big) for c in _product(matrix, order)
    ]
    if big:
        # big values replace the same key's values; other keys keep the normal ones
        full = {**matrix}
        for k, vals in big.items():
            full[k] = vals
        combos += [(c, True) for c in _product(full, order) if (c, False) not in combos]
    out = []
    for kernel in kernels:
        for combo, is_big in combos:
            if any(all(combo.get(k) == val for k, val in e.items()) for e in excludes):
                continue
            parts = [combo[k] for k in v.keys if k in combo]
            if kernel != "default":
                parts.insert(0, kernel)
            cid = f"{name}[{'-'.join(parts)}]" if parts else name
            argv = [binary]
            for k, spec in v.keys.items():
                if k in combo:
                    argv += [spec.option, combo[k]]
            argv += args
            out.append(
                Case(
                    id=cid,
                    name=name,
                    params=tuple((k, combo[k]) for k in v.keys if k in combo),
                    argv=tuple(argv),
                    expect=expect,
                    format=fmt,
                    timeout=float(timeout) if timeout is not None else None,
                    kernel=kernel,
                    backend=backend,
                    tags=tuple(tags),
                    big=is_big,
                    skip=skip,
                    path=v.path,
                    line=_line(t, "name"),
                    isolation=isolation,
                )
            )
    return out


def _product(matrix: dict[str, list[str]], order: list[str]) -> list[dict[str, str]]:
    keys = [k for k in order if k in matrix]
    return [
        dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(matrix[k] for k in keys))
    ]


def load_dir(d: Path, keys: tuple[MatrixKey, ...] = ()) -> list[Case]:
    cases = []
    for p in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
        cases.extend(load_file(p, keys=keys))
    return cases
