"""Plots and the Markdown report of a bench run, generated from its results.json only.

    python -m bench.report build/bench/results.json            # re-derive, rewrite report

(``python -m bench.summary`` prints the terminal summary of a run.)
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from pathlib import Path
from typing import Any

from bench import stats, summary
from bench.check_results import SHM_VARIANTS, TUNED_VARIANTS, WORKLOADS
from bench.stats import ALL_SFORK, Summary, Table, fmt_value, human_size

REGION_WORKLOADS = ("abundant", "sparse", "random", "multilevel")
CHANNEL_LAT = ("publish", "pingpong", "publish_spin", "pingpong_spin")
NOT_PLOTTED = (*CHANNEL_LAT, "idle")  # one size each: tables, not lines

STYLE: dict[str, tuple[str, str, str]] = {  # colour, line style, marker
    "sfork_lazy": ("#d62728", "-", "o"),
    "sfork_eager": ("#1f77b4", "-", "s"),
    "sfork_auto": ("#9467bd", "-", "^"),
    "sfork_lazy_huge": ("#d62728", "-", "*"),
    "shm_anon": ("#2ca02c", "--", "v"),
    "sysv_shm": ("#ff7f0e", "--", "D"),
    "posix_shm": ("#8c564b", "--", "P"),
    "memfd": ("#e377c2", "--", "X"),
    "file": ("#7f7f7f", "--", "*"),
    "shm_anon_thp": ("#2ca02c", "-.", "v"),
    "memfd_thp": ("#e377c2", "-.", "X"),
    "memfd_hugetlb": ("#17becf", "-.", "h"),
    "sysv_hugetlb": ("#bcbd22", "-.", "d"),
    "fork": ("#000000", ":", "."),
    "private": ("#000000", ":", "."),
    "private_thp": ("#555555", ":", "x"),
    "memset": ("#000000", ":", "."),
    "populate": ("#555555", ":", "x"),
    "pipe": ("#000000", ":", "."),
    "socketpair": ("#555555", ":", "x"),
}

VARIANT_TEXT = {
    "sfork_lazy": "sfork(SFORK_LAZY): pages allocated by the module's fault handler, of the "
                  "size the module's page policy gives (its parameters are in the header)",
    "sfork_eager": "sfork(SFORK_EAGER): every page allocated during the call",
    "sfork_auto": "sfork() without an allocation flag: the module picks eager up to "
                  "`eager_threshold`, lazy above",
    "sfork_lazy_huge": "sfork(SFORK_LAZY) with the module's `huge_pages=2` (set by "
                       "sforkbench around these runs only): a lazy region of 2 MiB or more "
                       "gets 2 MiB pages, the policy the default (`huge_pages=1`) keeps for "
                       "eager regions",
    "shm_anon": "mmap(MAP_SHARED|MAP_ANONYMOUS) then fork()",
    "sysv_shm": "shmget(IPC_PRIVATE)+shmat then fork(); shmdt+IPC_RMID to destroy",
    "posix_shm": "shm_open+ftruncate+mmap (/dev/shm, tmpfs) then fork(); shm_unlink",
    "memfd": "memfd_create+ftruncate+mmap then fork()",
    "file": "the seed attempt's sfork_file: open+ftruncate+mmap(MAP_SHARED) of a file in "
            "the guest's /tmp then fork(); unlink to destroy",
    "shm_anon_thp": "**tuned**: mmap(MAP_SHARED|MAP_ANONYMOUS)+madvise(MADV_HUGEPAGE) with "
                    "shmem_enabled set (by sforkbench -H, around these runs only) so that "
                    "shmem uses 2 MiB folios",
    "memfd_thp": "**tuned**: memfd_create+ftruncate+mmap+madvise(MADV_HUGEPAGE), "
                 "shmem_enabled as for shm_anon_thp",
    "memfd_hugetlb": "**tuned**: memfd_create(MFD_HUGETLB) from the hugetlb pool the driver "
                     "reserves (vm.nr_hugepages), the size rounded up to 2 MiB",
    "sysv_hugetlb": "**tuned**: shmget(SHM_HUGETLB) from the same pool, the size rounded up "
                    "to 2 MiB",
    "fork": "plain fork()+_exit+waitpid, no region",
    "private": "MAP_PRIVATE|MAP_ANONYMOUS with MADV_NOHUGEPAGE (4 KiB pages)",
    "private_thp": "MAP_PRIVATE|MAP_ANONYMOUS with MADV_HUGEPAGE, 2 MiB aligned",
    "memset": "memset of an already faulted private buffer (the guest's store bandwidth)",
    "populate": "mmap(MAP_SHARED|MAP_ANONYMOUS|MAP_POPULATE): the kernel's own zero-fill",
    "pipe": "a pipe (bulk: F_SETPIPE_SZ to the ring size)",
    "socketpair": "an AF_UNIX SOCK_STREAM socketpair",
}


# --------------------------------------------------------------------------- plots


def _plot_lines(t: Table, w: str, unit: str, path: Path, what: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    for v in t.variants(w):
        xs, ys, lo, hi = [], [], [], []
        for size in t.sizes(w):
            s = t.get(w, v, size)
            if s is None or "median" not in s:
                continue
            xs.append(size)
            ys.append(s["median"])
            lo.append(s["median"] - s["q1"])
            hi.append(s["q3"] - s["median"])
        if not xs:
            continue
        c, ls, mk = STYLE.get(v, ("#333333", "-", "o"))
        ax.errorbar(xs, ys, yerr=[lo, hi], label=v, color=c, linestyle=ls, marker=mk,
                    capsize=3, linewidth=1.6, markersize=5)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = t.sizes(w)
    ax.set_xticks(sizes, [human_size(s) for s in sizes], rotation=30)
    ax.set_xlabel("region size" if w not in ("bulk",) else "bytes transferred")
    ax.set_ylabel({"ns": "time (ns), median, IQR bars",
                   "ns/page": "ns per page, median, IQR bars"}.get(unit, unit))
    ax.set_title(f"{w}: {what}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _plot_ratio(t: Table, w: str, path: Path) -> bool:
    """sfork's speed-up over the best default-configured and the best tuned peer, against
    size (> 1: sfork faster); False when there is nothing to plot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    drawn = False
    for v in ALL_SFORK:
        for peers, label, ls in ((SHM_VARIANTS, "best default", "-"),
                                 (TUNED_VARIANTS, "best tuned", "--")):
            xs, ys = [], []
            for size in t.sizes(w):
                m, b = t.med(w, v, size), t.best(w, peers, size)
                if m and b:
                    xs.append(size)
                    ys.append(b[1] / m)
            if xs:
                c, _, mk = STYLE.get(v, ("#333333", "-", "o"))
                ax.plot(xs, ys, label=f"{v} vs {label}", color=c, linestyle=ls, marker=mk,
                        linewidth=1.6, markersize=5)
                drawn = True
    if not drawn:
        return False
    ax.axhline(1.0, color="#000000", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = t.sizes(w)
    ax.set_xticks(sizes, [human_size(s) for s in sizes], rotation=30)
    ax.set_xlabel("region size")
    ax.set_ylabel("speed-up: best peer's median / sfork's (> 1: sfork faster)")
    ax.set_title(f"{w}: sfork over the best default-configured (solid) and tuned (dashed) "
                 "peer", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def _plot_bars(t: Table, ws: tuple[str, ...], path: Path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    ws = tuple(w for w in ws if t.sizes(w))
    if not ws:
        return
    fig = Figure(figsize=(7.5, 2.6 * len(ws)))
    for i, w in enumerate(ws):
        ax = fig.add_subplot(len(ws), 1, i + 1)
        size = t.sizes(w)[0]
        names, vals, lo, hi, cols = [], [], [], [], []
        for v in t.variants(w):
            s = t.get(w, v, size)
            if s is None or "median" not in s:
                continue
            names.append(v)
            vals.append(s["median"] / 1e3)
            lo.append((s["median"] - s["q1"]) / 1e3)
            hi.append((s["q3"] - s["median"]) / 1e3)
            cols.append(STYLE.get(v, ("#333333", "", ""))[0])
        ax.barh(names, vals, xerr=[lo, hi], color=cols, capsize=3)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("µs (median, IQR bars; log scale)")
        ax.set_title(w, fontsize=9)
        ax.grid(True, axis="x", which="both", alpha=0.3)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def make_plots(results: dict[str, Any], out: Path) -> dict[str, str]:
    """Workload -> PNG file name."""
    import matplotlib

    matplotlib.use("Agg")
    t = Table(results["summary"])
    what = {w: d.get("what", "") for w, d in ((results.get("catalog") or {})
                                              .get("workloads") or {}).items()}
    files: dict[str, str] = {}
    for w in WORKLOADS:
        if w in NOT_PLOTTED or not t.sizes(w):
            continue
        unit = next((s["unit"] for s in results["summary"] if s["workload"] == w), "ns")
        name = f"plot-{w}.png"
        _plot_lines(t, w, unit, out / name, what.get(w, ""))
        files[w] = name
        if w != "bulk" and _plot_ratio(t, w, out / f"plot-{w}-ratio.png"):
            files[f"{w}-ratio"] = f"plot-{w}-ratio.png"
    if any(t.sizes(w) for w in CHANNEL_LAT):
        _plot_bars(t, CHANNEL_LAT, out / "plot-channel.png")
        files["channel"] = "plot-channel.png"
    return files


# --------------------------------------------------------------------------- text helpers


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *(_row(r) for r in rows)]


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.0f} %"


def targets_table(results: dict[str, Any]) -> list[str]:
    rows = []
    for tg in results["targets"]:
        res = {True: "**pass**", False: "**miss**", None: "not measured"}[tg["passed"]]
        at = tg["at"] + ("" if tg.get("at_target_size", True) else " (target is at 1 GiB)")
        if tg["margin"] is None:
            margin = ""
        elif tg["passed"]:
            margin = f"{tg['margin'] * 100:+.0f} % headroom"
        else:
            margin = f"misses by {-tg['margin'] * 100:.0f} %"
        pr = tg.get("paired")
        paired = (f"{pr['median']:.2f}x [{pr['min']:.2f}-{pr['max']:.2f}]" if pr else "n/a")
        rows.append([tg["what"], at, _ratio(tg["ratio"]), f"{tg['op']} {tg['threshold']}",
                     res, margin, paired, tg["detail"]])
    return _table(["target", "at", "measured", "needed", "result", "margin",
                   "per-rep ratio [min-max]", "medians (IQR/median)"], rows)


def _ratio_table(results: dict[str, Any]) -> list[str]:
    rows_in = results.get("sfork_vs_shm") or stats.sfork_vs_shm(results["summary"],
                                                                results.get("runs"))
    rows = []
    for r in rows_in:
        unit = "ns/page" if r["workload"] == "fault" else "ns"
        size = "1 page" if r["workload"] in CHANNEL_LAT else human_size(r["size"])
        tuned = (f"{r['tuned']} {fmt_value(r['tuned_value'], unit)}" if r.get("tuned")
                 else "-")
        rows.append([r["workload"], size, f"{r['sfork']} {fmt_value(r['sfork_value'], unit)}",
                     f"{r['shm']} {fmt_value(r['shm_value'], unit)}", _ratio(r["speedup"]),
                     *(_ratio(r.get(f"speedup_{v}")) for v in ALL_SFORK),
                     "yes" if r.get("separated") else "no", tuned,
                     _ratio(r.get("speedup_tuned")),
                     *(_ratio(r.get(f"speedup_tuned_{v}")) for v in ALL_SFORK)])
    return _table(["workload", "size", "best sfork", "best default peer", "vs default",
                   "lazy", "eager", "auto", "lazy huge", "beyond noise", "best tuned peer",
                   "vs tuned", "lazy", "eager", "auto", "lazy huge"], rows)


# --------------------------------------------------------------------------- analysis


def _faults_per_page(s: Summary | None, npages: int) -> str:
    if s is None or not s.get("counters") or not npages:
        return "n/a"
    c = s["counters"]
    tot = (c.get("minflt_parent") or 0) + (c.get("minflt_children") or 0)
    return f"{tot / npages:.2f}"


def _counters_table(t: Table, w: str, size: int) -> list[str]:
    npages = size // 4096
    rows = []
    for v in t.variants(w):
        s = t.get(w, v, size)
        if s is None or "median" not in s:
            continue
        c = s.get("counters") or {}
        ph = s.get("phases") or {}

        def n(x: float | None) -> str:
            return "-" if x is None else f"{x:.0f}"

        rows.append([v, fmt_value(s["median"], s["unit"]),
                     _pct(s.get("spread")), str(s["n"]),
                     fmt_value(ph.get("setup"), "ns"), fmt_value(ph.get("teardown"), "ns"),
                     n(c.get("minflt_parent")), n(c.get("minflt_children")),
                     _faults_per_page(s, npages) if w not in CHANNEL_LAT else "-",
                     n(c.get("sfork_faults")), n(c.get("sfork_pages_live")),
                     n((c.get("nvcsw_parent") or 0) + (c.get("nvcsw_children") or 0)),
                     *_memory_cells(s)])
    return _table(["variant", "median", "IQR/median", "n", "setup", "destroy",
                   "minflt parent", "minflt children", "faults/page", "sfork faults",
                   "sfork pages_live", "vol. ctx sw", "memory held", "of it PMD-mapped shmem",
                   "hugetlb mapped"], rows)


def _memory_cells(s: Summary) -> list[str]:
    """The region's memory after the work (Shmem + hugetlb in use, /proc/meminfo delta) and
    how much of it the parent maps huge (smaps_rollup)."""
    m = s.get("memory_kb")
    if not m:
        return ["-", "-", "-"]

    def mib(kb: float | None) -> str:
        if kb is None or kb < 0:
            return "-"
        return f"{kb / 1024:.1f} MiB" if kb >= 1024 else f"{kb:.0f} kB"

    return [mib(m.get("region")), mib(m.get("shmem_pmd_mapped")), mib(m.get("hugetlb_mapped"))]


def _size_table(t: Table, w: str) -> list[str]:
    sizes = t.sizes(w)
    rows = []
    for v in t.variants(w):
        cells = [v]
        for size in sizes:
            s = t.get(w, v, size)
            if s is None or "median" not in s:
                cells.append("failed" if s else "-")
            else:
                cells.append(f"{fmt_value(s['median'], s['unit'])} ±{_pct(s['spread'])}")
        rows.append(cells)
    return _table(["variant", *(human_size(s) for s in sizes)], rows)


def wins_and_losses(results: dict[str, Any]) -> list[str]:
    rows = results.get("sfork_vs_shm") or []
    real = [r for r in rows if r.get("separated", True)]
    wins = sorted((r for r in real if r["speedup"] >= 1.05), key=lambda r: -r["speedup"])
    losses = sorted((r for r in real if r["speedup"] <= 0.95), key=lambda r: r["speedup"])
    ties = [r for r in rows if r not in wins and r not in losses]

    def item(r: dict[str, Any]) -> str:
        size = "" if r["workload"] in CHANNEL_LAT else f" {human_size(r['size'])}"
        return (f"{r['workload']}{size}: {r['sfork']} vs {r['shm']} "
                f"**{r['speedup']:.2f}x**")

    groups = (("sharing data (abundant, sparse, random, multilevel)", REGION_WORKLOADS),
              ("set-up and teardown (latency, teardown)", ("latency", "teardown")),
              ("first-touch faults (lazy)", ("fault",)),
              ("channel (publish, pingpong, their polling forms, bulk)",
               (*CHANNEL_LAT, "bulk")))
    parts = []
    for label, ws in groups:
        xs = [r["speedup"] for r in rows if r["workload"] in ws and r["speedup"] > 0]
        if xs:
            gm = math.exp(sum(math.log(x) for x in xs) / len(xs))
            parts.append(f"{label}: **{gm:.2f}x** ({len(xs)} points)")
    tuned = [r["speedup_tuned"] for r in rows
             if r["workload"] in REGION_WORKLOADS and (r.get("speedup_tuned") or 0) > 0]
    tuned_text = ""
    if tuned:
        gm_t = math.exp(sum(math.log(x) for x in tuned) / len(tuned))
        tuned_text = (f" Against the best **tuned** peer (THP for shmem or hugetlbfs), "
                      f"sharing data: **{gm_t:.2f}x** ({len(tuned)} points).")
    out = ["**Answer of this run, in ratios** (geometric mean of best-sfork against "
           "the best default-configured shared-memory variant, > 1 = sfork faster): "
           + "; ".join(parts) + "." + tuned_text, ""]
    out += [f"Of {len(rows)} workload/size points (best sfork variant against the best "
           f"shared-memory variant, median times), sfork is faster by ≥ 5 % in "
           f"{len(wins)}, slower by ≥ 5 % in {len(losses)}, and indistinguishable in "
           f"{len(ties)} (within ±5 %, or the two variants' interquartile ranges overlap, "
           "i.e. the difference is inside this run's noise).", ""]
    if wins:
        out.append("**Where sfork wins:** " + "; ".join(item(r) for r in wins) + ".")
        out.append("")
    if losses:
        out.append("**Where sfork loses:** " + "; ".join(item(r) for r in losses) + ".")
        out.append("")
    if ties:
        out.append("**No difference beyond the noise:** " + "; ".join(item(r) for r in ties)
                   + ".")
        out.append("")
    return out


def why(results: dict[str, Any]) -> list[str]:
    """Explanations built from the counters recorded beside the times."""
    t = Table(results["summary"])
    out: list[str] = []
    sizes = t.sizes("abundant")
    if sizes:
        big = max(sizes)
        np_ = big // 4096
        parts = []
        for v in (*ALL_SFORK, *SHM_VARIANTS):
            s = t.get("abundant", v, big)
            if s and "median" in s:
                ph = s.get("phases") or {}
                parts.append(f"{v}: {_faults_per_page(s, np_)} faults/page, setup "
                             f"{fmt_value(ph.get('setup'), 'ns')}, destroy "
                             f"{fmt_value(ph.get('teardown'), 'ns')}")
        out.append(f"- **abundant {human_size(big)}** (both processes write all {np_} pages): "
                   "the time is the page faults plus allocation/zeroing of the pages, "
                   "wherever they happen. " + "; ".join(parts) + ". An eager region moves "
                   "allocation and zeroing into the call (its setup), and its processes then "
                   "take only the faults that map already allocated pages.")
    ss = t.sizes("sparse")
    if ss:
        big = max(ss)
        e, lz = t.med("sparse", "sfork_eager", big), t.med("sparse", "sfork_lazy", big)
        bh = t.best("sparse", SHM_VARIANTS, big)
        if e and lz and bh:
            out.append(f"- **sparse {human_size(big)}** (6 pages touched): eager pays for all "
                       f"{big // 4096} pages it allocates ({fmt_value(e, 'ns')}) while lazy "
                       f"({fmt_value(lz, 'ns')}) and {bh[0]} ({fmt_value(bh[1], 'ns')}) pay "
                       "only for the pages used: eager is the wrong choice for a large, "
                       "sparsely used region, which is why the automatic mode goes lazy above "
                       f"`eager_threshold` ({_threshold(results)}).")
    fs = t.sizes("fault")
    if fs and t.get("fault", "sfork_eager", max(fs)):
        out.append("- **eager regions** have every page allocated during the call, so the "
                   "creator's first touch only maps a page that is there (the fault "
                   "workload's sfork_eager row, one fault per 16 pages with fault-around or "
                   "per 2 MiB with huge pages): that cost moved into the call, see zerofill.")
    if fs:
        big = max(fs)
        parts = []
        for v in ("sfork_lazy", "sfork_lazy_huge", "sfork_eager", "shm_anon", "memfd",
                  "sysv_shm", "private", "private_thp"):
            s = t.get("fault", v, big)
            if s and "median" in s:
                c = s.get("counters") or {}
                fl = c.get("minflt_parent")
                per_fault = (s["median"] * (big // 4096) / fl) if fl else None
                parts.append(f"{v} {fmt_value(s['median'], 'ns/page')}/page"
                             + (f" ({fl / (big // 4096):.2f} faults/page, "
                                f"{fmt_value(per_fault, 'ns')}/fault)" if fl else ""))
        out.append(f"- **first touch, {human_size(big)}**: " + "; ".join(parts) + ". A region's "
                   "pages live in a shmem file (sfork's as much as shm's), so a first write "
                   "allocates, zeroes and inserts the page into that file's page cache, then "
                   "maps it through the file-rmap path; a private anonymous fault allocates "
                   "and maps an anonymous page. THP faults zero 2 MiB at once and take 1/512 "
                   "of the faults.")
    for w in ("publish", "pingpong"):
        s_, p_ = t.get(w, "sfork_auto", 4096), t.get(w, "pipe", 4096)
        if s_ and p_ and "median" in s_ and "median" in p_:
            cs, cp = s_.get("counters") or {}, p_.get("counters") or {}
            msgs = (results.get("config") or {}).get("msgs") or 1
            sw_s = ((cs.get("nvcsw_parent") or 0) + (cs.get("nvcsw_children") or 0)) / msgs
            sw_p = ((cp.get("nvcsw_parent") or 0) + (cp.get("nvcsw_children") or 0)) / msgs
            sender = ("the parent stores and always calls FUTEX_WAKE (the read-only child "
                      "cannot announce itself in the page)" if w == "publish" else
                      "a side enters the kernel to wake only when the other has announced "
                      "itself as sleeping (a waiter count in the page)")
            out.append(f"- **{w}**: sfork {fmt_value(s_['median'], 'ns')} vs pipe "
                       f"{fmt_value(p_['median'], 'ns')} "
                       f"({p_['median'] / s_['median']:.2f}x); voluntary context switches "
                       f"per message {sw_s:.1f} vs {sw_p:.1f}. Through the region {sender}; "
                       "a pipe costs a write and a read system call per message, the pipe "
                       "lock and its wake-up. A sleeping receiver still costs a wake-up and a "
                       "context switch on either channel, which bounds the blocking ratio; "
                       "the `_spin` rows show what polling the shared word first buys.")
    bs = t.sizes("bulk")
    if bs:
        big = max(bs)
        parts = []
        for v in ("sfork_auto", "sfork_eager", "sfork_lazy", "shm_anon", "pipe",
                  "socketpair"):
            s = t.get("bulk", v, big)
            if s and "median" in s and s.get("bytes"):
                parts.append(f"{v} {s['bytes'] / s['median']:.2f} GB/s")
        out.append(f"- **bulk {human_size(big)}**: " + "; ".join(parts) + ". The ring in the "
                   "region copies each byte twice (producer in, consumer out) like a pipe, "
                   "but without a system call per chunk; all region variants share this "
                   "code, so they differ only by how their ring pages fault in.")
    return out


def _params(results: dict[str, Any]) -> str:
    """Every parameter the module reported, e.g. its page policy, whatever it is called."""
    ps = (results.get("env") or {}).get("sfork_params") or {}
    return ", ".join(f"`{k}`={v}" for k, v in ps.items()) or "none (module absent?)"


def _tuning_text(results: dict[str, Any]) -> list[str]:
    """What the tuned peers ran with, and whether the hugetlb pool could be reserved."""
    tu = results.get("tuning")
    if not tu:
        return []
    pools = tu.get("hugetlb_pools") or []
    short = [p for p in pools if p["got"] < p["wanted"]]
    text = (f"Tuned peers: THP ones ran with `shmem_enabled={tu.get('thp_shmem')}` set around "
            "their runs only (the default peers and sfork ran with the boot's "
            f"`{tu.get('shmem_enabled_at_start')}`; at the end: "
            f"`{tu.get('shmem_enabled_at_end')}`); hugetlb ones from a pool reserved per "
            "item (vm.nr_hugepages, released after it): ")
    if not pools:
        text += "no item needed one."
    elif not short:
        text += (f"every pool was reserved in full (up to {max(p['wanted'] for p in pools)} "
                 "huge pages).")
    else:
        text += "**the pool could not be reserved** for " + "; ".join(
            f"`{p['item']}` (asked {p['wanted']}, got {p['got']} huge pages)" for p in short) \
            + ": those hugetlb runs failed (see Failed runs), and the best tuned peer there " \
            "is the best of the rest."
    return [text, ""]


def _threshold(results: dict[str, Any]) -> str:
    p = ((results.get("env") or {}).get("sfork_params") or {}).get("eager_threshold")
    try:
        return human_size(int(str(p)))
    except (TypeError, ValueError):
        return "unknown"


_HUGETLB_LIMIT = (
    "the best tuned peer is a hugetlbfs one: its pages were taken from a pool reserved "
    "before the run, so their allocation and the allocator's zeroing are not in its time; "
    "a shmem folio is allocated and zeroed in the run: once for sfork's (the allocator's "
    "zeroing with init_on_alloc=1, the module's without; the stats file's zero_once says "
    "which), twice with init_on_alloc=1 for the THP peers (the allocator, then shmem). "
    "Zeroing once closes most of the gap (DESIGN.md, \"Zeroing once\").")

LIMITS = {
    "sparse_lazy": "a lazy region pays for the pages it touches, like shm_anon; with huge "
                   "pages a touch costs a 2 MiB folio (allocation, zeroing) instead of 4 KiB, "
                   "which is what the memory column beside the time shows.",
    "idle_cpu": "after its spin window the receiver sleeps in FUTEX_WAIT; what remains is the "
                "window itself and one wake-up per poll slice (SFORK_CHAN_POLL_MS), which "
                "checks the peer.",
    "latency_4k": "sfork = open(/dev/sfork) + ioctl (the region's shmem file, the eager "
                  "page, vm_mmap) + close + fork, and a munmap that releases the region "
                  "file at the end: those system calls, the eager page and the extra VMA "
                  "are the overhead over fork()+wait; see the latency table's "
                  "setup/destroy columns and DESIGN.md, \"Set-up\".",
    "abundant_eager_default": "eager moves allocation and zero-fill into the call; what "
                              "remains per "
                      "page is one fault in each process to map the page. The limit is the "
                      "kernel's per-page path (allocation, clear_page, rmap/page-cache "
                      "insertion), not the stores (see the zero-fill row).",
    "abundant_lazy_huge_default": "with huge_pages=2 a lazy region faults 2 MiB folios: one "
                                  "fault per 2 MiB per process; what is left is zeroing 2 MiB "
                                  "(once: DESIGN.md, \"Zeroing once\").",
    "abundant_lazy_huge_tuned": _HUGETLB_LIMIT,
    "lazy_huge_fault": "a 2 MiB first touch allocates the folio and zeroes it once (the "
        "allocator with init_on_alloc=1, else the module's clear_highpage loop): zeroing, not "
        "the fault, is the time per 4 KiB (DESIGN.md, \"Zeroing once\")",
    "sparse_lazy_huge": "each of the 6 touches allocates and zeroes a 2 MiB folio: the price "
                        "of huge pages on a sparse region, which is why huge_pages=1 keeps "
                        "lazy regions on 4 KiB pages.",
    "abundant_lazy_default": "by default (huge_pages=1) a lazy region has 4 KiB pages: it "
                     "does what tmpfs-backed shared memory does (allocate+zero on the "
                     "first fault, map on the second process's fault): per-page costs are "
                     "of the same kind, so large speed-ups over shm are not available "
                     "from the fault path alone.",
    "abundant_eager_tuned": _HUGETLB_LIMIT,
    "eager_zerofill": "eager allocation zeroes every page once (the page allocator with "
        "init_on_alloc=1, else the module) and adds it to the page cache; the profile shows "
        "shmem_alloc_hugefolio (the allocator's zeroing) against the page-cache work in "
        "shmem_get_folio_gfp (DESIGN.md, \"Zeroing once\")",
    "channel_publish": "a hand-off that finds the receiver asleep costs futex wake + "
                       "schedule + IPI in every channel; the receiver's spin window avoids "
                       "that only while it is running, and the read-only reader cannot tell "
                       "the writer it sleeps, so the writer always enters the kernel.",
    "channel_pingpong": "each round trip is two blocking hand-offs: the same wake-up path "
                        "as a pipe dominates.",
    "channel_publish_spin": "polling avoids the sleep only while the receiver is running "
                            "on the other vCPU; under TCG vCPUs are host threads that share "
                            "the host's cores with other work.",
    "channel_pingpong_spin": "as for publish_spin: polling wins only while both sides are "
                             "running.",
}


def misses(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    profiles = results.get("profiles") or []
    for tg in results["targets"]:
        if tg["passed"] is not False:
            continue
        out.append(f"- **{tg['what']}** — measured {_ratio(tg['ratio'])} "
                   f"(needs {tg['op']} {tg['threshold']}), misses by "
                   f"{-tg['margin'] * 100:.0f} %. {tg['detail']}. "
                   f"Limit: {LIMITS.get(tg['id'], '')}")
        for p in profiles:
            if _profile_matches(tg["id"], p["label"]):
                out.append(f"  - profile `{p['label']}`: {profile_brief(p)}.")
    if not out:
        out.append("No target was missed.")
    return out


def _profile_matches(tid: str, label: str) -> bool:
    w = label.split(":", 1)[0]
    return {"eager_zerofill": w == "zerofill",
            "abundant_eager_default": w in ("abundant", "zerofill", "fault"),
            "abundant_eager_tuned": w in ("abundant", "zerofill", "fault"),
            "abundant_lazy_default": w in ("abundant", "fault"),
            "latency_4k": w == "latency",
            "sparse_lazy": w == "sparse", "idle_cpu": w == "idle",
            "abundant_lazy_huge_default": w in ("abundant", "fault"),
            "abundant_lazy_huge_tuned": w in ("abundant", "fault"),
            "lazy_huge_fault": w == "fault", "sparse_lazy_huge": w == "sparse",
            }.get(tid, w in tid)


def _roots(p: dict[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """The graphed functions' entries and their total traced time."""
    globs = str(p.get("graph_functions") or "").split(",")
    roots = [f for f in p.get("functions") or []
             if f["depth"] == 0 and any(fnmatch.fnmatchcase(f["name"], g) for g in globs)]
    return roots, sum(f["total_us"] for f in roots) or 1.0


def profile_brief(p: dict[str, Any], n: int = 6) -> str:
    """One sentence: cost per graphed call and the largest self times."""
    roots, total = _roots(p)
    per = ", ".join(f"`{r['name']}` {r['total_us'] / max(r['calls'], 1):.1f} µs/call"
                    for r in roots)
    top = sorted(p.get("functions") or [], key=lambda f: -float(f.get("self_us", 0)))[:n]
    selfs = ", ".join(f"`{f['name']}` {f.get('self_us', 0) / total * 100:.0f} %" for f in top)
    return f"traced {per}; largest self times: {selfs}{lost_note(p)}"


def lost_note(p: dict[str, Any]) -> str:
    """A warning when the ring buffer overflowed: callee records went missing, so
    their time shows as their callers' self time and shares can add up past 100 %."""
    lost = int(p.get("overrun") or 0)
    if not lost:
        return ""
    frac = lost / (lost + int(p.get("lines") or 0))
    return (f" (**approximate**: {lost} of the trace's records, about {frac:.0%}, were lost "
            "to a full ring buffer, so callers' self times absorb their callees')")


def profile_section(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for p in results.get("profiles") or []:
        funcs = p.get("functions") or []
        out.append(f"### `{p['label']}`")
        out.append("")
        filt = p.get("filter") or ""
        out.append(f"ftrace `function_graph` in the guest, graphing `{p['graph_functions']}` "
                   f"to depth {p['max_depth']} over the measured runs; {p['lines']} trace "
                   f"records, {p['overrun']} lost. Only functions matching the filter are "
                   f"hooked (`{filt[:200]}{'...' if len(filt) > 200 else ''}`), so a "
                   "function outside it shows as self time of its caller. Times are "
                   "inclusive (self: minus the traced callees) and include tracing overhead: "
                   "compare shares and per-call costs between profiles, not with the "
                   "untraced medians." + lost_note(p))
        out.append("")
        roots, total = _roots(p)
        for r in roots:
            out.append(f"- `{r['name']}`: {r['calls']} calls, "
                       f"{r['total_us'] / max(r['calls'], 1):.2f} µs per call (traced)")
        out.append("")
        rows = [[f"{'· ' * f['depth']}`{f['name']}`", str(f["depth"]), str(f["calls"]),
                 f"{f['total_us'] / 1e3:.2f}", f"{f['total_us'] / max(f['calls'], 1):.2f}",
                 f"{f['total_us'] / total * 100:.1f} %",
                 f"{f.get('self_us', 0) / total * 100:.1f} %"]
                for f in funcs[:25] if f["depth"] > 0 or f in roots]
        out += _table(["function (by inclusive time)", "depth", "calls", "total ms",
                       "µs/call", "share", "self share"], rows)
        out.append("")
        top = sorted(funcs, key=lambda f: -float(f.get("self_us", 0)))[:10]
        out.append("Largest self times: " + ", ".join(
            f"`{f['name']}` {f.get('self_us', 0) / total * 100:.1f} %" for f in top) + ".")
        out.append("")
    return out


# --------------------------------------------------------------------------- report


def write_report(results: dict[str, Any], out: Path) -> Path:
    files = make_plots(results, out)
    t = Table(results["summary"])
    g = results["guest"]
    env = results.get("env") or {}
    cat = (results.get("catalog") or {}).get("workloads") or {}
    L: list[str] = []
    L.append(f"# sfork benchmark report ({results['mode']})")
    L.append("")
    L.append(f"Generated by `bench/report.py` from `results.json` of the run started "
             f"{results['started']} ({results['elapsed_s']} s). Guest: kernel "
             f"`{g['kernel']}`, accelerator **{g['accelerator']}**, {g['vcpus']} vCPUs "
             f"({g.get('vcpus_online')} online), {g['memory_mib']} MiB "
             f"(MemTotal {(g.get('mem_total_kb') or 0) // 1024} MiB), CPU "
             f"`{g.get('cpu_model')}`; THP `{env.get('thp_enabled')}`, shmem "
             f"`{env.get('thp_shmem_enabled')}`; sfork module parameters "
             f"{_params(results)}; kernel command line `{env.get('cmdline')}`. Host load "
             f"average at start {results['host'].get('loadavg_at_start')}.")
    L.append("")
    L += _tuning_text(results)
    if str(g["accelerator"]).lower() == "tcg":
        L.append("> **Read ratios, not absolute times.** This guest ran under TCG (QEMU's "
                 "instruction translator, no KVM): every instruction is emulated, page-table "
                 "and TLB operations are far more expensive relative to plain stores than on "
                 "hardware, and there are no hardware counters. Absolute times here are "
                 "10-100x those of real hardware and their proportions differ. All variants "
                 "of a workload ran interleaved in the same boot, so their *ratios* are "
                 "comparable; that is what this report leads with.")
        L.append("")
    L.append("## Is sfork a more efficient parent-child channel than shared memory?")
    L.append("")
    L += wins_and_losses(results)
    L.append("**Why** (from the kernel counters recorded beside the times):")
    L.append("")
    L += why(results)
    L.append("")
    L.append("## Targets")
    L.append("")
    L.append("Reported, not asserted. The targets are judged on Debian's 6.1 booted with "
             "its default command line, at 1 GiB, in the full plan (`make bench FULL=1`); "
             "on 6.12 none may be worse than in its last full run. "
             + (f"This run is not that configuration ({'; '.join(summary.scope(results))}): "
                "read its verdicts as indicative. " if summary.scope(results) else "")
             + "\"measured\" is the ratio of medians (pass/miss is judged on it); "
             "\"better\"/\"faster\" ratios are the other variant's time divided by "
             "sfork's. The per-repetition ratio pairs the two variants' runs of the same "
             "repetition, which ran back to back, so drifts of the host's load cancel out "
             "of it; its range shows how stable the verdict is.")
    L.append("")
    L += targets_table(results)
    L.append("")
    L.append("### Misses and what limits them")
    L.append("")
    L += misses(results)
    L.append("")
    L.append("## sfork against the best default-configured and the best tuned peer")
    L.append("")
    L.append("Side by side, from the same boot and the same interleaved repetitions. "
             "Speed-up = the peer's median / sfork's (> 1: sfork faster). \"Default\" "
             "peers are what a user gets on a stock system; \"tuned\" ones are the best a "
             "user with root can configure (THP for shmem, hugetlbfs). The lazy/eager/auto "
             "columns are each sfork variant against the same peer; \"beyond noise\" "
             "refers to the default peer.")
    L.append("")
    L += _ratio_table(results)
    L.append("")
    L.append("## Workloads")
    L.append("")
    for w in WORKLOADS:
        if not t.sizes(w) or w in NOT_PLOTTED:
            continue
        L.append(f"### {w}")
        L.append("")
        L.append(f"{cat.get(w, {}).get('what', '')}. Unit: {_unit_text(t, w)}.")
        L.append("")
        if w in files:
            L.append(f"![{w}]({files[w]})"
                     + (f" ![{w}: sfork over the best peers]({files[w + '-ratio']})"
                        if w + "-ratio" in files else ""))
            L.append("")
        L += _size_table(t, w)
        L.append("")
        big = max(t.sizes(w))
        L.append(f"Counters at {human_size(big)} (medians per run; faults/page = parent + "
                 "children minor faults / pages):")
        L.append("")
        L += _counters_table(t, w, big)
        L.append("")
        if w == "zerofill":
            L += _zerofill_text(t)
        if w == "bulk":
            L += _bulk_text(t)
    L.append("### Channel latency: publish and ping-pong")
    L.append("")
    L.append("One page; `publish`: the parent stores a timestamp and a sequence number "
             "(sfork: `PARENT_TO_CHILD`, the child only reads) and wakes the child, which "
             "records now - timestamp; acknowledgements go back through a separate pipe, "
             "the same for every variant. `pingpong`: round trip through the region "
             "(sfork: `BIDIRECTIONAL`) or a 4-byte write/read. `_spin`: the receiver "
             f"polls for up to {(results.get('config') or {}).get('spin_ns', 0) / 1e3:.0f} "
             "µs before sleeping (pipes: non-blocking read polling). The blocking forms go "
             "through libsfork's channels (publish channel, message ring), which spin for "
             f"the library's window ({_spin_text(results)}) before they sleep.")
    L.append("")
    if "channel" in files:
        L.append(f"![channel]({files['channel']})")
        L.append("")
    L += _channel_table(t)
    L.append("")
    L += _idle_text(t, results)
    L.append("## Profiles")
    L.append("")
    prof = profile_section(results)
    L += prof if prof else ["No profile was captured (driver option `--profile "
                            "workload:variant:size[@func,...]`)."]
    L.append("")
    L += _method(results)
    if results.get("problems"):
        L.append("## Problems during the run")
        L.append("")
        for p in results["problems"]:
            L.append(f"- `{p['item']}`: {p['problem']}")
        L.append("")
    errs = [s for s in results["summary"] if s.get("failed")]
    if errs:
        L.append("## Failed runs")
        L.append("")
        for s in errs:
            L.append(f"- {s['workload']}/{s['variant']} {human_size(s['size'])}: "
                     f"{s['failed']} failed: {'; '.join(s['errors'])}")
        L.append("")
    path = out / "report.md"
    path.write_text("\n".join(L) + "\n")
    return path


def _unit_text(t: Table, w: str) -> str:
    s = next((s for s in t.by.values() if s["workload"] == w), None)
    return {"ns": "time per run", "ns/page": "time per page"}.get(s["unit"] if s else "", "")


def _zerofill_text(t: Table) -> list[str]:
    rows = []
    for size in t.sizes("zerofill"):
        bw = stats.zerofill_bandwidth(t, size)
        m = bw["memset"]

        def gb(x: float | None) -> str:
            return "n/a" if x is None else f"{x / 1e9:.2f} GB/s"

        rows.append([human_size(size), gb(bw["memset"]), gb(bw["populate"]),
                     gb(bw["sfork_eager"]), gb(bw["sfork_eager_call"]),
                     _pct(bw["sfork_eager"] / m if bw["sfork_eager"] and m else None),
                     _pct(bw["populate"] / m if bw["populate"] and m else None)])
    return ["Zero-fill bandwidth: eager fill = size / (eager call - lazy call), i.e. without "
            "the fork both calls share; \"eager call\" counts the whole call.", "",
            *_table(["size", "memset", "MAP_POPULATE", "eager fill", "eager call",
                     "eager/memset", "populate/memset"], rows), ""]


def _bulk_text(t: Table) -> list[str]:
    rows = []
    for size in t.sizes("bulk"):
        pipe = t.med("bulk", "pipe", size)
        for v in t.variants("bulk"):
            s = t.get("bulk", v, size)
            if s and "median" in s and s.get("bytes"):
                rows.append([human_size(size), v, f"{s['bytes'] / s['median']:.3f} GB/s",
                             _ratio(pipe / s["median"] if pipe else None)])
    return ["Throughput (bytes / median time; ring of 1 MiB in 64 KiB chunks for the "
            "regions, pipe buffer set to 1 MiB):", "",
            *_table(["bytes", "variant", "throughput", "vs pipe"], rows), ""]


def _spin_text(results: dict[str, Any]) -> str:
    cfg = results.get("config") or {}
    ns = cfg.get("chan_spin_ns")
    if ns is None or ns < 0:
        ns = cfg.get("chan_spin_default_ns")
    return "unknown" if ns is None else f"{ns / 1e3:.0f} µs"


def _idle_text(t: Table, results: dict[str, Any]) -> list[str]:
    """The idle receiver: CPU time over the idle wait."""
    rows = []
    for v in t.variants("idle"):
        s = t.get("idle", v, t.sizes("idle")[0])
        if s and "median" in s and s.get("idle_ns"):
            rows.append([v, fmt_value(s["median"], "ns"), _ms_text(s["idle_ns"]),
                         f"{s['median'] / s['idle_ns'] * 100:.3f} %"])
    if not rows:
        return []
    cfg = results.get("config") or {}
    return ["### Idle receiver", "",
            "The child blocks in `sfork_ring_recv()` (region variants) or `read()` (pipe) "
            f"for {cfg.get('idle_ms')} ms with nothing to receive; its CPU time over the "
            "wait (getrusage, the spin window and the library's peer checks every "
            "SFORK_CHAN_POLL_MS included):", "",
            *_table(["variant", "CPU time", "waited", "share of a CPU"], rows), ""]


def _ms_text(ns: float) -> str:
    return f"{ns / 1e6:.0f} ms"


def _channel_table(t: Table) -> list[str]:
    rows = []
    for w in CHANNEL_LAT:
        if not t.sizes(w):
            continue
        size = t.sizes(w)[0]
        pipe, sock = t.med(w, "pipe", size), t.med(w, "socketpair", size)
        for v in t.variants(w):
            s = t.get(w, v, size)
            if not s or "median" not in s:
                rows.append([w, v, "failed", "", "", "", ""])
                continue
            lat = s.get("latency") or {}
            rows.append([w, v, fmt_value(s["median"], "ns"), _pct(s.get("spread")),
                         fmt_value(lat.get("p90"), "ns") if lat else "-",
                         _ratio(pipe / s["median"] if pipe else None),
                         _ratio(sock / s["median"] if sock else None)])
    return _table(["workload", "variant", "median", "IQR/median", "p90 (publish)",
                   "better than pipe", "better than socketpair"], rows)


def _method(results: dict[str, Any]) -> list[str]:
    cfg = results.get("config") or {}
    pl = results.get("plan") or {}
    L = ["## Method", "",
         f"- One guest boot ({results['guest'].get('boots')} boot(s)) runs every item of the "
         f"plan: `{' '.join(pl.get('items', []))}`.",
         "- Times: `clock_gettime(CLOCK_MONOTONIC)` inside `bench/bin/sforkbench`. Each "
         f"variant and size gets {pl.get('warmup')} warm-up run(s) (not counted; contents "
         f"verified) and {pl.get('reps')} measured repetitions (fewer at the largest sizes "
         "of the full plan, see items). The variants of a workload run interleaved, "
         "repetition by repetition, with the order rotated each time, so all of them see "
         "the same guest conditions and their ratios hold. Reported: median; spread = "
         "interquartile range / median (min-max when fewer than 4 repetitions).",
         "- Region workloads time create + fork + both sides' work + wait + destroy "
         "(`total`); set-up (create+fork, or the sfork call), the parent's work, the wait "
         "and the destroy are recorded separately. Each process writes its own 8-byte slot "
         "in a page, so there are no write races, and the warm-up checks every slot.",
         "- Counters beside every time: `getrusage` minor faults and context switches for "
         "the parent, its reaped children, and the child itself; sfork's "
         "`/sys/kernel/debug/sfork/stats` `faults` (delta) and `pages_live` (after the work, "
         "before destroy).",
         f"- Channel: {cfg.get('msgs')} messages/round trips per run; bulk ring "
         f"{human_size(int(cfg.get('ring') or 0))} in chunks of "
         f"{human_size(int(cfg.get('chunk') or 0))}; futex waits announce themselves so the "
         "waker only enters the kernel when someone sleeps.",
         "- The `file` variant's file lives on the guest's /tmp (tmpfs): the busybox guest "
         "has no disk, so it measures a file mapping through the page cache without I/O.",
         "", "Variants:", ""]
    classes = (results.get("catalog") or {}).get("classes") or {}
    params = (results.get("env") or {}).get("sfork_params") or {}
    policy = ", ".join(f"`{k}`={v}" for k, v in params.items() if "huge" in k or "page" in k)
    for v in (results.get("catalog") or {}).get("variants", []):
        extra = ""
        if classes.get(v) == "sfork":
            extra = (f" (page policy of this run: {policy}; the memory columns show what was "
                     "mapped huge)" if policy else
                     " (the module reported no page-policy parameter: 4 KiB pages)")
        L.append(f"- `{v}` ({classes.get(v, '?')}): {VARIANT_TEXT.get(v, '')}{extra}")
    L.append("")
    return L


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--out", type=Path, help="output directory (default: beside results)")
    a = ap.parse_args(argv)
    results = json.loads(a.results.read_text())
    # Re-derive the statistics from the raw runs and store them back, so that the JSON
    # and the report it describes always agree.
    results["summary"] = stats.summarize(results["runs"])
    results["targets"] = stats.targets(results["summary"], results["runs"])
    results["sfork_vs_shm"] = stats.sfork_vs_shm(results["summary"], results["runs"])
    a.results.write_text(json.dumps(results, indent=1) + "\n")
    path = write_report(results, a.out or a.results.parent)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
