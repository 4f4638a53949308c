"""Coverage: what a profiled build records, how collections merge, what the reports say.

The guest's part (counters in debugfs) is replaced here by a host program built the
way kguest builds a module (in a mirror, ``-ffile-prefix-map`` back to the project),
whose .gcda files are laid out as collections from guests are."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kguest import coverage, extbuild
from kguest.config import from_table
from kguest.errors import ConfigError
from kguest.kernels import Kernel, kconfig

PROG = """\
int pick(int x)
{
	if (x > 1)
		return 1;
	return 2;
}

int main(int argc, char **argv)
{
	(void)argv;
	return pick(argc) == 1 ? 0 : 0;
}
"""


def _collection(run: Path, mirror: Path, name: str) -> None:
    """Move the program's counters into a collection, as Harvester.collect lays them out."""
    dest = run / "harvests" / name / mirror.relative_to("/")
    dest.mkdir(parents=True)
    for gcda in mirror.glob("*.gcda"):
        shutil.move(gcda, dest / gcda.name)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_collections_merge_into_the_project_paths(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "kmod").mkdir(parents=True)
    (root / "kmod/prog.c").write_text(PROG)
    cfg = from_table(root, {"modules": ["kmod/prog.ko"]})
    kernel = Kernel("k", tmp_path / "vmlinuz", tmp_path, "1.0-test")
    mirror = coverage.mirror_of(cfg, kernel, root / "kmod")
    extbuild.mirror_sources(root / "kmod", mirror)
    # where gcc runs (a kernel's directory for a module; here the mirror)
    (mirror.parent / ".kdir").write_text(str(mirror))
    flags = coverage.profile_vars(root / "kmod", mirror)["KCFLAGS"]
    exe = mirror / "prog"
    gcc = ["gcc", "-fprofile-arcs", "-ftest-coverage", *flags.split()]
    subprocess.run(
        [*gcc, "-o", str(exe), str(mirror / "prog.c")],
        check=True,
        cwd=mirror,
    )
    run = tmp_path / "run"
    subprocess.run([str(exe)], check=True)  # pick(1): the else branch
    _collection(run, mirror, "w1-1")
    subprocess.run([str(exe), "a", "b"], check=True)  # pick(3): the if branch
    _collection(run, mirror, "w2-1")
    rep = coverage.report(cfg, run, tmp_path / "out", print)
    assert rep is not None and rep.collections == 2
    (f,) = rep.files
    assert f.path == "kmod/prog.c"  # the project's path, not the mirror's
    assert f.lines == f.lines_hit > 0  # both branches: only the merge of both covers all
    trace = rep.tracefile.read_text()
    assert f"SF:{root}/kmod/prog.c" in trace and str(mirror) not in trace
    totals = dict(re.findall(r"^(LH|LF|BRH|BRF):(\d+)$", trace, re.M))
    assert (f.lines_hit, f.lines, f.branches_hit, f.branches) == tuple(
        int(totals[k]) for k in ("LH", "LF", "BRH", "BRF")
    )
    assert f.line().startswith(f"kmod/prog.c: lines {f.lines_hit}/{f.lines} (100.0 %)")
    assert rep.html.is_file() and "prog.c" in rep.cobertura.read_text()


def test_nothing_collected(tmp_path: Path) -> None:
    cfg = from_table(tmp_path, {})
    assert coverage.report(cfg, tmp_path / "run", tmp_path / "out", print) is None


def test_a_kernel_without_gcov_is_one_line(tmp_path: Path) -> None:
    kdir = tmp_path / "kdir"
    kdir.mkdir()
    (kdir / ".config").write_text("CONFIG_DEBUG_FS=y\n# CONFIG_GCOV_KERNEL is not set\n")
    k = Kernel("plain", tmp_path / "vmlinuz", kdir, "6.1.0-x")
    with pytest.raises(ConfigError) as ei:
        coverage.check_kernel(k)
    assert ei.value.message == (
        "coverage needs a kernel with CONFIG_GCOV_KERNEL; kernel plain (6.1.0-x) has not"
    )
    assert "--kernel" in ei.value.hint
    (kdir / ".config").write_text("CONFIG_DEBUG_FS=y\nCONFIG_GCOV_KERNEL=y\n")
    kconfig._read.cache_clear()
    coverage.check_kernel(k)


def test_mirror_leaves_products_and_drops_stale(tmp_path: Path) -> None:
    src, mirror = tmp_path / "src", tmp_path / "mirror"
    (src / "include").mkdir(parents=True)
    (src / "a.c").write_text("x")
    (src / "a.o").write_text("obj")
    (src / "include/a.h").write_text("h")
    extbuild.mirror_sources(src, mirror)
    assert sorted(p.name for p in mirror.rglob("*") if p.is_file()) == ["a.c", "a.h"]
    (mirror / "a.o").write_text("kept")
    (src / "include/a.h").unlink()
    extbuild.mirror_sources(src, mirror)
    assert sorted(p.name for p in mirror.rglob("*") if p.is_file()) == ["a.c", "a.o"]
