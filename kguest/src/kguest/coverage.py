"""Line and branch coverage of the project's modules, measured in the guests.

* **Build**: each module directory is built again as an external module in a
  mirror (extbuild.py) with ``GCOV_PROFILE=y``; ``-ffile-prefix-map`` makes the
  sources the project's own paths (kmod/sfork.c), in the counters' notes and in
  the debug info alike.  The kernel needs ``CONFIG_GCOV_KERNEL``.
* **Collect** (:class:`Harvester`): the counters live in the guest's kernel, under
  ``/sys/kernel/debug/gcov/<mirror>/``; they are copied out before anything
  would lose them: before a guest is thrown away (after kernel trouble, after an
  isolated test), replaced by another or powered off.  A guest that died (a
  panic) takes its counts since its start with it.
* **Boot-time counts once**: a guest restored from a snapshot carries the
  counters the snapshot had (the module's init).  The first start of each guest
  configuration in a run keeps them; every start then resets the counters, so a
  hundred restores do not count the init a hundred times.
* **Merge and report** (:func:`report`, in the controller once every worker is
  done): the collections are added up with ``gcov-tool merge`` per kernel build,
  then ``gcovr`` writes an lcov tracefile, an HTML report, Cobertura XML and a
  JSON summary, from which the per-file line/branch summary is printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from pathlib import Path

from . import extbuild
from .config import ProjectConfig
from .errors import CommandTimeout, ConfigError, GuestDied, KguestError
from .guest import Guest
from .kernels import Kernel, kconfig
from .progress import Say, step

GCOV_ROOT = "/sys/kernel/debug/gcov"
HINT = (
    "use a kernel built with CONFIG_GCOV_KERNEL=y and CONFIG_DEBUG_FS=y "
    "(--kernel NAME of such a kernel, or --kernel VMLINUZ --kdir DIR)"
)


def coverage_dir(cfg: ProjectConfig) -> Path:
    return cfg.build_path / "coverage"


def module_dirs(cfg: ProjectConfig) -> list[Path]:
    """The directories of the project's modules (each built as one external module dir)."""
    return list(dict.fromkeys(p.parent for p in cfg.module_paths()))


def mirror_of(cfg: ProjectConfig, kernel: Kernel, src: Path) -> Path:
    rel = (
        src.resolve().relative_to(cfg.root)
        if src.resolve().is_relative_to(cfg.root)
        else Path(src.name)
    )
    return coverage_dir(cfg) / "build" / kernel.version / rel


def profile_vars(src: Path, mirror: Path) -> dict[str, str]:
    """The make variables of a profiled build of ``src`` in ``mirror`` (with line tables,
    as kguest's own builds have, for the file:line of reports and sweeps)."""
    return {"GCOV_PROFILE": "y", "KCFLAGS": f"-g -ffile-prefix-map={mirror}={src.resolve()}"}


def check_kernel(kernel: Kernel) -> None:
    kconfig.require(kernel, ["GCOV_KERNEL", "DEBUG_FS"], "coverage", HINT)


def build_profiled(cfg: ProjectConfig, kernel: Kernel, say: Say, session: str) -> list[Path]:
    """The project's module directories built with gcov profiling for ``kernel``: every
    module they build (the configured ones and any other, e.g. KUnit test modules)."""
    check_kernel(kernel)
    built: list[Path] = []
    # gcc ran in the kernel's directory: gcov resolves the kernel headers' paths from it
    kdir_note = coverage_dir(cfg) / "build" / kernel.version / ".kdir"
    kdir_note.parent.mkdir(parents=True, exist_ok=True)
    kdir_note.write_text(str(kernel.kdir))
    for src in module_dirs(cfg):
        mirror = mirror_of(cfg, kernel, src)
        log = cfg.build_path / "logs" / f"coverage-build-{kernel.name}-{src.name}.log"
        built += extbuild.build_external(
            src, mirror, kernel, profile_vars(src, mirror), log, say, session
        )
    return built


def profiled_modules(cfg: ProjectConfig, built: Iterable[Path]) -> list[Path]:
    """The configured modules, in their order, from a profiled build's outputs."""
    by_name = {p.name: p for p in built}
    out = []
    for m in cfg.module_paths():
        if m.name not in by_name:
            raise ConfigError(
                f"{cfg.source}: modules: {m.name} was not built by the profiled build of "
                f"{m.parent}",
                "its Kbuild must build it (obj-m)",
            )
        out.append(by_name[m.name])
    return out


