"""Statistics of a bench run: medians and spread per (workload, variant, size), the targets.

Everything the report says is computed here from the raw runs of results.json,
so a report can always be regenerated from its JSON.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.check_results import (
    SFORK_HUGE_VARIANTS,
    SFORK_VARIANTS,
    SHM_VARIANTS,
    TARGETS,
    TUNED_VARIANTS,
)

# every sfork variant: the module's default policy, and SFORK_LAZY under huge_pages=2
ALL_SFORK = (*SFORK_VARIANTS, *SFORK_HUGE_VARIANTS)
LAZY = ("sfork_lazy", "sfork_lazy_huge")

Summary = dict[str, Any]
Target = dict[str, Any]

MIB = 1 << 20
GIB = 1 << 30


def human_size(n: int) -> str:
    for unit, div in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def quartiles(xs: list[float]) -> tuple[float, float]:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def _counter(r: dict[str, Any], *path: str) -> float | None:
    cur: Any = r.get("counters", {})
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, (int, float)) else None


COUNTERS: dict[str, tuple[str, ...]] = {
    "minflt_parent": ("self", "minflt"),
    "minflt_children": ("children", "minflt"),
    "minflt_child": ("child_self", "minflt"),
    "nvcsw_parent": ("self", "nvcsw"),
    "nvcsw_children": ("children", "nvcsw"),
    "sfork_faults": ("sfork_faults",),
    "sfork_pages_live": ("sfork_pages_live",),
    "sfork_pages_live_after": ("sfork_pages_live_after",),
}
PHASES = ("setup", "parent", "wait", "teardown", "child", "settle")


def _med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarize(runs: list[dict[str, Any]]) -> list[Summary]:
    """One entry per (workload, variant, size) over the measured (non-warm-up) runs."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    order: list[tuple[str, str, int]] = []
    for r in runs:
        if r.get("warmup"):
            continue
        key = (str(r["workload"]), str(r["variant"]), int(r["size"]))
        if key not in groups:
            order.append(key)
        groups[key].append(r)
    out: list[Summary] = []
    for key in order:
        rs = groups[key]
        good = [r for r in rs if r.get("ok") and not r.get("verify_errors")]
        vals = [float(r["value"]) for r in good]
        s: Summary = {
            "workload": key[0], "variant": key[1], "size": key[2],
            "unit": rs[0].get("unit", "ns"), "n": len(vals), "failed": len(rs) - len(good),
            "errors": sorted({str(r.get("error")) for r in rs if not r.get("ok")}),
        }
        if vals:
            med = statistics.median(vals)
            q1, q3 = quartiles(vals)
            s.update(median=med, min=min(vals), max=max(vals), q1=q1, q3=q3,
                     spread=(q3 - q1) / med if med else 0.0)
            s["counters"] = {
                name: _med([c for r in good if (c := _counter(r, *path)) is not None])
                for name, path in COUNTERS.items()
            }
            s["phases"] = {
                p: _med([float(r["ns"][p]) for r in good if r.get("ns", {}).get(p, -1) >= 0])
                for p in PHASES
            }
            lat = [r["latency"] for r in good if isinstance(r.get("latency"), dict)]
            if lat:
                s["latency"] = {k: statistics.median(float(x[k]) for x in lat)
                                for k in ("median", "min", "p90", "mean")}
            nbytes = [float(r["bytes"]) for r in good if r.get("bytes")]
            if nbytes:
                s["bytes"] = nbytes[0]
            mem = [r["memory_kb"] for r in good if isinstance(r.get("memory_kb"), dict)]
            if mem:
                s["memory_kb"] = {k: statistics.median(float(x[k]) for x in mem)
                                  for k in ("region", "shmem_pmd_mapped", "hugetlb_mapped")}
            idle = [float(r["idle_ns"]) for r in good if r.get("idle_ns")]
            if idle:
                s["idle_ns"] = statistics.median(idle)
                s["cpu_share"] = med / s["idle_ns"]
        out.append(s)
    return out


