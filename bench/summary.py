"""The terminal summary of a bench run: plain text, at most 100 columns.

    python -m bench.summary build/bench/results.json
    python -m bench.summary --junit build/results/junit.xml build/bench/results.json

What it prints: the suite's counts (from a JUnit file, when given), the run (plan, sizes,
kernel, host load), the answer in a sentence at the sizes this run measured, beside what
the committed full run of the same kernel (bench/results/) measured at 1 GiB, a table of
the targets met and missed here and there, and the report's path.  The Markdown tables
stay in report.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from bench import stats
from bench.check_results import SHM_VARIANTS, TARGETS, TUNED_VARIANTS, WORKLOADS
from bench.stats import Table, human_size

WIDTH = 100
INDENT = 10  # the label column: "suite", "bench", "answer", ...
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_KERNEL = "6.1"  # the targets are judged on Debian's 6.1 (bench/README.md)


def kernel_series(results: dict[str, Any]) -> str:
    """"6.1" of "6.1.0-57-amd64", "6.12" of "6.12.118+deb13-amd64"."""
    version = str((results.get("guest") or {}).get("kernel") or "")
    return ".".join(version.split("-", 1)[0].split(".")[:2])


def _plan_workloads(results: dict[str, Any]) -> set[str]:
    items = (results.get("plan") or {}).get("items") or []
    return {str(i).split(":", 1)[0] for i in items}


def scope(results: dict[str, Any]) -> list[str]:
    """Why this run is not the configuration the targets are judged on (empty: it is):
    the full plan, every workload, Debian's 6.1, no extra kernel command-line words."""
    why = []
    if results.get("mode") != "full":
        why.append(f"{results.get('mode')} plan, not the full one")
    missing = set(WORKLOADS) - _plan_workloads(results)
    if missing:
        why.append(f"{len(missing)} workloads left out")
    series = kernel_series(results)
    if series != TARGET_KERNEL:
        why.append(f"kernel {series or '?'}, not {TARGET_KERNEL}")
    extra = cmdline_extra(results)
    if extra:
        why.append("kernel command line + " + " ".join(map(str, extra)))
    return why


def cmdline_extra(results: dict[str, Any]) -> list[str]:
    """The words the run added to the guest kernel's command line (driver --cmdline):
    recorded by the driver, or for an older run the words of the guest's /proc/cmdline
    that kguest does not put on every command line."""
    if "cmdline_extra" in results:
        return [str(w) for w in results["cmdline_extra"] or []]
    from kguest.backends import BASE_APPEND, TCG_APPEND

    known = {w.split("=", 1)[0] for w in (*BASE_APPEND, *TCG_APPEND, "rdinit=")}
    words = str((results.get("env") or {}).get("cmdline") or "").split()
    return [w for w in words if w.split("=", 1)[0] not in known]