# --- in the guest -------------------------------------------------------------------------


def _pack_script(roots: Iterable[Path], tgz: str) -> str:
    """Copy the .gcda files under ``roots`` (debugfs files read as 0 bytes by tar) into a
    staging tree, then pack it."""
    stage = "/tmp/.kguest-gcov"
    dirs = " ".join(shlex.quote(f"{GCOV_ROOT}{r}") for r in roots)
    return (
        f"rm -rf {stage} {tgz}; mkdir -p {stage}; "
        f"for d in {dirs}; do [ -d $d ] || continue; "
        f'find $d -name "*.gcda" | while read -r f; do r=${{f#{GCOV_ROOT}}}; '
        f'mkdir -p "{stage}${{r%/*}}"; cat "$f" > "{stage}$r"; done; done; '
        f"tar -czf {tgz} -C {stage} . && rm -rf {stage}"
    )


def run_dir(cfg: ProjectConfig, session: str) -> Path:
    """Where one run's collections go (every worker's)."""
    return coverage_dir(cfg) / "runs" / session


@dataclasses.dataclass
class Harvester:
    """Copies the counters of the project's modules out of guests into ``out`` (one
    directory per collection), for one process (an xdist worker, the command)."""

    cfg: ProjectConfig
    out: Path
    worker: str
    collected: int = 0
    lost: list[str] = dataclasses.field(default_factory=list)

    def _key(self, guest: Guest) -> str:
        s = guest.spec
        text = f"{s.kernel.version}\0{s.initrd}\0{s.append}\0{s.memory_mib}\0{s.cpus}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def started(self, guest: Guest) -> None:
        """A guest has started: the first start of its configuration in this run keeps
        the counts it came with (boot, module init); then the counters start from 0."""
        marker = self.out / f"baseline-{self._key(guest)}"
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            self.collect(guest, "baseline")
        guest.run(f"echo 1 > {GCOV_ROOT}/reset", 30)

    def collect(self, guest: Guest, why: str = "") -> None:
        """Copy the counters out of a running guest (a guest that cannot answer loses them,
        which is recorded)."""
        if not guest.alive or guest.console is None or not guest.console.sync(10.0):
            self.lost.append(f"{guest.spec.label()}: {why or 'stopped'}: the guest did not answer")
            return
        tgz = "/tmp/.kguest-gcov.tgz"
        try:
            r = guest.run(_pack_script([coverage_dir(self.cfg) / "build"], tgz), 120)
            if r.status != 0:
                raise KguestError(f"packing the counters failed: {r.output[-300:]}")
            data = guest.read_file(tgz)
            guest.run(f"rm -f {tgz}", 30)
        except (GuestDied, CommandTimeout, KguestError) as e:
            self.lost.append(f"{guest.spec.label()}: {str(e).splitlines()[0]}")
            return
        self.collected += 1
        dest = self.out / "harvests" / f"{self.worker}-{os.getpid()}-{self.collected}"
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            tar.extractall(dest, filter="data")

    def stopping(self, guest: Guest) -> None:
        """A guest is about to be stopped or thrown away."""
        self.collect(guest, "stopping")


# --- merge and report (host) ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FileSummary:
    path: str
    lines: int
    lines_hit: int
    branches: int
    branches_hit: int

    @staticmethod
    def pct(hit: int, total: int) -> str:
        return f"{100.0 * hit / total:.1f} %" if total else "-"

    def line(self) -> str:
        return (
            f"{self.path}: lines {self.lines_hit}/{self.lines} "
            f"({self.pct(self.lines_hit, self.lines)}), branches {self.branches_hit}/"
            f"{self.branches} ({self.pct(self.branches_hit, self.branches)})"
        )


@dataclasses.dataclass(frozen=True)
class Report:
    files: tuple[FileSummary, ...]
    tracefile: Path
    html: Path
    cobertura: Path
    collections: int

    def lines(self) -> list[str]:
        return [f.line() for f in self.files]