class Table:
    """Lookup of summaries (and of the raw runs, for paired ratios)."""

    def __init__(self, summary: list[Summary], runs: list[dict[str, Any]] | None = None) -> None:
        self.by: dict[tuple[str, str, int], Summary] = {
            (s["workload"], s["variant"], s["size"]): s for s in summary}
        self.rep: dict[tuple[str, str, int, int], float] = {}
        for r in runs or []:
            if not r.get("warmup") and r.get("ok") and not r.get("verify_errors"):
                self.rep[(r["workload"], r["variant"], int(r["size"]), int(r["rep"]))] = \
                    float(r["value"])

    def paired(self, w: str, num: str, den: str, size: int) -> dict[str, float] | None:
        """Ratios num/den of the same repetition (run back to back in the same pass over the
        variants): slow drifts of the host's load cancel out of them."""
        xs = [self.rep[(w, num, size, rep)] / d for (w_, v, s_, rep), d in self.rep.items()
              if w_ == w and v == den and s_ == size and d > 0
              and (w, num, size, rep) in self.rep]
        if not xs:
            return None
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
                "n": float(len(xs))}

    def get(self, w: str, v: str, size: int) -> Summary | None:
        return self.by.get((w, v, size))

    def med(self, w: str, v: str, size: int) -> float | None:
        s = self.by.get((w, v, size))
        return float(s["median"]) if s and "median" in s else None

    def sizes(self, w: str) -> list[int]:
        return sorted({k[2] for k in self.by if k[0] == w})

    def variants(self, w: str) -> list[str]:
        seen: list[str] = []
        for k in self.by:
            if k[0] == w and k[1] not in seen:
                seen.append(k[1])
        return seen

    def best(self, w: str, variants: tuple[str, ...], size: int) -> tuple[str, float] | None:
        """The variant with the lowest median (time-like values)."""
        cands = [(v, m) for v in variants if (m := self.med(w, v, size)) is not None]
        return min(cands, key=lambda c: c[1]) if cands else None


def zerofill_bandwidth(t: Table, size: int) -> dict[str, float | None]:
    """Bytes/s: memset and MAP_POPULATE directly; eager as size / (eager call - lazy call)."""
    def bw(ns: float | None) -> float | None:
        return size / (ns * 1e-9) if ns and ns > 0 else None

    eager, lazy = t.med("zerofill", "sfork_eager", size), t.med("zerofill", "sfork_lazy", size)
    fill = eager - lazy if eager is not None and lazy is not None else None
    return {"memset": bw(t.med("zerofill", "memset", size)),
            "populate": bw(t.med("zerofill", "populate", size)),
            "sfork_eager": bw(fill) if fill and fill > 0 else None,
            "sfork_eager_call": bw(eager)}


def _spread(t: Table, w: str, v: str, size: int) -> str:
    s = t.get(w, v, size)
    return f"±{s['spread'] * 100:.0f} %" if s and "spread" in s else "?"


def _target(tid: str, what: str, ratio: float | None, at: str, detail: str,
            full_size: bool = True, paired: dict[str, float] | None = None) -> Target:
    """One row of TARGETS, measured: ``what`` is its sentence, ``at`` the size it was
    measured at, ``full_size`` whether that is the size the target is judged at."""
    op, threshold, label = TARGETS[tid]
    passed = None if ratio is None else (ratio >= threshold if op == ">=" else ratio <= threshold)
    if ratio is None:
        margin = None
    elif op == ">=":
        margin = ratio / threshold - 1.0
    else:
        margin = threshold / ratio - 1.0
    return {"id": tid, "what": what, "label": label, "threshold": threshold, "op": op,
            "ratio": ratio, "passed": passed, "margin": margin, "at": at, "detail": detail,
            "at_target_size": full_size, "paired": paired}


