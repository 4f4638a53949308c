"""What each bench mode runs: the sforkbench command lines and the guest's size."""

from __future__ import annotations

import dataclasses
import shlex

from bench.check_results import HUGETLB_VARIANTS, WORKLOADS

GUEST_BIN = "sforkbench"  # on the guest's PATH (kguest bin_dirs: bench/bin)


@dataclasses.dataclass(frozen=True)
class Item:
    workload: str
    sizes: tuple[str, ...] = ("4K",)
    variants: str = "all"
    reps: int | None = None

    def arg(self) -> str:
        s = f"{self.workload}:{self.variants}:{','.join(self.sizes)}"
        return s + (f":{self.reps}" if self.reps else "")

    def hugetlb_pages(self) -> int:
        """Huge pages (2 MiB) the item's hugetlb variants need: one region at a time, the
        largest size rounded up to whole huge pages.  0 when it runs none."""
        names = WORKLOADS[self.workload] if self.variants == "all" else \
            tuple(self.variants.split(","))
        if not any(v in HUGETLB_VARIANTS for v in names):
            return 0
        return max(-(-parse_size(s) // HUGE_PAGE) for s in self.sizes)


HUGE_PAGE = 2 << 20
SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """``4K``, ``16M``, ``1G`` or a byte count (as sforkbench reads them)."""
    t = text.upper().removesuffix("B").removesuffix("I")
    if t and t[-1] in SIZE_UNITS:
        return int(t[:-1], 0) * SIZE_UNITS[t[-1]]
    return int(t, 0)


@dataclasses.dataclass(frozen=True)
class Profile:
    """One ftrace function_graph capture: a workload/variant/size and the functions graphed."""

    workload: str
    variant: str
    size: str
    funcs: tuple[str, ...]
    depth: int = 6

    @property
    def filter(self) -> tuple[str, ...]:
        """Functions hooked at all: the graph roots and their workload's family."""
        return (*self.funcs, *FILTERS.get(self.workload, MM_GLOBS))

    @property
    def label(self) -> str:
        return f"{self.workload}:{self.variant}:{self.size}@{','.join(self.funcs)}"


# Graph functions that cover the cost of each workload's slow path.
DEFAULT_GRAPH: dict[str, tuple[str, ...]] = {
    "fault": ("handle_mm_fault",),
    "abundant": ("handle_mm_fault",),
    "sparse": ("__x64_sys_ioctl", "__x64_sys_munmap"),
    "random": ("handle_mm_fault",),
    "multilevel": ("handle_mm_fault",),
    "zerofill": ("__x64_sys_ioctl",),
    "latency": ("__x64_sys_ioctl", "__x64_sys_clone", "__x64_sys_munmap",
                "__x64_sys_exit_group"),
    "teardown": ("__x64_sys_munmap",),
    "publish": ("__x64_sys_futex", "__x64_sys_read", "__x64_sys_write"),
    "pingpong": ("__x64_sys_futex", "__x64_sys_read", "__x64_sys_write"),
    "publish_spin": ("__x64_sys_futex",),
    "pingpong_spin": ("__x64_sys_futex",),
    "bulk": ("handle_mm_fault", "__x64_sys_futex"),
}


# set_ftrace_filter globs.  Hooking every kernel function makes a TCG guest tens of
# times slower (and switching the tracer on and off takes ~10 s each way), so only the
# families that matter for a workload are hooked; the graph shows those functions.
MM_GLOBS = ("*fault*", "*page*", "*shmem*", "*mem_cgroup*", "*memcg*", "*folio*", "*lru*",
            "*rmap*", "*pte*", "*pmd*", "*alloc*", "*clear*", "*zone*", "*filemap*", "*vma*",
            "*sfork*", "*tlb*", "*unmap*", "*mmap*", "*charge*", "*xas*", "*dirty*")
SYS_GLOBS = ("__x64_sys_*", "*clone*", "*fork*", "*dup_*", "*exit*", "*fput*", "*file*",
             "*copy_*", "*ioctl*", "*misc*", "*mm_*", "*wait*", *MM_GLOBS)
CHAN_GLOBS = ("__x64_sys_*", "*futex*", "*wake*", "*sched*", "*pipe*", "*unix*", "*sock*",
              "*ttwu*", "*enqueue*", "*dequeue*", "*switch*", "*ipi*", "*poll*", "*fault*")
FILTERS: dict[str, tuple[str, ...]] = {
    "latency": SYS_GLOBS, "zerofill": SYS_GLOBS, "teardown": SYS_GLOBS, "sparse": SYS_GLOBS,
    "publish": CHAN_GLOBS, "pingpong": CHAN_GLOBS, "publish_spin": CHAN_GLOBS,
    "pingpong_spin": CHAN_GLOBS, "bulk": (*CHAN_GLOBS, *MM_GLOBS),
}
DEPTH = {"fault": 8, "abundant": 8, "random": 8, "multilevel": 8}


def parse_profile(spec: str) -> Profile:
    """``workload:variant:size[@func,func]``."""
    head, _, funcs = spec.partition("@")
    parts = head.split(":")
    if len(parts) != 3 or parts[0] not in WORKLOADS or parts[1] not in WORKLOADS[parts[0]]:
        raise ValueError(f"bad profile {spec!r}: want workload:variant:size[@func,...]")
    fl = tuple(f for f in funcs.split(",") if f) or DEFAULT_GRAPH[parts[0]]
    return Profile(parts[0], parts[1], parts[2], fl, DEPTH.get(parts[0], 6))


@dataclasses.dataclass(frozen=True)
class Plan:
    mode: str
    items: tuple[Item, ...]
    reps: int
    warmup: int
    msgs: int
    memory_mib: int
    timeout_s: float
    verify_all: bool = False
    profiles: tuple[Profile, ...] = ()
    extra_args: tuple[str, ...] = ()
    # shmem_enabled for the THP-tuned peers (sforkbench sets it around their runs only)
    thp_shmem: str = "advise"
    idle_ms: int = 2000  # the idle workload's wait

    def args(self) -> list[str]:
        a = ["-r", str(self.reps), "-w", str(self.warmup), "-n", str(self.msgs),
             "-H", self.thp_shmem, "-I", str(self.idle_ms)]
        if self.verify_all:
            a.append("-V")
        return [*a, *self.extra_args, *(i.arg() for i in self.items)]

    def command(self) -> str:
        return f"{GUEST_BIN} {shlex.join(self.args())}"

    def profile_args(self, p: Profile) -> list[str]:
        return ["-r", "2", "-w", "1", "-n", str(self.msgs), "-P", ",".join(p.funcs),
                "-F", ",".join(p.filter), "-D", str(p.depth),
                f"{p.workload}:{p.variant}:{p.size}"]


CHANNEL = ("publish", "pingpong", "publish_spin", "pingpong_spin")


def _items(region: tuple[str, ...], latency: tuple[str, ...], fault: tuple[str, ...],
           zerofill: tuple[str, ...], teardown: tuple[str, ...], bulk: tuple[str, ...],
           big: tuple[str, ...] = (), big_reps: int | None = None) -> tuple[Item, ...]:
    """The plan's items; sizes listed in ``big`` get ``big_reps`` repetitions (one item
    per workload and repetition count, variants still interleaved within it)."""
    items: list[Item] = []

    def add(w: str, sizes: tuple[str, ...]) -> None:
        small = tuple(x for x in sizes if x not in big)
        large = tuple(x for x in sizes if x in big)
        if small:
            items.append(Item(w, small))
        if large:
            items.append(Item(w, large, reps=big_reps))

    for w in ("abundant", "sparse", "random", "multilevel"):
        add(w, region)
    add("latency", latency)
    add("fault", fault)
    add("zerofill", zerofill)
    add("teardown", teardown)
    items += [Item(w) for w in CHANNEL]
    add("bulk", bulk)
    items.append(Item("idle"))
    return tuple(items)


# The blocking channel targets compare the region with a pipe: profile both sides.
CHANNEL_PROFILES = tuple(parse_profile(f"{w}:{v}:4K") for w in ("publish", "pingpong")
                         for v in ("sfork_auto", "pipe"))


def make_plan(mode: str, profiles: tuple[Profile, ...] | None = None) -> Plan:
    if mode == "smoke":
        items = _items(("256K",), ("4K", "64K"), ("256K",), ("1M",), ("256K",), ("1M",))
        # One small profile, so that the ftrace path is exercised wherever the smoke runs.
        smoke_prof = (parse_profile("fault:sfork_lazy:256K"),)
        return Plan("smoke", items, reps=1, warmup=0, msgs=20, memory_mib=1024,
                    timeout_s=300, verify_all=True, idle_ms=300,
                    profiles=smoke_prof if profiles is None else profiles)
    if mode == "quick":
        items = _items(("4M", "16M"), ("4K", "64K", "1M", "16M"), ("4M", "16M"), ("4M", "16M"),
                       ("4M", "16M"), ("4M", "16M"))
        default: tuple[Profile, ...] = (
            parse_profile("fault:sfork_lazy:4M"), parse_profile("fault:private:4M"),
            parse_profile("latency:sfork_auto:4K"), parse_profile("latency:fork:4K"),
            parse_profile("zerofill:sfork_eager:4M"), *CHANNEL_PROFILES)
        return Plan("quick", items, reps=5, warmup=1, msgs=200, memory_mib=2048,
                    timeout_s=1800, profiles=default if profiles is None else profiles)
    if mode == "full":
        items = _items(("32M", "128M", "512M", "1G"), ("4K", "64K", "1M", "16M", "256M", "1G"),
                       ("16M", "256M"), ("4M", "64M", "1G"), ("32M", "256M", "1G"),
                       ("64M", "256M"), big=("512M", "1G"), big_reps=3)
        # Profile sizes are the quick plan's: a per-page path costs the same at any size,
        # and at 16 MiB and more the 16 MiB-per-CPU trace buffer overflows (seen: a
        # quarter to two thirds of the records lost, self times inflated).
        default = (parse_profile("fault:sfork_lazy:4M"), parse_profile("fault:private:4M"),
                   parse_profile("fault:sfork_lazy_huge:4M"),
                   parse_profile("latency:sfork_auto:4K"), parse_profile("latency:fork:4K"),
                   parse_profile("zerofill:sfork_eager:4M"),
                   parse_profile("abundant:sfork_lazy:4M"), *CHANNEL_PROFILES)
        return Plan("full", items, reps=5, warmup=1, msgs=1000, memory_mib=4096,
                    timeout_s=4 * 3600, profiles=default if profiles is None else profiles)
    raise ValueError(f"unknown mode {mode!r}")
