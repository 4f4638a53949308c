#!/usr/bin/env python3
"""Check the reports of kguest's example run (scripts/check-example).

usage: example_results.py green JUNIT TAP      # the plain run
       example_results.py warn JUNIT TAP       # the run with --module-param hello.warn=1

green: at least 8 items, all passed, ids built from the example's own matrix keys
(mode, count), and the TAP file agreeing.  warn: exactly one failure, ``poke``,
caused by the module's WARNING (hello_ioctl, with its file:line) with the guest
restarted, and every other item -- ``greet``, right after it on the same worker,
first -- passed.  Exit 1 with the reason on any mismatch.  Standard library only
(it runs in the example's fresh venv).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

MIN_ITEMS = 8
MATRIX_IDS = {
    "read[blocking-1]",
    "read[blocking-100]",
    "read[nonblocking-1]",
    "read[nonblocking-100]",
}


def cases(junit: str) -> dict[str, tuple[str, str]]:
    """item id -> (outcome, failure text), in the file's order."""
    out: dict[str, tuple[str, str]] = {}
    for tc in ET.parse(junit).getroot().iter("testcase"):
        name = tc.get("name", "")
        bad = tc.find("failure")
        if bad is None:
            bad = tc.find("error")
        if bad is not None:
            out[name] = ("failed", (bad.get("message") or "") + (bad.text or ""))
        elif tc.find("skipped") is not None:
            out[name] = ("skipped", "")
        else:
            out[name] = ("passed", "")
    return out


def tap(path: str) -> dict[str, bool]:
    """TAP description -> ok, from pytest-tap's combined file."""
    res = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines:
        m = re.match(r"^(not ok|ok) \d+ (\S+)", line)
        if m:
            res[m.group(2).split("::", 1)[-1]] = m.group(1) == "ok"
    return res


def check(kind: str, junit: str, tap_file: str) -> list[str]:
    got = cases(junit)
    taps = tap(tap_file)
    errs = []
    if len(got) < MIN_ITEMS:
        errs.append(f"{len(got)} items, expected at least {MIN_ITEMS}")
    if not set(got) >= MATRIX_IDS:
        errs.append(f"matrix ids missing: {sorted(MATRIX_IDS - set(got))}")
    if set(taps) != set(got):
        errs.append(f"TAP and JUnit disagree: {sorted(set(taps) ^ set(got))}")
    failed = sorted(n for n, (o, _) in got.items() if o != "passed")
    if kind == "green":
        if failed:
            errs.append(f"not passed: {failed}")
        if not all(taps.values()):
            errs.append(f"TAP has not ok lines: {[n for n, ok in taps.items() if not ok]}")
    else:
        if failed != ["poke"]:
            errs.append(f"failed items are {failed}, expected exactly ['poke']")
        text = got.get("poke", ("", ""))[1]
        for want in (
            "WARNING:",
            "hello_ioctl",
            "hello.c:",
            "the guest is restarted for the next test",
        ):
            if want not in text:
                errs.append(f"poke's failure does not say {want!r}")
        if got.get("greet", ("missing", ""))[0] != "passed":
            errs.append("greet, the item after poke, did not pass")
        if taps.get("poke", True) or not taps.get("greet", False):
            errs.append("TAP: expected 'not ok' for poke and 'ok' for greet")
    return errs


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("green", "warn"):
        print(__doc__, file=sys.stderr)
        return 2
    errs = check(argv[1], argv[2], argv[3])
    for e in errs:
        print(f"example ({argv[1]} run): {e}", file=sys.stderr)
    if not errs:
        print(f"example ({argv[1]} run): {len(cases(argv[2]))} items as expected")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