def reference_run(results: dict[str, Any], root: Path = RESULTS_DIR
                  ) -> tuple[Path, dict[str, Any]] | None:
    """The newest committed full run of record (the full plan, every workload, no extra
    command-line words) on the same kernel series as ``results``, other than ``results``
    itself: its directory and its document."""
    best: tuple[str, Path, dict[str, Any]] | None = None
    for path in sorted(root.glob("*/results.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("started") == results.get("started"):
            continue
        if kernel_series(doc) != kernel_series(results) or doc.get("mode") != "full" \
                or set(WORKLOADS) - _plan_workloads(doc) or cmdline_extra(doc):
            continue
        if best is None or str(doc.get("started")) > best[0]:
            best = (str(doc.get("started")), path.parent, doc)
    return (best[1], best[2]) if best else None


def rederive(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with summary and targets computed again from its runs, so that an older
    run is judged on today's targets."""
    out = dict(results)
    out["summary"] = stats.summarize(results.get("runs") or [])
    out["targets"] = stats.targets(out["summary"], results.get("runs"))
    return out


def suite_line(junit: Path) -> str:
    """Counts of every <testsuite> of a JUnit file."""
    root = ET.parse(junit).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in n:
            n[k] += int(s.get(k) or 0)
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return (f"{n['tests']} tests: {passed} passed, {n['failures']} failed, "
            f"{n['errors']} errors, {n['skipped']} skipped (TAP and JUnit in {junit.parent}/)")


def _date(results: dict[str, Any]) -> str:
    return str(results.get("started") or "?")[:10]


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x" if v < 10 else f"{v:.0f}x"


def _answer_numbers(results: dict[str, Any]) -> dict[str, Any]:
    """The numbers the answer quotes: abundant at the run's largest size, eager against the
    best default-configured and the best tuned peer (peer time / sfork time); the blocking
    channel against a pipe; the 4 KiB cycle against fork()+wait."""
    t = Table(results.get("summary") or [], results.get("runs"))
    out: dict[str, Any] = {}
    sizes = t.sizes("abundant")
    if sizes:
        big = max(sizes)
        sf = t.med("abundant", "sfork_eager", big)
        out["size"] = big
        for cls, peers in (("default", SHM_VARIANTS), ("tuned", TUNED_VARIANTS)):
            best = t.best("abundant", peers, big)
            if best and sf:
                out[cls] = (best[0], best[1] / sf)
    for w in ("publish", "pingpong"):
        sf, pipe = t.med(w, "sfork_auto", 4096), t.med(w, "pipe", 4096)
        if sf and pipe:
            out[w] = pipe / sf
    sf, fk = t.med("latency", "sfork_auto", 4096), t.med("latency", "fork", 4096)
    if sf and fk:
        out["cycle"] = sf / fk
    return out


def _verdict(x: float) -> str:
    return "yes" if x >= 1.05 else "no" if x <= 0.95 else "level"


def answer(results: dict[str, Any], ref: tuple[Path, dict[str, Any]] | None) -> str:
    """Is sfork a more efficient parent-child channel than shared memory?  In a sentence,
    at this run's sizes, with the committed full run's numbers beside it."""
    a = _answer_numbers(results)
    parts = []
    if "default" in a:
        name, x = a["default"]
        text = (f"{_verdict(x)} for data both sides use: at {_size(a['size'])} "
                f"(abundant) SFORK_EAGER ran {_x(x)} as fast as the best default-configured "
                f"shared memory ({name})")
        if "tuned" in a:
            text += f" and {_x(a['tuned'][1])} as fast as the best tuned ({a['tuned'][0]})"
        parts.append(text)
    if "publish" in a and "pingpong" in a:
        parts.append(f"{_verdict(min(a['publish'], a['pingpong']))} as a channel: blocking "
                     f"publish and ping-pong beat a pipe {_x(a['publish'])} and "
                     f"{_x(a['pingpong'])}")
    if "cycle" in a:
        parts.append(f"a 4 KiB create+fork+exit+wait+destroy cycle took {_x(a['cycle'])} "
                     "fork()+wait")
    if not parts:
        return "this run measured none of abundant, publish, pingpong and latency."
    text = "; ".join(parts) + "."
    text = text[0].upper() + text[1:]
    if not scope(results):
        return text + " This is a full run of record: the targets are judged on it."
    if ref is None:
        return (text + f" No committed full run on {kernel_series(results) or 'this kernel'}"
                " to compare with (bench/results/).")
    r = _answer_numbers(ref[1])
    got = []
    if "default" in r:
        got.append(f"{_x(r['default'][1])}" + (f" and {_x(r['tuned'][1])}" if "tuned" in r
                                               else "") + f" at {_size(r['size'])}")
    if "publish" in r and "pingpong" in r:
        got.append(f"{_x(r['publish'])} and {_x(r['pingpong'])}")
    if "cycle" in r:
        got.append(f"{_x(r['cycle'])}")
    return (text + f" The full run of {_date(ref[1])} on {ref[1]['guest']['kernel']} "
            f"measured {', '.join(got)} ({_rel(ref[0])}).")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(RESULTS_DIR.parent.parent))
    except ValueError:
        return str(path)


def _value(tg: dict[str, Any] | None) -> str:
    """A target's measured value and verdict, e.g. "2.90x miss", "0.47 % met"."""
    if tg is None or tg.get("ratio") is None:
        return "not measured"
    r = float(tg["ratio"])
    v = f"{r * 100:.2f} %" if tg["id"] == "idle_cpu" else f"{r:.2f}x"
    return f"{v} {'met' if tg['passed'] else 'miss'}"


def _needed(tid: str) -> str:
    op, thr, _ = TARGETS[tid]
    v = f"{thr * 100:g} %" if tid == "idle_cpu" else f"{thr:g}x"
    return f"{op} {v}"


def targets_rows(results: dict[str, Any], ref: dict[str, Any] | None) -> list[str]:
    """The aligned table: target, needed, this run's value and verdict, the size it was
    measured at when that is not the target's, the committed full run's value and
    verdict.  A miss marked * was met in the full run."""
    here = {t["id"]: t for t in results.get("targets") or []}
    there = {t["id"]: t for t in (ref or {}).get("targets") or []}
    rows = [["target", "needed", "this run", "at", "full run" if ref else ""]]
    for tid, (_, _, label) in TARGETS.items():
        tg = here.get(tid) or {}
        this = _value(tg or None)
        if tg.get("passed") is False and (there.get(tid) or {}).get("passed"):
            this += "*"
        at = "" if tg.get("ratio") is None or tg.get("at_target_size", True) else tg["at"]
        rows.append([label, _needed(tid), this, at, _value(there.get(tid)) if ref else ""])
    keep = [i for i in range(5) if any(r[i] for r in rows[1:])]
    rows = [[r[i] for i in keep] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(keep))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _size(n: int) -> str:
    """A size that the wrapping below keeps on one line ("1 GiB")."""
    return human_size(n).replace(" ", NBSP)


NBSP = "\x00"  # a space the wrapping does not break at


def _field(label: str, text: str) -> list[str]:
    """``label`` in the first column, ``text`` wrapped beside it."""
    lines = textwrap.wrap(text, WIDTH, initial_indent=label.ljust(INDENT),
                          subsequent_indent=" " * INDENT) or [label]
    return [ln.replace(NBSP, " ") for ln in lines]


def _sizes(results: dict[str, Any]) -> str:
    sizes = sorted({int(s["size"]) for s in results.get("summary") or []
                    if s.get("workload") in ("abundant", "sparse", "random", "multilevel")})
    return f"regions {_size(sizes[0])} to {_size(sizes[-1])}" if sizes else "no regions"


def terminal_summary(results: dict[str, Any] | None, junit: Path | None = None,
                     report: Path | None = None, root: Path = RESULTS_DIR) -> str:
    """The whole summary: plain text, every line at most WIDTH columns."""
    lines = [" sfork: summary ".center(WIDTH, "=")]
    if junit is not None:
        lines += _field("suite", suite_line(junit) if junit.is_file()
                        else f"no JUnit file at {junit}")
    if results is None:
        lines += _field("bench", "no results (make -C bench bench writes them)")
        return "\n".join(lines)
    results = rederive(results)
    g = results.get("guest") or {}
    load = (results.get("host") or {}).get("loadavg_at_start") or ["?"]
    minutes = float(results.get("elapsed_s") or 0) / 60
    lines += _field("bench", f"{results.get('mode')} plan, {_sizes(results)}; kernel "
                    f"{g.get('kernel')}, {g.get('accelerator')}, {g.get('vcpus')} vCPUs; "
                    f"host load {load[0]} at start; ran {minutes:.0f} min")
    ref = reference_run(results, root)
    if ref is not None:
        ref = (ref[0], rederive(ref[1]))
    lines += _field("answer", answer(results, ref))
    why = scope(results)
    judged = f"judged on {TARGET_KERNEL}, default command line, 1 GiB, make bench FULL=1"
    if kernel_series(results) != TARGET_KERNEL:
        judged += (f"; on {kernel_series(results)} none may be worse than in its last full "
                   "run")
    if why:
        judged += f"; this run is indicative ({'; '.join(why)})"
    lines += _field("targets", judged)
    lines += [" " * INDENT + row for row in targets_rows(results, ref[1] if ref else None)]
    met = sum(1 for t in results.get("targets") or [] if t.get("passed"))
    tail = f"met {met} of {len(TARGETS)} here"
    if ref is not None:
        tail += (f", {sum(1 for t in ref[1]['targets'] if t.get('passed'))} in the full run of "
                 f"{_date(ref[1])} ({_rel(ref[0])}); * met there")
    lines += _field("", tail)
    if report is not None:
        lines += _field("report", f"{report} (plots beside it)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("results", type=Path, help="results.json of a bench run")
    ap.add_argument("--junit", type=Path, help="the suite's JUnit file, for its counts")
    a = ap.parse_args(argv)
    results = json.loads(a.results.read_text()) if a.results.is_file() else None
    report = a.results.parent / "report.md"
    print(terminal_summary(results, a.junit, report if report.is_file() else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