def _gcov_tool() -> str:
    for name in ("gcov-tool", "gcov-tool-12"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("gcov-tool not found", "apt-get install gcc (it ships gcov-tool)")


def _merge(harvests: list[Path], dest: Path) -> None:
    """Add up the counters of ``harvests`` (trees of .gcda files) into ``dest``."""
    tool = _gcov_tool()
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(harvests[0], dest)
    for h in harvests[1:]:
        tmp = dest.with_name(dest.name + ".next")
        shutil.rmtree(tmp, ignore_errors=True)
        r = subprocess.run(
            [tool, "merge", "-o", str(tmp), str(dest), str(h)], capture_output=True, text=True
        )
        if r.returncode != 0:
            raise KguestError(f"gcov-tool merge {h} failed: {r.stderr[-500:]}", "see its error")
        shutil.rmtree(dest)
        tmp.rename(dest)


def _gcovr() -> list[str]:
    here = Path(sys.executable).parent / "gcovr"
    if here.exists():
        return [str(here)]
    found = shutil.which("gcovr")
    if not found:
        raise ConfigError("gcovr not found", "pip install 'kguest[coverage]' (gcovr) in the venv")
    return [found]


def _gcovr_json(cfg: ProjectConfig, view: Path, kdir: Path, out: Path) -> None:
    """gcovr's JSON of one kernel's build: gcov runs where gcc ran (the kernel's directory)."""
    cmd = [
        *_gcovr(),
        "--root",
        str(cfg.root),
        "--object-directory",
        str(kdir),
        "--json",
        str(out),
        str(view),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=view)
    if r.returncode != 0:
        raise KguestError(
            f"gcovr failed (exit {r.returncode}): {r.stderr[-1500:]}", f"rerun: {' '.join(cmd)}"
        )


def report(cfg: ProjectConfig, run: Path, out: Path, say: Say) -> Report | None:
    """Merge every collection under ``run`` and write the reports into ``out``; None when
    nothing was collected."""
    harvests = sorted(p for p in (run / "harvests").glob("*") if p.is_dir())
    if not harvests:
        return None
    builds = coverage_dir(cfg) / "build"
    with step(say, f"merging {len(harvests)} coverage collections"):
        merged = run / "merged"
        _merge(harvests, merged)
        with tempfile.TemporaryDirectory(prefix="kguest-gcov-") as tmp:
            # per kernel build: every .gcda next to a link to its .gcno, then gcovr's JSON
            views: dict[str, Path] = {}
            for gcda in merged.rglob("*.gcda"):
                built = Path("/") / gcda.relative_to(merged)
                if not built.with_suffix(".gcno").is_file() or not built.is_relative_to(builds):
                    continue
                kver = built.relative_to(builds).parts[0]
                view = Path(tmp) / "views" / kver
                dest = view / gcda.relative_to(merged)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(gcda, dest)
                dest.with_suffix(".gcno").symlink_to(built.with_suffix(".gcno"))
                views[kver] = view
            if not views:
                return None
            traces = []
            for kver, view in sorted(views.items()):
                kdir = Path((builds / kver / ".kdir").read_text().strip())
                traces.append(Path(tmp) / f"{kver}.json")
                _gcovr_json(cfg, view, kdir, traces[-1])
            out.mkdir(parents=True, exist_ok=True)
            (out / "html").mkdir(exist_ok=True)
            summary = out / "summary.json"
            cmd = [*_gcovr(), "--root", str(cfg.root)]
            for t in traces:
                cmd += ["--add-tracefile", str(t)]
            cmd += [
                "--lcov",
                str(out / "coverage.info"),
                "--cobertura",
                str(out / "cobertura.xml"),
                "--html-details",
                str(out / "html" / "index.html"),
                "--json-summary",
                str(summary),
                "--json-summary-pretty",
            ]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=cfg.root)
            if r.returncode != 0:
                raise KguestError(
                    f"gcovr failed (exit {r.returncode}): {r.stderr[-1500:]}",
                    f"rerun: {' '.join(cmd)}",
                )
    data = json.loads(summary.read_text())
    files = tuple(
        FileSummary(
            f["filename"],
            f["line_total"],
            f["line_covered"],
            f["branch_total"],
            f["branch_covered"],
        )
        for f in data["files"]
    )
    return Report(
        files,
        out / "coverage.info",
        out / "html" / "index.html",
        out / "cobertura.xml",
        len(harvests),
    )
