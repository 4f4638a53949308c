"""Bench driver: boot one guest, run the plan, write results.json, plots and report.md.

    python -m bench.driver --quick            # a few minutes under TCG
    python -m bench.driver --full             # sizes to 1 GiB
    python -m bench.driver --smoke --out build/bench-smoke   # tiny, for make test
    python -m bench.driver --quick --profile abundant:sfork_lazy:32M@handle_mm_fault

Run from the repository root (``make -C bench bench`` does that).  Each plan item is
one sforkbench invocation in the same guest; its JSON comes back over the console.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import plan as planmod
from bench import report, stats
from bench.guestrun import BenchGuest, Outcome
from bench.summary import terminal_summary

ROOT = Path(__file__).resolve().parent.parent


def build(verbose: bool) -> None:
    """What the bench needs: the static binary (and libsfork.a), and the module."""
    out = None if verbose else subprocess.DEVNULL
    subprocess.run(["make", "-C", str(ROOT / "bench")], check=True, stdout=out)
    ko = ROOT / "kmod" / "sfork.ko"
    kver = subprocess.run([str(ROOT / "scripts" / "default-kver")], capture_output=True,
                          text=True, check=True).stdout.strip()
    # a module last built for another kernel (a 6.12 test run) is rebuilt for this one
    stale = ko.is_file() and subprocess.run(
        ["modinfo", "-F", "vermagic", str(ko)], capture_output=True, text=True,
    ).stdout.split(" ", 1)[0] != kver
    subprocess.run(["make", "-C", str(ROOT / "kmod"), *(["-B"] if stale else [])],
                   check=True, stdout=out)


def host_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {"node": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "loadavg_at_start": [round(x, 2) for x in load]}


NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
SHMEM_ENABLED = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"


def reserve_hugetlb(guest: BenchGuest, item: planmod.Item) -> dict[str, Any] | None:
    """Reserve the hugetlb pool an item's hugetlb peers need (vm.nr_hugepages, released
    after the item); what was asked and what the kernel could give."""
    want = item.hugetlb_pages()
    if not want:
        return None
    _, out = guest.sh(f"echo 3 > /proc/sys/vm/drop_caches; echo 1 > /proc/sys/vm/compact_memory; "
                      f"echo {want} > {NR_HUGEPAGES}; cat {NR_HUGEPAGES}")
    lines = out.strip().splitlines()
    got = int(lines[-1]) if lines and lines[-1].strip().isdigit() else 0
    return {"item": item.arg(), "wanted": want, "got": got}


def merge(outcomes: list[Outcome]) -> tuple[dict[str, Any], list[dict[str, Any]],
                                             list[dict[str, Any]], list[dict[str, Any]]]:
    """(env/catalog/config of the first document, all runs, profiles, problems)."""
    head: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    profiles: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for o in outcomes:
        is_profile = o.label.startswith("profile ")
        if o.doc is not None:
            if not head:
                head = {k: o.doc.get(k) for k in ("schema", "env", "catalog")}
                head["config"] = dict(o.doc.get("config") or {})
                head["config"]["items"] = []
            if is_profile:
                if o.doc.get("profile"):
                    prof = dict(o.doc["profile"])
                    prof["label"] = o.label.removeprefix("profile ")
                    prof["runs"] = [r for r in o.doc.get("results", []) if not r.get("warmup")]
                    profiles.append(prof)
            else:
                head["config"]["items"] += (o.doc.get("config") or {}).get("items", [])
                runs += o.doc.get("results", [])
        elif not is_profile:
            runs += o.salvaged
        if o.problem:
            problems.append({"item": o.label, "command": o.command, "problem": o.problem,
                             "stderr": o.stderr, "kernel_log": o.kernel_log})
    return head, runs, profiles, problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--mode", choices=("smoke", "quick", "full"), default="quick")
    g.add_argument("--quick", dest="mode", action="store_const", const="quick")
    g.add_argument("--full", dest="mode", action="store_const", const="full")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke")
    ap.add_argument("--out", type=Path, default=None,
                    help="output directory (default build/bench, smoke: build/bench-smoke)")
    ap.add_argument("--profile", action="append", default=None, metavar="W:V:SIZE[@FUNCS]",
                    help="capture an ftrace function_graph profile of one workload/variant "
                         "(repeatable; 'none' for no profile; default depends on the mode)")
    ap.add_argument("--only", help="comma list of workloads to run (default all)")
    ap.add_argument("--memory", type=int, help="guest memory in MiB (default by mode)")
    ap.add_argument("--accel", choices=("auto", "tcg", "kvm"), default="auto")
    ap.add_argument("--no-build", action="store_true", help="do not run make first")
    ap.add_argument("--kguest-build", action="store_true",
                    help="let kguest run the project build (make build) before booting")
    ap.add_argument("--kernel", default=None, metavar="NAME",
                    help="guest kernel: a name of kguest's registry (e.g. 6.12; default: "
                         "the project's default kernel)")
    ap.add_argument("--cmdline", action="append", default=[], metavar="WORD",
                    help="an extra guest kernel command-line word, e.g. init_on_alloc=0 "
                         "(repeatable; the report shows the guest's /proc/cmdline)")
    ap.add_argument("--no-summary", action="store_true",
                    help="do not print the terminal summary at the end (make run prints it "
                         "with the suite's counts)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    profiles: tuple[planmod.Profile, ...] | None = None
    if a.profile is not None:
        profiles = () if a.profile == ["none"] else tuple(
            planmod.parse_profile(p) for p in a.profile if p != "none")
    plan = planmod.make_plan(a.mode, profiles)
    items = plan.items
    if a.only:
        keep = set(a.only.split(","))
        items = tuple(i for i in items if i.workload in keep)
    out: Path = a.out or ROOT / "build" / ("bench-smoke" if a.mode == "smoke" else "bench")
    out.mkdir(parents=True, exist_ok=True)
    (out / "raw").mkdir(exist_ok=True)
    for old in (out / "raw").iterdir():  # this run's raw files only
        old.unlink()

    if not a.no_build:
        build(a.verbose)
    t_start = time.monotonic()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    outcomes: list[Outcome] = []
    chatty = a.verbose or a.mode != "smoke"

    def say(msg: str) -> None:
        if chatty:
            print(msg)

    with BenchGuest(a.memory or plan.memory_mib, cpus=2, accel=a.accel,
                    build=a.kguest_build or a.kernel is not None, root=ROOT,
                    kernel=a.kernel, cmdline=tuple(a.cmdline),
                    log=out / "raw" / "console.log") as guest:
        info = guest.info
        say(f"bench: guest {info['kernel_version']} {info['accelerator']} "
            f"x{info['vcpus']} {info['memory_mib']} MiB booted in {info['boot_seconds'][0]} s")
        _, sfstat = guest.sh("cat /sys/kernel/debug/sfork/stats 2>&1; "
                             "grep -H . /sys/module/sfork/parameters/* 2>&1")
        per_item = plan.timeout_s
        pools: list[dict[str, Any]] = []
        for i, item in enumerate(items):
            single = dataclasses.replace(plan, items=(item,))
            cmd = single.command()
            say(f"bench: [{i + 1}/{len(items)}] {item.arg()}")
            pool = reserve_hugetlb(guest, item)
            if pool:
                pools.append(pool)
                if pool["got"] < pool["wanted"]:
                    say(f"bench:   hugetlb pool: asked {pool['wanted']} huge pages, got "
                        f"{pool['got']}: this item's hugetlb runs will fail")
            o = guest.run_bench(item.arg(), cmd, per_item)
            if pool:
                guest.sh(f"echo 0 > {NR_HUGEPAGES}")
            (out / "raw" / f"{i:02d}-{item.workload}.txt").write_text(o.raw or o.problem)
            if o.problem:
                say(f"bench:   problem: {o.problem}")
            outcomes.append(o)
        for p in plan.profiles:
            cmd = shlex.join([planmod.GUEST_BIN, *plan.profile_args(p)])
            say(f"bench: profile {p.label}")
            o = guest.run_bench(f"profile {p.label}", cmd, per_item)
            lost = int(((o.doc or {}).get("profile") or {}).get("overrun") or 0)
            if lost:
                say(f"bench:   {lost} trace records lost (ring buffer full): this profile's "
                    "shares are approximate; profile a smaller size or raise -B")
            outcomes.append(o)
        info = guest.info
        _, shmem_after = guest.sh(f"cat {SHMEM_ENABLED}")
    head, runs, profiles_out, problems = merge(outcomes)
    summary = stats.summarize(runs)
    env = head.get("env") or {}
    results: dict[str, Any] = {
        "schema": "sfork-bench-results/1",
        "mode": plan.mode,
        "started": started,
        "elapsed_s": round(time.monotonic() - t_start, 1),
        "guest": {
            "kernel": env.get("kernel") or info["kernel_version"],
            "accelerator": info["accelerator"],
            "vcpus": info["vcpus"],
            "vcpus_online": env.get("cpus_online"),
            "memory_mib": info["memory_mib"],
            "mem_total_kb": env.get("mem_total_kb"),
            "cpu_model": env.get("cpu_model"),
            "boots": info["boots"],
            "boot_seconds": info["boot_seconds"],
            "sfork_stats_at_start": sfstat,
        },
        "host": host_info(),
        "cmdline_extra": list(a.cmdline),
        "only": a.only.split(",") if a.only else None,
        "plan": {"mode": plan.mode, "reps": plan.reps, "warmup": plan.warmup,
                 "msgs": plan.msgs, "items": [i.arg() for i in items],
                 "profiles": [p.label for p in plan.profiles]},
        "env": env,
        "config": head.get("config"),
        "catalog": head.get("catalog"),
        "runs": runs,
        "summary": summary,
        "targets": stats.targets(summary, runs),
        "sfork_vs_shm": stats.sfork_vs_shm(summary, runs),
        "profiles": profiles_out,
        "problems": problems,
        "tuning": {"thp_shmem": plan.thp_shmem, "hugetlb_pools": pools,
                   "shmem_enabled_at_start": env.get("thp_shmem_enabled"),
                   "shmem_enabled_at_end": shmem_after.strip()},
    }
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report.write_report(results, out)
    print(f"bench: wrote {out / 'results.json'}, {out / 'report.md'} "
          f"({results['elapsed_s']} s)")
    if a.mode != "smoke" and not a.no_summary:
        print(terminal_summary(results, report=out / "report.md"))
    for pr in problems:
        print(f"bench: problem in {pr['item']}: {pr['problem']}", file=sys.stderr)
    return 1 if problems else 0


def cli() -> int:
    """main() with a set-up problem (no module build, no guest, a bad kernel) as one line."""
    from kguest.errors import KguestError

    try:
        return main()
    except KguestError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 125
    except subprocess.CalledProcessError as e:
        print(f"bench: {' '.join(map(str, e.cmd))} failed (exit {e.returncode}); run it "
              "yourself to see why", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(cli())
