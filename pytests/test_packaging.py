"""What a user of sfork gets from packaging works, from outside the tree.

* ``make install PREFIX=<tmp>`` puts every public header, both libraries, sfork.pc and
  both man pages under the prefix; a program built with ``pkg-config --cflags --libs
  sfork`` (and -static, for the busybox guest) against that prefix, and the seed's own
  example, run in a guest.
* DKMS: ``dkms add/build/install`` of kmod/ against the installed headers of the guest
  kernel, with the source, DKMS and install trees in a temporary directory (the
  system's /usr/src, /var/lib/dkms and /lib/modules are not touched; ``--no-depmod``,
  because dkms would otherwise run ``depmod -a`` on the system's /lib/modules; dkms
  signs with its own key, /var/lib/dkms/mok.key, which it creates if missing).  The
  guest gets that install tree's module under /lib/modules/$KVER, indexed by
  ``depmod -b``, and no other sfork.ko: ``modprobe sfork`` must load it and create
  /dev/sfork.
* man/sfork.3 and man/sfork.4 pass ``mandoc -Tlint -W warning``.

One guest (busybox initramfs without the project's module, plus a second archive
with the DKMS tree and the two programs) serves all guest checks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestkit import (
    ROOT,
    add_module_tree,
    boot_with_overlay,
    copy_kmod,
    provisioner,
    stage_file,
)

from kguest.files import file_lock
from kguest.guest import Guest
from kguest.image import is_dynamic_elf
from kguest.kernels import Kernel
from kguest.provision import Provisioner

DATA = Path(__file__).resolve().parent / "data"
SEED = ROOT.parent / "shared" / "seed" / "000_ce7b340c52974a87.txt"
GUEST_BIN = "/opt/pkgtest"


def run(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    assert r.returncode == 0, f"`{shlex.join(cmd)}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def prov(pytestconfig: pytest.Config) -> Provisioner:
    return provisioner(pytestconfig, "pytests-packaging")


@pytest.fixture(scope="module")
def kernel(prov: Provisioner) -> Kernel:
    return prov.kernel()


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory, prov: Provisioner) -> Path:
    """``make install PREFIX=<tmp>`` (it builds first: under kguest's build lock, so it
    does not race a guest session's build of the same tree)."""
    p = tmp_path_factory.mktemp("install") / "prefix"
    env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "MAKEFLAGS")}
    with file_lock(prov.cfg.build_path / "build.lock"):
        run(["make", "-C", str(ROOT), "install", f"PREFIX={p}"], env=env)
    return p


def pkg_config(prefix: Path, *args: str) -> list[str]:
    env = {**os.environ, "PKG_CONFIG_PATH": str(prefix / "lib/pkgconfig")}
    return run(["pkg-config", *args, "sfork"], env=env).split()