def _paired_list(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs),
            "n": float(len(xs))}


def _mem(t: Table, w: str, v: str, size: int) -> str:
    """The region's memory after the work (median), beside its time."""
    s = t.get(w, v, size)
    m = (s or {}).get("memory_kb") or {}
    kb = m.get("region")
    if kb is None:
        return "memory n/a"
    return f"{kb / 1024:.1f} MiB held" if abs(kb) >= 1024 else f"{kb:.0f} kB held"


def _thr(tid: str) -> str:
    """A target's threshold as its sentence says it: "≥ 4 x", "≤ 0.55 x"."""
    op, thr, _ = TARGETS[tid]
    return f"{'≥' if op == '>=' else '≤'} {thr:g} x"


# abundant: the sfork variants with a target, and the peer classes each is held against
ABUNDANT = (("sfork_eager", ("default", "tuned")), ("sfork_lazy_huge", ("default", "tuned")),
            ("sfork_lazy", ("default",)))


def targets(summary: list[Summary], runs: list[dict[str, Any]] | None = None) -> list[Target]:
    """The targets of TARGETS, each computed from the runs (ratio of medians, pass/miss),
    with the per-repetition paired ratios beside it.  A target whose data this run lacks
    is "not measured", never assumed."""
    t = Table(summary, runs)
    out: list[Target] = []

    # abundant at 1 GiB (or the largest size run): each sfork variant against the best
    # default-configured peer and (eager, lazy with huge_pages=2) the best tuned peer
    sizes = t.sizes("abundant")
    big = max(sizes) if sizes else GIB
    for v, classes in ABUNDANT:
        m = t.med("abundant", v, big)
        mode = v.removeprefix("sfork_")
        for cls in classes:
            tid = f"abundant_{mode}_{cls}"
            best = t.best("abundant", SHM_VARIANTS if cls == "default" else TUNED_VARIANTS,
                          big)
            out.append(_target(
                tid, f"abundant 1 GiB: {_mode_text(mode)} {_thr(tid)} the best {cls}"
                f"{'-configured' if cls == 'default' else ''} peer",
                best[1] / m if best and m else None, human_size(big),
                f"{v} {_ms(m)} ({_spread(t, 'abundant', v, big)}) vs best {cls} "
                f"({best[0] if best else 'none ran'}) {_ms(best[1] if best else None)} "
                f"({_spread(t, 'abundant', best[0], big) if best else '?'})", big >= GIB,
                t.paired("abundant", best[0], v, big) if best else None))
    # lazy first touch of a 2 MiB page (huge_pages=2), per 4 KiB of region, vs a private
    # anonymous 4 KiB fault
    fs = t.sizes("fault")
    big = max(fs) if fs else 0
    pv, lz = t.med("fault", "private", big), t.med("fault", "sfork_lazy_huge", big)
    out.append(_target(
        "lazy_huge_fault", "lazy 2 MiB first touch (huge_pages=2) per 4 KiB "
        f"{_thr('lazy_huge_fault')} a private anonymous 4 KiB fault",
        lz / pv if lz and pv else None, human_size(big),
        f"sfork_lazy_huge {_us(lz)} per 4 KiB ({_spread(t, 'fault', 'sfork_lazy_huge', big)})"
        f" vs private (MADV_NOHUGEPAGE) {_us(pv)} per 4 KiB fault "
        f"({_spread(t, 'fault', 'private', big)})",
        paired=t.paired("fault", "sfork_lazy_huge", "private", big)))
    # eager zero-fill vs memset
    zs = t.sizes("zerofill")
    big = max(zs) if zs else 0
    bw = zerofill_bandwidth(t, big)
    e, ms_bw = bw["sfork_eager"], bw["memset"]
    # per repetition: memset time / (eager call - lazy call) of the same repetition
    xs = []
    for (w_, v, s_, rep), em in t.rep.items():
        if (w_, v, s_) == ("zerofill", "sfork_eager", big):
            lzr = t.rep.get(("zerofill", "sfork_lazy", big, rep))
            msr = t.rep.get(("zerofill", "memset", big, rep))
            if lzr is not None and msr is not None and em > lzr:
                xs.append(msr / (em - lzr))
    out.append(_target(
        "eager_zerofill", f"eager zero-fill ≥ {TARGETS['eager_zerofill'][1]:.0%} of memset "
        "bandwidth",
        e / ms_bw if e and ms_bw else None, human_size(big),
        f"eager fill {_gbs(e)} (eager call minus lazy call; "
        f"{_spread(t, 'zerofill', 'sfork_eager', big)}) vs memset {_gbs(ms_bw)} "
        f"({_spread(t, 'zerofill', 'memset', big)})", paired=_paired_list(xs)))
    # sfork(4 KiB) cycle vs fork()+wait
    s4 = 4096
    fk, sf = t.med("latency", "fork", s4), t.med("latency", "sfork_auto", s4)
    out.append(_target(
        "latency_4k", f"sfork(4 KiB) cycle {_thr('latency_4k')} fork()+wait",
        sf / fk if sf and fk else None, "4 KiB",
        f"sfork_auto {_us(sf)} ({_spread(t, 'latency', 'sfork_auto', s4)}) vs fork {_us(fk)} "
        f"({_spread(t, 'latency', 'fork', s4)}) per create+fork+exit+wait+destroy cycle",
        paired=t.paired("latency", "sfork_auto", "fork", s4)))
    # the blocking channel vs a pipe, then the polling forms (against the better pipe:
    # blocking, its normal use, or polling with non-blocking reads)
    for w, name in (("publish", "blocking publish latency"),
                    ("pingpong", "blocking ping-pong round trip"),
                    ("publish_spin", "publish latency, polling receiver"),
                    ("pingpong_spin", "ping-pong round trip, polling")):
        pg = 4096
        sfv = t.med(w, "sfork_auto", pg)
        pw = w
        if w.endswith("_spin"):
            base = w.removesuffix("_spin")
            a, b = t.med(base, "pipe", pg), t.med(w, "pipe", pg)
            if a is not None and (b is None or a < b):
                pw = base
        pipe = t.med(pw, "pipe", pg)
        how = "" if pw == w else " (blocking pipe, faster than a polling one here)"
        tid = f"channel_{w}"
        out.append(_target(
            tid, f"channel: {name} {_thr(tid)} better than a pipe",
            pipe / sfv if pipe and sfv else None, "1 page",
            f"sfork_auto {_us(sfv)} ({_spread(t, w, 'sfork_auto', pg)}) vs pipe{how} "
            f"{_us(pipe)} ({_spread(t, pw, 'pipe', pg)})",
            paired=t.paired(w, "pipe", "sfork_auto", pg) if pw == w else None))
    # an idle receiver after its spin window: CPU time / idle time
    idle = [s for s in summary if s["workload"] == "idle" and s["variant"] == "sfork_auto"
            and "median" in s]
    share = idle[0].get("cpu_share") if idle else None
    out.append(_target(
        "idle_cpu", "idle receiver ≤ 1 % of a CPU once its spin window ends", share, "1 page",
        f"sfork_auto receiver: {_us(idle[0]['median'])} of CPU over "
        f"{_ms(idle[0].get('idle_ns'))} idle (spin window included)" if idle
        else "idle workload not run"))
    # sparse 1 GiB: lazy within 1.5x shm_anon, with the memory each holds
    ss = t.sizes("sparse")
    big = max(ss) if ss else GIB
    sh = t.med("sparse", "shm_anon", big)
    for v in LAZY:
        lz = t.med("sparse", v, big)
        mode = v.removeprefix("sfork_")
        tid = "sparse_lazy" if v == "sfork_lazy" else f"sparse_{mode}"
        out.append(_target(
            tid, f"sparse 1 GiB (6 pages touched): {_mode_text(mode)} within "
            f"{TARGETS[tid][1]:g} x shm_anon", lz / sh if lz and sh else None, human_size(big),
            f"{v} {_ms(lz)}, {_mem(t, 'sparse', v, big)} "
            f"({_spread(t, 'sparse', v, big)}) vs shm_anon {_ms(sh)}, "
            f"{_mem(t, 'sparse', 'shm_anon', big)} ({_spread(t, 'sparse', 'shm_anon', big)})",
            big >= GIB, paired=t.paired("sparse", v, "shm_anon", big)))
    return out


