"""YAML scenarios in three steps: :func:`parse` (YAML with line numbers),
:func:`validate` (each test's keys checked, errors at ``file:line``) and
:func:`expand` (each test's matrix into items).  :func:`load_file` does all three.

The schema (every key, ``defaults``, ``tags``, ``exclude``, ``expect``) is
documented in kguest's README, section "Scenarios"; :data:`TEST_KEYS` gives
the one-line form used in error hints.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from .config import BACKEND_NAMES, SIZE_RX, MatrixKey, module_params, parse_size
from .errors import ConfigError, ScenarioError
from .options import ModuleParams
from .results import errno_number, signal_number

INT_RX = re.compile(r"^-?[0-9]+$")
WORD_RX = re.compile(r"^[A-Za-z0-9_.,:=+/]+$")  # free text: one word, safe in an item id
NAME_RX = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")
KERNEL_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # "default", "rt", "6.12"
TAG_RX = re.compile(r"^[a-z][a-z0-9_]*$")
CMDLINE_RX = re.compile(r"^[^\s'\"]+$")
FORMATS = ("auto", "ltp", "tap", "exit")
ISOLATIONS = ("worker", "test")
TEST_KEYS = {
    "name": "a test id: letters, digits, _ and .",
    "binary": "the program to run (on the guest PATH, or an absolute guest path)",
    "args": "a list of extra arguments",
    "matrix": "a mapping of the project's matrix keys ([tool.kguest.matrix]) to lists of values",
    "exclude": "a list of partial matrix combinations to drop (`kernel` may be one key)",
    "big": "extra matrix values collected only with --big, or true for the whole test",
    "expect": "pass, {signal: NAME} or {errno: NAME}",
    "format": "how to read the result: " + ", ".join(FORMATS),
    "timeout": "seconds (a positive number)",
    "kernels": "a list of kernel names (default, rt, 6.12, ...)",
    "backend": "one of " + ", ".join(BACKEND_NAMES),
    "tags": "a list of marker names ([a-z][a-z0-9_]*)",
    "skip": "a reason string: collect the items but skip them",
    "isolation": "worker (one guest per worker, the default) or test "
    "(each item on a freshly restored guest)",
    "module_params": "{module: [name=value, ...]}: module parameters of this test's guest",
    "cmdline": "a list of kernel command-line words for this test's guest",
    "description": "free text",
}
FILE_KEYS = ("tests", "defaults")
_NOUN = {"size": "a size", "int": "an integer", "text": "one word"}


@dataclasses.dataclass(frozen=True)
class Expect:
    kind: str  # "pass" | "signal" | "errno"
    name: str = ""


@dataclasses.dataclass(frozen=True)
class TestDef:
    """One entry of ``tests:`` with ``defaults:`` merged, every key checked."""

    name: str
    binary: str
    line: int
    args: tuple[str, ...] = ()
    matrix: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    big: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # values for --big
    whole_big: bool = False  # the whole test only with --big
    excludes: tuple[dict[str, str], ...] = ()
    expect: Expect = Expect("pass")
    format: str = "auto"
    timeout: float | None = None
    kernels: tuple[str, ...] = ("default",)
    backend: str | None = None
    tags: tuple[str, ...] = ()
    skip: str = ""
    isolation: str = "worker"
    module_params: ModuleParams = ()
    cmdline: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Case:
    """One collected item."""

    id: str  # echo[blocking-100]
    name: str
    params: tuple[tuple[str, str], ...]  # its matrix values, (key, value) in key order
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
    module_params: ModuleParams = ()  # the guest's, beyond the run's
    cmdline: tuple[str, ...] = ()  # the guest's kernel command-line words, beyond the run's

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


# --- parse: YAML with line numbers ----------------------------------------------------


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


def parse(path: Path, name: str) -> Any:
    """The YAML document of ``path`` (mappings and lists remember their lines)."""
    try:
        return yaml.load(path.read_text(), Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ScenarioError(
            name,
            (mark.line + 1) if mark else 1,
            f"YAML syntax: {e.problem}",
            "fix the YAML (indentation, quotes, colons)",
        ) from e
    except yaml.YAMLError as e:
        raise ScenarioError(name, 1, f"YAML: {e}", "fix the YAML") from e


# --- validate: each key of each test --------------------------------------------------


class _Checker:
    """Checks of one file's values, raising ScenarioError at the value's line."""

    def __init__(self, path: str, keys: dict[str, MatrixKey]) -> None:
        self.path = path
        self.keys = keys

    def err(self, line: int, msg: str, hint: str = "") -> ScenarioError:
        return ScenarioError(self.path, line, msg, hint)

    def keys_of(
        self, obj: Any, allowed: dict[str, str] | tuple[str, ...], what: str, line: int
    ) -> None:
        if not isinstance(obj, dict):
            raise self.err(
                line,
                f"{what}: expected a mapping, got {type(obj).__name__}",
                f"allowed keys: {', '.join(allowed)}",
            )
        for k in obj:
            if k not in allowed:
                raise self.err(
                    _line(obj, k),
                    f"{what}: unknown key {k!r}",
                    f"allowed keys: {', '.join(allowed)}",
                )

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

    def one_of(self, t: _Map, key: str, allowed: tuple[str, ...], default: str) -> str:
        v = t.get(key, default)
        if v not in allowed:
            raise self.err(
                _line(t, key), f"{key}: {v!r} is not allowed", f"allowed: {', '.join(allowed)}"
            )
        return str(v)

    def test(self, t: _Map, seen: dict[str, int]) -> TestDef:
        """Check every key of one merged test entry."""
        name = t["name"]
        if not isinstance(name, str) or not NAME_RX.match(name):
            raise self.err(
                _line(t, "name"), f"name: {name!r} is not a valid test name", TEST_KEYS["name"]
            )
        if name in seen:
            raise self.err(
                _line(t, "name"),
                f"name: {name!r} already used on line {seen[name]}",
                "names must be unique within a file",
            )
        seen[name] = _line(t, "name")
        binary = t["binary"]
        if not isinstance(binary, str) or not binary or " " in binary:
            raise self.err(
                _line(t, "binary"),
                f"binary: {binary!r} is not a program name",
                "one word; put arguments under args:",
            )
        args: list[str] = []
        if "args" in t:
            raw = t["args"]
            if not isinstance(raw, list) or not all(isinstance(a, (str, int)) for a in raw):
                raise self.err(
                    _line(t, "args"),
                    f"args: {raw!r} is not a list of strings",
                    'e.g. args: ["-i", "5"]',
                )
            args = [str(a) for a in raw]
        matrix = self.matrix(t["matrix"], "matrix", t) if "matrix" in t else {}
        for k, vals in matrix.items():
            limit = self.keys[k].big
            for val in vals:
                if limit is not None and parse_size(val) >= limit:
                    raise self.err(
                        _line(t["matrix"], k),
                        f"matrix: {k} {val} is a big size (>= {limit} bytes)",
                        f"move it under `big: {{{k}: [...]}}` so it runs only with --big",
                    )
        whole_big = t.get("big") is True
        big = self.matrix(t["big"], "big", t) if "big" in t and not whole_big else {}
        kernels = (
            tuple(self.str_list(t["kernels"], "kernels", t, KERNEL_RX))
            if "kernels" in t
            else ("default",)
        )
        excludes = self.excludes(t, matrix, big, kernels) if "exclude" in t else []
        timeout = t.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
        ):
            raise self.err(
                _line(t, "timeout"),
                f"timeout: {timeout!r} is not a positive number",
                "seconds, e.g. timeout: 120",
            )
        skip = t.get("skip", "")
        if not isinstance(skip, str):
            raise self.err(_line(t, "skip"), "skip: expected a reason string", 'skip: "why"')
        backend = t.get("backend")
        if backend is not None:
            backend = self.one_of(t, "backend", BACKEND_NAMES, "")
        return TestDef(
            name=name,
            binary=binary,
            line=_line(t, "name"),
            args=tuple(args),
            matrix=matrix,
            big=big,
            whole_big=whole_big,
            excludes=tuple(excludes),
            expect=self.expect(t["expect"], t) if "expect" in t else Expect("pass"),
            format=self.one_of(t, "format", FORMATS, "auto"),
            timeout=float(timeout) if timeout is not None else None,
            kernels=kernels,
            backend=backend,
            tags=tuple(self.str_list(t["tags"], "tags", t, TAG_RX)) if "tags" in t else (),
            skip=skip,
            isolation=self.one_of(t, "isolation", ISOLATIONS, "worker"),
            module_params=self.module_params(t) if "module_params" in t else (),
            cmdline=tuple(self.str_list(t["cmdline"], "cmdline", t, CMDLINE_RX))
            if "cmdline" in t
            else (),
        )

    def excludes(
        self,
        t: _Map,
        matrix: dict[str, list[str]],
        big: dict[str, list[str]],
        kernels: tuple[str, ...],
    ) -> list[dict[str, str]]:
        """The matrix combinations to drop; ``kernel`` names one of the test's
        kernels, so that a kernel can run a share of the matrix."""
        ex = t["exclude"]
        if not isinstance(ex, list):
            raise self.err(
                _line(t, "exclude"),
                "exclude: expected a list of mappings",
                "e.g. exclude: [{KEY: value, ...}]",
            )
        out = []
        for j, e in enumerate(ex):
            eline = ex.lines[j] if isinstance(ex, _Seq) else _line(t, "exclude")
            if not isinstance(e, dict) or not e:
                raise self.err(eline, f"exclude: {e!r} is not a mapping", "e.g. {KEY: value, ...}")
            for k, val in e.items():
                if k == "kernel":
                    if str(val) not in kernels:
                        raise self.err(
                            eline,
                            f"exclude: kernel={val!r} is not one of the test's kernels",
                            f"kernels: {list(kernels)}",
                        )
                    continue
                known = set(matrix.get(k, [])) | set(big.get(k, []))
                if k not in self.keys or str(val) not in known:
                    raise self.err(
                        eline,
                        f"exclude: {k}={val!r} matches no matrix value",
                        f"matrix values: {dict(matrix)}",
                    )
            out.append({k: str(val) for k, val in e.items()})
        return out

    def module_params(self, t: _Map) -> ModuleParams:
        try:
            return module_params(t["module_params"], "", "module_params:")
        except ConfigError as e:
            raise self.err(_line(t, "module_params"), e.message, e.hint) from None


def validate(doc: Any, name: str, keys: tuple[MatrixKey, ...]) -> list[TestDef]:
    """The file's tests, each checked; ScenarioError at the first problem."""
    v = _Checker(name, {k.name: k for k in keys})
    if doc is None:
        raise v.err(1, "empty scenario file", "add `tests:` with at least one test")
    v.keys_of(doc, FILE_KEYS, "file", 1)
    if "tests" not in doc:
        raise v.err(1, "no `tests:` list", "add `tests:` with at least one test")
    defaults = doc.get("defaults") or _Map()
    if "defaults" in doc:
        v.keys_of(
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
    out: list[TestDef] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tests):
        tline = tests.lines[i] if isinstance(tests, _Seq) else 1
        v.keys_of(t, TEST_KEYS, f"tests[{i}]", tline)
        merged = _Map({**defaults, **t})
        merged.lines = {**getattr(defaults, "lines", {}), **t.lines}
        merged.line = t.line
        for req in ("name", "binary"):
            if req not in merged:
                raise v.err(tline, f"tests[{i}]: missing required key {req!r}", TEST_KEYS[req])
        out.append(v.test(merged, seen))
    return out