@pytest.fixture(scope="module")
def programs(prefix: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sfork_hello.c and the seed's example, built against the installed library only."""
    out = tmp_path_factory.mktemp("programs")
    flags = pkg_config(prefix, "--cflags", "--libs")
    built = {}
    for src, extra in (("sfork_hello.c", ["-Wall", "-Wextra", "-Werror"]), ("seed_example.c", [])):
        exe = out / src.removesuffix(".c")
        run(["cc", "-O2", *extra, "-o", str(exe), str(DATA / src), *flags, "-static"], cwd=out)
        built[exe.name] = exe
    return built


@dataclasses.dataclass(frozen=True)
class Dkms:
    ko: Path  # the installed module, in the temporary install tree
    rel: str  # its path relative to <installtree>/<KVER>
    system_before: tuple[str, ...]  # system_state() before dkms ran
    system_after: tuple[str, ...]


def system_state(kernel: Kernel, version: str) -> tuple[str, ...]:
    """What dkms would change on the system: sfork modules and the index in the kernel's
    module tree, the default source and DKMS trees."""
    mods = kernel.modules_dir
    dep = mods / "modules.dep"
    return (
        *sorted(str(p) for p in mods.rglob("sfork.ko*")),
        f"modules.dep {dep.stat().st_mtime_ns if dep.exists() else '-'}",
        f"/usr/src/sfork-{version} {Path(f'/usr/src/sfork-{version}').exists()}",
        f"/var/lib/dkms/sfork {Path('/var/lib/dkms/sfork').exists()}",
    )


@pytest.fixture(scope="module")
def dkms_module(kernel: Kernel, tmp_path_factory: pytest.TempPathFactory) -> Dkms:
    """kmod/ through dkms add, build and install into temporary trees."""
    t = tmp_path_factory.mktemp("dkms")
    src = copy_kmod(t / "kmod")
    conf = (src / "dkms.conf").read_text()
    m = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?', conf, re.M)
    assert m is not None, "kmod/dkms.conf has no PACKAGE_VERSION"
    version = m.group(1)
    before = system_state(kernel, version)
    install = t / "installtree"
    (install / kernel.version).mkdir(parents=True)
    (t / "sourcetree").mkdir()
    (t / "dkmstree").mkdir()
    trees = [
        f"--sourcetree={t / 'sourcetree'}",
        f"--dkmstree={t / 'dkmstree'}",
        f"--installtree={install}",
    ]
    mv = ["-m", "sfork", "-v", version, "-k", kernel.version]
    run(["dkms", "add", str(src), *trees], cwd=t)
    run(["dkms", "build", *mv, f"--kernelsourcedir={kernel.kdir}", *trees], cwd=t)
    run(["dkms", "install", *mv, "--no-depmod", *trees], cwd=t)
    status = run(["dkms", "status", "-m", "sfork", *trees], cwd=t)
    assert re.search(
        rf"sfork/{re.escape(version)}, {re.escape(kernel.version)}.*installed", status
    ), status
    kos = sorted((install / kernel.version).rglob("sfork.ko*"))
    assert len(kos) == 1, f"dkms installed {kos}"
    ko = kos[0]
    assert ko.suffix == ".ko", f"{ko}: compressed modules are not handled here"
    magic = run(["modinfo", "-F", "vermagic", str(ko)]).split()
    assert magic[:1] == [kernel.version], magic
    return Dkms(
        ko,
        str(ko.relative_to(install / kernel.version)),
        before,
        system_state(kernel, version),
    )


@pytest.fixture(scope="module")
def guest(
    prov: Provisioner,
    kernel: Kernel,
    programs: dict[str, Path],
    dkms_module: Dkms,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Guest]:
    t = tmp_path_factory.mktemp("packaging-guest")
    stage = t / "stage"
    for name, exe in programs.items():
        stage_file(stage, f"{GUEST_BIN}/{name}", exe)
    add_module_tree(stage, kernel, {dkms_module.rel: dkms_module.ko})
    with boot_with_overlay(prov, stage) as g:
        yield g


# --- make install and pkg-config ------------------------------------------------------


def test_make_install_installs_everything(prefix: Path) -> None:
    """Every public header (libsfork/include/*.h and the uapi <linux/sfork.h> they
    include), libsfork.a, libsfork.so (-> its SONAME file), sfork.pc and both man
    pages are installed under PREFIX, the man pages as in the tree."""
    headers = sorted(p.name for p in (ROOT / "libsfork/include").glob("*.h"))
    assert "sfork.h" in headers
    expected = [
        *(f"include/{h}" for h in headers),
        "include/linux/sfork.h",
        "lib/libsfork.a",
        "lib/libsfork.so",
        "lib/pkgconfig/sfork.pc",
        "share/man/man3/sfork.3",
        "share/man/man4/sfork.4",
    ]
    missing = [f for f in expected if not (prefix / f).is_file()]
    assert not missing, f"not installed under {prefix}: {missing}"
    dyn = run(["readelf", "-d", str(prefix / "lib/libsfork.so")])
    soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dyn)
    assert soname is not None, dyn
    assert (prefix / "lib" / soname.group(1)).is_file(), f"{soname.group(1)} is not installed"
    symbols = run(["nm", "-g", "--defined-only", str(prefix / "lib/libsfork.a")])
    assert re.search(r" T sfork$", symbols, re.M), "libsfork.a does not define sfork"
    for page in ("sfork.3", "sfork.4"):
        sect = page[-1]
        assert (prefix / f"share/man/man{sect}" / page).read_bytes() == (
            ROOT / "man" / page
        ).read_bytes()


