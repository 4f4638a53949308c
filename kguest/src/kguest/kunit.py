"""KUnit test modules as pytest items.

* **Known at collection**: the suites and cases are read from the test module's C
  source (the ``.c`` beside the ``.ko`` the project declares): each ``struct
  kunit_suite`` registered with ``kunit_test_suite()``/``kunit_test_suites()``, its
  ``.name`` and the ``KUNIT_CASE()``/``KUNIT_CASE_PARAM()`` entries of its
  ``.test_cases`` array, in order.  Macros are not expanded.
* **Run**: loading the module runs every suite (KUnit does it while the module
  comes up); the kernel's log of that load is read back as KTAP.
* **Judged per case**: its ``ok``/``not ok``/``# SKIP`` line, and the kernel's log
  between the previous result and its own: a KASAN report, a WARN or an Oops
  there fails that case.  A case the module never reported fails (the guest
  died in it, or the source and the module disagree), and so does a case the
  module reported that the source did not declare.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from .errors import ConfigError
from .trouble import scan

_COMMENT_RX = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_CASES_RX = re.compile(r"struct\s+kunit_case\s+(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", re.S)
_CASE_RX = re.compile(r"KUNIT_CASE(?:_PARAM)?\s*\(\s*(\w+)")
_SUITE_RX = re.compile(r"struct\s+kunit_suite\s+(\w+)\s*=\s*\{(.*?)\}\s*;", re.S)
_REG_RX = re.compile(r"kunit_test_suites?\s*\(([^;]*?)\)\s*;")
_TS_RX = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_RESULT_RX = re.compile(r"^(ok|not ok) (\d+) (\S+)(?: # SKIP ?(.*))?$")


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    line: int  # of its KUNIT_CASE in the source


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    cases: tuple[Case, ...]
    line: int


def _blank_comments(text: str) -> str:
    """Comments replaced by spaces (newlines kept, so offsets keep their lines)."""
    return _COMMENT_RX.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_suites(source: Path) -> list[Suite]:
    """The registered suites of a KUnit test module's source, with their cases."""
    try:
        raw = source.read_text(errors="replace")
    except OSError as e:
        raise ConfigError(
            f"KUnit module source {source}: {e}",
            "[tool.kguest.kunit] modules: the .c of each .ko must sit beside it",
        ) from None
    text = _blank_comments(raw)
    arrays: dict[str, tuple[Case, ...]] = {}
    for m in _CASES_RX.finditer(text):
        body_at = m.start(2)
        arrays[m.group(1)] = tuple(
            Case(c.group(1), _line_of(text, body_at + c.start()))
            for c in _CASE_RX.finditer(m.group(2))
        )
    defined: dict[str, Suite] = {}
    for m in _SUITE_RX.finditer(text):
        body = m.group(2)
        name = re.search(r"\.name\s*=\s*\"([^\"]+)\"", body)
        cases = re.search(r"\.test_cases\s*=\s*(\w+)", body)
        if name is None or cases is None or cases.group(1) not in arrays:
            raise ConfigError(
                f"{source}:{_line_of(text, m.start())}: suite {m.group(1)}: cannot read its "
                ".name or the KUNIT_CASE() list of its .test_cases",
                'write .name = "..." and .test_cases = an array of KUNIT_CASE() entries',
            )
        defined[m.group(1)] = Suite(
            name.group(1), arrays[cases.group(1)], _line_of(text, m.start())
        )
    out: list[Suite] = []
    for m in _REG_RX.finditer(text):
        for var in (v.strip().lstrip("&").strip() for v in m.group(1).split(",")):
            if var in defined:
                out.append(defined[var])
            elif var:
                raise ConfigError(
                    f"{source}: kunit_test_suites() names {var!r}, which is not a struct "
                    "kunit_suite defined in this file",
                    "define the suite in the file that registers it",
                )
    if not out:
        raise ConfigError(
            f"{source}: no suite registered with kunit_test_suite()",
            "is it a KUnit test module's source?",
        )
    return out


@dataclasses.dataclass(frozen=True)
class CaseResult:
    status: str  # "pass", "fail", "skip" or "missing"
    detail: str  # skip reason, or what went wrong
    log: str  # the kernel's log of this case


def _plain(line: str) -> str:
    return _TS_RX.sub("", line.rstrip())


def results(
    log: str, suites: list[Suite], died: bool
) -> tuple[dict[tuple[str, str], CaseResult], list[str]]:
    """Per (suite, case): its result from the KTAP in the kernel's ``log`` of the load; and
    the cases the module reported that ``suites`` do not declare ("suite.case").

    Kernel trouble in a case's stretch of the log fails it.  When the guest ``died``,
    the first case without a result is the one it died in."""
    found: dict[tuple[str, str], CaseResult] = {}
    extra: list[str] = []
    suite = ""
    stretch: list[str] = []
    for raw in log.splitlines():
        line = _plain(raw)
        stripped = line.strip()
        if (
            stripped.startswith("# Subtest:")
            and line.startswith("    ")
            and not line.startswith("        ")
        ):
            suite = stripped.split(":", 1)[1].strip()
            stretch = []
            continue
        m = (
            _RESULT_RX.match(line[4:])
            if line.startswith("    ") and not line.startswith("     ")
            else None
        )
        if m and suite:
            name = m.group(3)
            text = "\n".join(stretch)
            trouble = scan(text)
            if trouble:
                res = CaseResult(
                    "fail", "kernel trouble during the case:\n" + "\n".join(trouble), text
                )
            elif m.group(1) == "not ok":
                res = CaseResult("fail", f"not ok {m.group(2)} {name}", text)
            elif m.group(4) is not None:
                res = CaseResult("skip", m.group(4) or "skipped", text)
            else:
                res = CaseResult("pass", "ok", text)
            found[(suite, name)] = res
            stretch = []
            continue
        stretch.append(line)
    declared = {(s.name, c.name) for s in suites for c in s.cases}
    extra = [f"{s}.{c}" for (s, c) in found if (s, c) not in declared]
    if died:
        tail = "\n".join(stretch)
        for s in suites:
            for c in s.cases:
                if (s.name, c.name) not in found:
                    found[(s.name, c.name)] = CaseResult(
                        "fail", "the guest died during this case", tail
                    )
                    return found, extra
    return found, extra
