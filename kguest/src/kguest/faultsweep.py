"""The error-path sweep: a test run again and again, each time from the guest's snapshot,
with the N-th fault-injectable call made on the project's modules' behalf failing.

Which calls count: those made with one of the project's modules on the call stack
(its text ranges, from ``/sys/module/NAME/sections`` and the module's ELF), of one
kind at a time: ``slab`` (failslab), ``page`` (fail_page_alloc) or ``function``
(fail_function, for the functions the kernel lists as error-injectable, system
calls and the two allocation hooks left out).  The kernel's fault attributes are
set so that every allocation is a candidate (``ignore-gfp-wait`` and
``ignore-gfp-highmem`` off, ``min-order`` 0) and none fails on its own
(``probability`` 0); kguest's helper module (``data/faultinject``, built for the
guest's kernel and loaded with the project's modules) counts the module's calls
and makes the N-th fail through the calling task's ``fail-nth``, so the kernel's
own code fails it.  Needs a kernel with fault injection and kprobes.

Each N gets a :class:`Verdict`: ``handled`` (the test passed, or failed with an
errno the project accepts, ``[tool.kguest.fault_sweep] accept_errnos``), ``test
failure``, ``kernel report`` (Oops, WARN, KASAN, lockdep...) or ``leak``
(kmemleak, or the project's ``leak_check`` command failing after the run).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from importlib import resources
from pathlib import Path

from . import extbuild
from .config import ProjectConfig
from .errors import ImageError, KguestError
from .guest import Guest, TestRun
from .kernels import Kernel, kconfig
from .progress import Say
from .results import Outcome, expect_errno
from .trouble import TROUBLE_RX

HELPER = "kguest_fault"
DEBUGFS = "/sys/kernel/debug"
CTL = f"{DEBUGFS}/{HELPER}"
KINDS = {"slab": 1, "page": 2, "function": 4}
ATTRS = {"slab": "failslab", "page": "fail_page_alloc", "function": "fail_function"}
NEEDED = ("FAULT_INJECTION", "FAILSLAB", "FAIL_PAGE_ALLOC", "FAULT_INJECTION_DEBUG_FS", "KPROBES")
HINT = (
    "use a kernel built with fault injection (CONFIG_FAULT_INJECTION, FAILSLAB, "
    "FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS, KPROBES; FAIL_FUNCTION for functions): "
    "--kernel NAME of such a kernel, or --kernel VMLINUZ --kdir DIR"
)
_TS_RX = re.compile(r"^\[\s*\d+\.\d+\]\s*")
# kmemleak reports an object only once it is this old (mm/kmemleak.c, MSECS_MIN_AGE)
KMEMLEAK_AGE = 5.0


def check_kernel(kernel: Kernel) -> None:
    kconfig.require(kernel, NEEDED, "--kguest-fault-sweep", HINT)


def kinds_of(kernel: Kernel, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds of ``wanted`` that ``kernel`` can inject."""
    return tuple(k for k in wanted if k != "function" or kconfig.enabled(kernel, "FAIL_FUNCTION"))


def build_helper(cfg: ProjectConfig, kernel: Kernel, say: Say, session: str) -> Path:
    """kguest's helper module, built for ``kernel`` (once per session)."""
    src = cfg.build_path / "faultinject" / HELPER
    src.mkdir(parents=True, exist_ok=True)
    pkg = resources.files("kguest").joinpath("data/faultinject")
    for name in ("Kbuild", f"{HELPER}.c"):
        data = pkg.joinpath(name).read_bytes()
        dest = src / name
        if not dest.is_file() or dest.read_bytes() != data:
            dest.write_bytes(data)
    mirror = cfg.build_path / "faultinject" / kernel.version
    log = cfg.build_path / "logs" / f"faultinject-{kernel.name}.log"
    built = extbuild.build_external(src, mirror, kernel, {}, log, say, session)
    if not built or not built[0].is_file():
        raise ImageError(f"the fault-injection helper was not built (log: {log})", "read the log")
    return built[0]