def _mode_text(mode: str) -> str:
    """A target's name for an sfork variant: "lazy", "eager", "lazy (huge_pages=2)"."""
    return "lazy (huge_pages=2)" if mode == "lazy_huge" else mode


def _us(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns / 1e3:.1f} µs"


def _ms(ns: float | None) -> str:
    return "n/a" if ns is None else f"{ns / 1e6:.1f} ms"


def _gbs(bps: float | None) -> str:
    return "n/a" if bps is None else f"{bps / 1e9:.2f} GB/s"


def fmt_value(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a"
    if unit == "ns/page":
        return f"{v / 1e3:.2f} µs"
    if v >= 1e9:
        return f"{v / 1e9:.2f} s"
    if v >= 1e6:
        return f"{v / 1e6:.1f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.1f} µs"
    return f"{v:.0f} ns"


def sfork_vs_shm(summary: list[Summary],
                 runs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Per workload and size: best sfork variant vs the best default-configured shared-memory
    variant ("shm", "speedup") and vs the best tuned one ("tuned", "speedup_tuned", where the
    workload runs tuned peers); ratio > 1: sfork is faster."""
    t = Table(summary, runs)
    rows: list[dict[str, Any]] = []
    for w in ("abundant", "sparse", "random", "multilevel", "latency", "fault", "teardown",
              "publish", "pingpong", "publish_spin", "pingpong_spin", "bulk"):
        # first touch of an eager region was paid in the call: compare lazy only
        sv = LAZY if w == "fault" else ALL_SFORK
        for size in t.sizes(w):
            bs, bh = t.best(w, sv, size), t.best(w, SHM_VARIANTS, size)
            if not bs or not bh:
                continue
            ss, sh = t.get(w, bs[0], size), t.get(w, bh[0], size)
            # A difference counts when the interquartile ranges do not overlap, or when
            # every repetition (>= 3) ordered the pair the same way.
            pr = t.paired(w, bh[0], bs[0], size)
            consistent = bool(pr and pr["n"] >= 3 and (pr["min"] > 1 or pr["max"] < 1))
            separated = consistent or bool(ss and sh and (ss["q3"] < sh["q1"]
                                                          or sh["q3"] < ss["q1"]))
            row: dict[str, Any] = {"workload": w, "size": size, "sfork": bs[0],
                                   "sfork_value": bs[1], "shm": bh[0], "shm_value": bh[1],
                                   "speedup": bh[1] / bs[1], "separated": separated,
                                   "paired": pr,
                                   "sfork_spread": ss.get("spread") if ss else None,
                                   "shm_spread": sh.get("spread") if sh else None}
            for v in ALL_SFORK:
                m = t.med(w, v, size)
                row[f"speedup_{v}"] = bh[1] / m if m else None
            bt = t.best(w, TUNED_VARIANTS, size)
            row["tuned"] = bt[0] if bt else None
            row["tuned_value"] = bt[1] if bt else None
            row["speedup_tuned"] = bt[1] / bs[1] if bt else None
            pt = t.paired(w, bt[0], bs[0], size) if bt else None
            row["paired_tuned"] = pt
            for v in ALL_SFORK:
                m = t.med(w, v, size)
                row[f"speedup_tuned_{v}"] = bt[1] / m if bt and m else None
            rows.append(row)
    return rows