def test_pkg_config_points_at_the_prefix(prefix: Path) -> None:
    """sfork.pc installed with PREFIX=<tmp> gives -I<tmp>/include and -L<tmp>/lib
    -lsfork, not another prefix's (e.g. the default /usr/local of an earlier build)."""
    cflags = pkg_config(prefix, "--cflags")
    libs = pkg_config(prefix, "--libs")
    incs = {Path(f[2:]).resolve() for f in cflags if f.startswith("-I")}
    libdirs = {Path(f[2:]).resolve() for f in libs if f.startswith("-L")}
    assert (prefix / "include").resolve() in incs, f"pkg-config --cflags: {cflags}"
    assert (prefix / "lib").resolve() in libdirs, f"pkg-config --libs: {libs}"
    assert "-lsfork" in libs


def test_programs_build_against_the_prefix(programs: dict[str, Path]) -> None:
    """sfork_hello.c (-Wall -Wextra -Werror) and the seed's example compile and link
    statically with nothing but ``pkg-config --cflags --libs sfork`` of the prefix."""
    assert sorted(programs) == ["seed_example", "sfork_hello"]
    for exe in programs.values():
        assert not is_dynamic_elf(exe), f"{exe} needs a dynamic loader"


def test_seed_example_is_the_seeds_text() -> None:
    """pytests/data/seed_example.c holds the seed's example verbatim (plus includes)."""
    if not SEED.is_file():
        pytest.skip(f"{SEED} is not on this machine")
    block = next(b for b in SEED.read_text().split("```") if "int main()" in b)
    assert block.strip("\n") in (DATA / "seed_example.c").read_text()


# --- DKMS -------------------------------------------------------------------------------


def test_dkms_install_writes_only_its_trees(dkms_module: Dkms) -> None:
    """dkms add/build/install succeeds against the installed headers and installs
    sfork.ko into the temporary install tree only: the system's module tree, its
    modules.dep and the default DKMS trees are as they were."""
    assert dkms_module.ko.is_file() and dkms_module.rel.endswith("sfork.ko")
    assert dkms_module.system_after == dkms_module.system_before


# --- in the guest -----------------------------------------------------------------------


@pytest.mark.guest
def test_in_a_guest(guest: Guest, dkms_module: Dkms, kernel: Kernel) -> None:
    """In a guest whose only sfork.ko is the DKMS-installed one: ``modprobe sfork``
    loads it and /dev/sfork appears; then the pkg-config-built program passes (the
    child reads what the parent wrote) and the seed's example exits 0 after creating
    exactly one region (the module's regions_created counter)."""
    found = guest.check("find /lib/modules -name 'sfork.ko*'", 30).output.split()
    assert found == [f"/lib/modules/{kernel.version}/{dkms_module.rel}"], found
    digest = guest.check(f"sha256sum {found[0]}", 60).output.split()[0]
    assert digest == hashlib.sha256(dkms_module.ko.read_bytes()).hexdigest()
    r = guest.run("grep -c '^sfork ' /proc/modules; test -e /dev/sfork", 30)
    assert r.output.split() == ["0"] and r.status != 0, f"sfork loaded before modprobe: {r.output}"

    r = guest.run("modprobe sfork && test -c /dev/sfork && grep '^sfork ' /proc/modules", 60)
    assert r.status == 0, f"modprobe sfork (the DKMS module):\n{r.output}"

    r = guest.run(f"{GUEST_BIN}/sfork_hello", 60)
    assert r.status == 0 and "the child read" in r.output, f"exit {r.status}:\n{r.output}"

    def created() -> int:
        stats = guest.check("cat /sys/kernel/debug/sfork/stats", 30).output
        m = re.search(r"^regions_created (\d+)$", stats, re.M)
        assert m is not None, stats
        return int(m.group(1))

    before = created()
    r = guest.run(f"{GUEST_BIN}/seed_example; echo seed-exit $?; sleep 1", 60)
    assert "seed-exit 0" in r.output, r.output
    assert created() == before + 1, "the seed's example did not create a region"


# --- man pages ---------------------------------------------------------------------------


def test_man_pages_lint_clean() -> None:
    """mandoc -Tlint -W warning reports nothing for man/sfork.3 and man/sfork.4."""
    r = subprocess.run(
        ["mandoc", "-Tlint", "-W", "warning", "man/sfork.3", "man/sfork.4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stdout + r.stderr) == (0, ""), r.stdout + r.stderr