# --- the guest side -----------------------------------------------------------------------


def text_sections(ko: Path) -> dict[str, int]:
    """Executable sections of a module file and their sizes (``.init*`` left out: freed
    after loading)."""
    try:
        out = subprocess.run(
            ["readelf", "-SW", str(ko)], capture_output=True, text=True, check=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise KguestError(f"readelf {ko}: {e}", "install binutils") from e
    found = {}
    rx = re.compile(
        r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)"
    )
    for line in out.splitlines():
        m = rx.match(line)
        if m and "X" in m.group(3) and not m.group(1).startswith(".init"):
            size = int(m.group(2), 16)
            if size:
                found[m.group(1)] = size
    return found


def targets(guest: Guest) -> list[Path]:
    """The modules whose calls count: the guest's project modules, not the helper."""
    return [m for m in guest.spec.modules if not m.name.startswith(HELPER)]


def _ranges(guest: Guest) -> list[tuple[int, int]]:
    """The targets' text in the guest: each executable section's address there (sysfs),
    its size from the module file."""
    sizes: dict[str, dict[str, int]] = {}
    for ko in targets(guest):
        sizes[ko.name.split(".ko")[0].replace("-", "_")] = text_sections(ko)
    files = [f"/sys/module/{m}/sections/{sec}" for m, secs in sizes.items() for sec in secs]
    if not files:
        return []
    out = guest.run(
        "for f in " + " ".join(files) + '; do [ -r $f ] && echo "$f $(cat $f)"; done', 60
    ).output
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].startswith("/sys/module/"):
            _, _, mod, _, sec = parts[0].split("/", 5)[1:]
            addr = int(parts[1], 16)
            if addr:
                found.append((addr, addr + sizes[mod][sec]))
    return found


def _setup_script(kinds: tuple[str, ...], ranges: list[tuple[int, int]]) -> str:
    lines = [f"cd {DEBUGFS}"]
    for k in kinds:
        d = ATTRS[k]
        lines += [f"echo 0 > {d}/probability", f"echo 0 > {d}/verbose"]
        if k in ("slab", "page"):
            lines.append(f"echo N > {d}/ignore-gfp-wait")
        if k == "page":
            lines += [f"echo N > {d}/ignore-gfp-highmem", f"echo 0 > {d}/min-order"]
    lines.append(f"echo {' '.join(f'{a:x} {b:x}' for a, b in ranges)} > {CTL}/ranges")
    lines.append(f"echo {sum(KINDS[k] for k in kinds)} > {CTL}/kinds")
    if "function" in kinds:
        lines += [
            f"echo - > {CTL}/functions",
            "for f in $(cut -f1 error_injection/list); do case $f in "
            "__x64_sys_*|__ia32_sys_*|__se_sys_*|__do_sys_*|sys_*|compat_sys_*|__ia32_compat*"
            "|should_failslab|should_fail_alloc_page) continue;; esac; "
            f"echo $f > fail_function/inject 2>/dev/null && echo $f > {CTL}/functions; done",
        ]
    return "\n".join(lines)


def setup(guest: Guest, kinds: tuple[str, ...]) -> None:
    """Prepare a started guest: fault attributes and the helper's target and kinds."""
    ranges = _ranges(guest)
    if not ranges:
        raise KguestError(
            "fault injection: no text of the project's modules found in the guest",
            f"are they loaded? (console log {guest.log.path})",
        )
    r = guest.run(_setup_script(kinds, ranges), 60)
    if r.status != 0:
        raise KguestError(
            f"preparing fault injection in the guest failed: {r.output[-800:]}",
            f"is {HELPER} loaded? (dmesg in the console log {guest.log.path})",
        )


def arm(guest: Guest, n: int, kmemleak: bool) -> None:
    """Fail the ``n``-th counted call from now on (0: count only)."""
    clear = f"; [ -w {DEBUGFS}/kmemleak ] && echo clear > {DEBUGFS}/kmemleak" if kmemleak else ""
    guest.check(f"echo {n} > {CTL}/nth{clear}", 60)