# --- expand: the matrix into items ----------------------------------------------------


def expand(t: TestDef, keys: tuple[MatrixKey, ...], path: str) -> list[Case]:
    """The items of one test: every kernel times every matrix point (big values as
    well, marked big), less the excluded ones.  Each key's value goes where the key
    says: onto the command line, or into the guest's module parameters or kernel
    command line."""
    order = [k.name for k in keys]
    by_name = {k.name: k for k in keys}
    combos: list[tuple[dict[str, str], bool]] = [
        (c, t.whole_big) for c in _product(t.matrix, order)
    ]
    if t.big:
        # big values replace the same key's values; other keys keep the normal ones
        full = {**t.matrix, **t.big}
        combos += [(c, True) for c in _product(full, order) if (c, False) not in combos]
    out = []
    for kernel in t.kernels:
        for combo, is_big in combos:
            where = {**combo, "kernel": kernel}
            if any(all(where.get(k) == val for k, val in e.items()) for e in t.excludes):
                continue
            parts = [combo[k] for k in order if k in combo]
            if kernel != "default":
                parts.insert(0, kernel)
            argv = [t.binary]
            params: dict[str, list[str]] = {m: list(ps) for m, ps in t.module_params}
            cmdline = list(t.cmdline)
            for k in order:
                if k not in combo:
                    continue
                key = by_name[k]
                if key.option:
                    argv += [key.option, combo[k]]
                elif key.module_param:
                    mod, _, name = key.module_param.partition(".")
                    params.setdefault(mod, []).append(f"{name}={combo[k]}")
                else:
                    cmdline.append(f"{key.cmdline}={combo[k]}")
            argv += t.args
            out.append(
                Case(
                    id=f"{t.name}[{'-'.join(parts)}]" if parts else t.name,
                    name=t.name,
                    params=tuple((k, combo[k]) for k in order if k in combo),
                    argv=tuple(argv),
                    expect=t.expect,
                    format=t.format,
                    timeout=t.timeout,
                    kernel=kernel,
                    backend=t.backend,
                    tags=t.tags,
                    big=is_big,
                    skip=t.skip,
                    path=path,
                    line=t.line,
                    isolation=t.isolation,
                    module_params=tuple((m, tuple(ps)) for m, ps in params.items()),
                    cmdline=tuple(cmdline),
                )
            )
    return out


def _product(matrix: dict[str, list[str]], order: list[str]) -> list[dict[str, str]]:
    keys = [k for k in order if k in matrix]
    return [
        dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(matrix[k] for k in keys))
    ]


def load_file(path: Path, rel: str | None = None, keys: tuple[MatrixKey, ...] = ()) -> list[Case]:
    """Parse, validate and expand one scenario file.

    ``keys``: the project's matrix keys (ProjectConfig.matrix), in id order.
    """
    name = rel or str(path)
    return [c for t in validate(parse(path, name), name, keys) for c in expand(t, keys, name)]