@dataclasses.dataclass(frozen=True)
class Injection:
    count: int  # calls counted since armed
    kind: str  # the kind of the failed call, "" when none failed
    stack: str  # its stack, one "func+0x../0x.. [mod]" per line


def state(guest: Guest) -> Injection:
    r = guest.check(f"cat {CTL}/count; cat {CTL}/injected", 60)
    lines = r.output.splitlines()
    count = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
    kind = lines[1].strip() if len(lines) > 1 else "none"
    return Injection(count, "" if kind == "none" else kind, "\n".join(lines[2:]))


def call_site(stack: str, modules: set[str]) -> tuple[str, str, int] | None:
    """(module, function, offset) of the innermost frame of one of ``modules``."""
    for m in re.finditer(
        r"([A-Za-z_][A-Za-z0-9_.]*)\+0x([0-9a-f]+)/0x[0-9a-f]+ \[([A-Za-z0-9_-]+)\]", stack
    ):
        if m.group(3).replace("-", "_") in modules:
            return m.group(3), m.group(1), int(m.group(2), 16)
    return None


def kmemleak_report(guest: Guest, ended: float) -> str:
    """kmemleak's report of objects leaked since arm() ("" when none, or no kmemleak)."""
    wait = KMEMLEAK_AGE + 0.5 - (time.monotonic() - ended)
    pause = f"sleep {wait:.1f}; " if wait > 0 else ""
    r = guest.run(
        f"k={DEBUGFS}/kmemleak; [ -w $k ] || exit 0; {pause}echo scan > $k; echo scan > $k; cat $k",
        300,
    )
    return r.output.strip() if "unreferenced object" in r.output else ""


# --- verdicts -----------------------------------------------------------------------------


HANDLED = "handled"
TEST_FAILURE = "test failure"
KERNEL_REPORT = "kernel report"
LEAK = "leak"


@dataclasses.dataclass(frozen=True)
class Verdict:
    what: str  # HANDLED, TEST_FAILURE, KERNEL_REPORT or LEAK
    detail: str

    @property
    def ok(self) -> bool:
        return self.what == HANDLED


def judge(run: TestRun, test_verdict: Outcome, accept: tuple[str, ...], leak: str) -> Verdict:
    """One swept run's verdict: kernel trouble first, then leaks, then the test's result
    (a failure naming an accepted errno counts as handled)."""
    if run.died or run.trouble:
        lines = [ln for e in run.trouble.excerpts for ln in e.splitlines()]
        lines += run.died.splitlines()
        first = next(
            (_TS_RX.sub("", ln).strip() for ln in lines if TROUBLE_RX.search(ln)),
            "the guest died" if run.died else "taint",
        )
        return Verdict(KERNEL_REPORT, first)
    if leak:
        return Verdict(LEAK, leak.splitlines()[0])
    if test_verdict is Outcome.PASS:
        return Verdict(HANDLED, "passed")
    assert run.result is not None
    for name in accept:
        if expect_errno(run.result.output, run.result.status, name).outcome is Outcome.PASS:
            return Verdict(HANDLED, f"failed with {name} (accepted)")
    return Verdict(TEST_FAILURE, f"exit status {run.result.status}")


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of the sweep's table."""

    test: str
    kind: str
    n: int
    site: str
    verdict: str
    detail: str


def table(rows: list[Row]) -> list[str]:
    if not rows:
        return []
    w_test = max(len(r.test) for r in rows)
    w_site = max([len(r.site) for r in rows] + [4])
    out = [f"{'test':<{w_test}}  {'kind':<8} {'N':>4}  {'site':<{w_site}}  verdict"]
    for r in rows:
        out.append(
            f"{r.test:<{w_test}}  {r.kind:<8} {r.n:>4}  {r.site:<{w_site}}  {r.verdict}"
            + (f": {r.detail}" if r.detail and r.verdict != HANDLED else "")
        )
    return out
