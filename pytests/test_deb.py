"""sfork's Debian packages (`make deb`: debian/, scripts/build-deb) as a user gets them.

* ``make deb`` builds sfork-dkms, libsfork1, libsfork-dev and the source package with
  debhelper and dh_dkms; lintian reports no error and no warning; ``git status`` is
  what it was before.  Without debhelper it says in one line what to install.
* The packages hold what they promise, at libsfork/Makefile's VERSION (the one place
  the packages' version comes from; kmod/dkms.conf must agree, for DKMS from the tree).
* On a fresh machine: a guest boots a minimal Debian 12 system running Debian's kernel
  with its headers, a C compiler and pkg-config, but no dkms (scripts/deb-testroot,
  built once and cached outside the checkout, in ~/.cache/sfork/deb-testroot/, which
  ``make test`` does before the suite; QEMU runs it with ``-snapshot``, so
  the image and the host are never written).  There ``apt install`` of the three
  files (pytests/data/deb_guest_check.sh) resolves dkms from the archive, DKMS builds
  the module for the running kernel in the postinst, and the postinst loads it;
  /dev/sfork appears; README.md's example (pytests/data/readme_example.c, verbatim)
  compiles with ``cc prog.c $(pkg-config --cflags --libs sfork)``, links libsfork.so.1
  and creates a region, as root and as ``nobody``.  ``apt remove`` unloads the module
  and removes it, its DKMS tree and its index entry, and dpkg keeps no record of the
  packages (they have no conffiles: nothing is left for ``apt purge``).

A missing prerequisite (the Debian tools, root, QEMU, a Debian kernel with headers)
skips these tests, and fails them under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = DATA / "readme_example.c"
PACKAGES = ("sfork-dkms", "libsfork1", "libsfork-dev")
TOOLS = {
    "dpkg-buildpackage": "dpkg-dev",
    "dh": "debhelper",
    "dh_dkms": "dh-dkms",
    "lintian": "lintian",
}
# The guest's run, boot included, under TCG on a busy two-core host.
GUEST_TIMEOUT = 1800
TESTROOT_TIMEOUT = 3600


def prerequisite(ok: bool, what: str) -> None:
    """Skip when ``what`` is missing; under CI=true a missing prerequisite is a failure."""
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"prerequisite missing under CI=true: {what}")
        pytest.skip(what)


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def check(cmd: list[str]) -> str:
    r = run(cmd)
    assert r.returncode == 0, f"`{' '.join(cmd)}` exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def project_version() -> str:
    m = re.search(r"^VERSION\s*:=\s*(\S+)", (ROOT / "libsfork" / "Makefile").read_text(), re.M)
    assert m is not None, "libsfork/Makefile: no VERSION"
    return m.group(1)


def git_status() -> str:
    return check(["git", "-C", str(ROOT), "status", "--porcelain"])


def tracked(p: Path) -> bool:
    return run(["git", "-C", str(ROOT), "ls-files", "--error-unmatch", str(p)]).returncode == 0


@dataclass(frozen=True)
class Debs:
    out: Path
    version: str
    arch: str
    log: str  # make deb's output
    status_before: str
    status_after: str

    def deb(self, package: str) -> Path:
        arch = "all" if package == "sfork-dkms" else self.arch
        return self.out / f"{package}_{self.version}_{arch}.deb"


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> Debs:
    """``make deb`` with OUT= a temporary directory."""
    for tool, package in TOOLS.items():
        prerequisite(shutil.which(tool) is not None, f"{tool} (Debian package {package})")
    out = tmp_path_factory.mktemp("deb")
    before = git_status()
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    env["OUT"] = str(out)
    r = run(["make", "-C", str(ROOT), "--no-print-directory", "deb"], env=env)
    assert r.returncode == 0, f"make deb exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    arch = check(["dpkg-architecture", "-qDEB_HOST_ARCH"]).strip()
    return Debs(out, project_version(), arch, r.stdout + r.stderr, before, git_status())


def deb_field(deb: Path, field: str) -> str:
    return check(["dpkg-deb", "-f", str(deb), field]).strip()


def deb_files(deb: Path) -> dict[str, str]:
    """Path in the package -> its type letter (``-``, ``d``, ``l``), with `` -> target``
    for a symlink."""
    files = {}
    for line in check(["dpkg-deb", "-c", str(deb)]).splitlines():
        f = line.split(maxsplit=5)
        name, _, target = f[5].partition(" -> ")
        files[name.removeprefix(".").rstrip("/") or "/"] = f[0][0] + (
            f" -> {target}" if target else ""
        )
    return files


def deb_text(deb: Path, path: str) -> str:
    with tempfile.TemporaryDirectory() as t:
        check(["dpkg-deb", "-x", str(deb), t])
        return (Path(t) / path.lstrip("/")).read_text()


# --- without a guest -------------------------------------------------------------------


def test_make_deb_lintian_clean_tree_clean(debs: Debs) -> None:
    """``make deb`` writes the three binary packages, the source package (.dsc, .tar.xz),
    .changes and .buildinfo into OUT and nothing else into the tree (``git status`` as
    before); lintian on the .changes (every package and the source) reports no error
    and no warning."""
    v, a = debs.version, debs.arch
    expected = [debs.deb(p).name for p in PACKAGES]
    expected += [f"sfork_{v}.dsc", f"sfork_{v}.tar.xz", f"sfork_{v}_{a}.changes"]
    expected.append(f"sfork_{v}_{a}.buildinfo")
    missing = [n for n in expected if not (debs.out / n).is_file()]
    assert not missing, f"not in {debs.out}: {missing}\n{debs.log}"
    assert not (debs.out / "work").exists(), "make deb left its staging directory"
    tags = (debs.out / "lintian.txt").read_text()
    findings = [line for line in tags.splitlines() if re.match(r"[EW]: ", line)]
    assert not findings, f"lintian:\n{tags}"
    assert debs.status_after == debs.status_before, (
        f"make deb changed git status:\nbefore:\n{debs.status_before}\nafter:\n{debs.status_after}"
    )


def test_packages_hold_what_they_promise(debs: Debs) -> None:
    """At the project's version: sfork-dkms has kmod/'s sources and dkms.conf under
    /usr/src/sfork-VERSION, the modules-load.d entry and sfork(4), and depends on dkms
    and kmod (its maintainer scripts run modprobe);
    libsfork1 has the SONAME file; libsfork-dev has every public header, libsfork.a,
    libsfork.so, a multiarch sfork.pc and sfork(3), and depends on this libsfork1."""
    v = debs.version
    for p in PACKAGES:
        assert deb_field(debs.deb(p), "Version") == v, p
    dkms = debs.deb("sfork-dkms")
    files = deb_files(dkms)
    src = f"/usr/src/sfork-{v}"
    sources = [
        p.relative_to(ROOT / "kmod").as_posix()
        for p in (ROOT / "kmod").rglob("*")
        if p.is_file() and p.name not in ("dkms.conf", "DESIGN.md") and tracked(p)
    ]
    shipped = [
        f.removeprefix(src + "/") for f, t in files.items() if f.startswith(src + "/") and t == "-"
    ]
    assert sorted(shipped) == sorted([*sources, "dkms.conf"])
    for extra in ("/usr/lib/modules-load.d/sfork.conf", "/usr/share/man/man4/sfork.4.gz"):
        assert files.get(extra) == "-", f"{extra} not in {dkms.name}"
    depends = deb_field(dkms, "Depends")
    assert sorted(re.sub(r" \(.*?\)", "", depends).split(", ")) == ["dkms", "kmod"], depends
    conf = deb_text(dkms, f"{src}/dkms.conf")
    assert re.search(rf'^PACKAGE_VERSION="{re.escape(v)}"$', conf, re.M), conf
    load = deb_text(dkms, "/usr/lib/modules-load.d/sfork.conf")
    assert [w for w in load.splitlines() if not w.startswith("#")] == ["sfork"], load

    multiarch = check(["dpkg-architecture", "-qDEB_HOST_MULTIARCH"]).strip()
    lib = f"/usr/lib/{multiarch}"
    assert deb_files(debs.deb("libsfork1")).get(f"{lib}/libsfork.so.1") == "-"
    dev = debs.deb("libsfork-dev")
    files = deb_files(dev)
    headers = [f"/usr/include/{p.name}" for p in (ROOT / "libsfork/include").glob("*.h")]
    wanted = [*headers, "/usr/include/linux/sfork.h", f"{lib}/libsfork.a"]
    wanted += [f"{lib}/pkgconfig/sfork.pc", "/usr/share/man/man3/sfork.3.gz"]
    for f in wanted:
        assert files.get(f) == "-", f"{f} not in {dev.name}"
    assert files.get(f"{lib}/libsfork.so") == "l -> libsfork.so.1"
    pc = deb_text(dev, f"{lib}/pkgconfig/sfork.pc")
    assert f"libdir=${{prefix}}/lib/{multiarch}" in pc and f"Version: {v}" in pc, pc
    assert deb_field(dev, "Depends") == f"libsfork1 (= {v})"


def test_version_strings_agree() -> None:
    """The packages take their version from libsfork/Makefile's VERSION; kmod/dkms.conf,
    for ``dkms add kmod/`` from the tree, names the same one."""
    conf = (ROOT / "kmod" / "dkms.conf").read_text()
    m = re.search(r'^PACKAGE_VERSION="?([^"\n]+)"?$', conf, re.M)
    assert m is not None, "kmod/dkms.conf has no PACKAGE_VERSION"
    assert m.group(1) == project_version(), "kmod/dkms.conf and libsfork/Makefile disagree"


def test_readme_example_is_verbatim() -> None:
    """pytests/data/readme_example.c is README.md's "Using sfork in your program" code."""
    section = (ROOT / "README.md").read_text().split("## Using sfork in your program", 1)[1]
    m = re.search(r"```c\n(.*?)```", section, re.S)
    assert m is not None, "README.md: no C block under 'Using sfork in your program'"
    assert EXAMPLE.read_text() == m.group(1)


def test_make_deb_names_missing_tools(tmp_path: Path) -> None:
    """Without debhelper and dh-dkms on PATH, ``make deb`` fails with one line naming
    the Debian packages to install, and writes nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "dirname", "dpkg-buildpackage", "lintian"):
        found = shutil.which(tool)
        prerequisite(found is not None, tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    out = tmp_path / "out"
    env = {"PATH": str(bin_dir), "OUT": str(out), "HOME": str(tmp_path)}
    r = run(["make", "-s", "-C", str(ROOT), "--no-print-directory", "deb"], env=env)
    assert r.returncode != 0
    lines = [x for x in r.stderr.splitlines() if not x.startswith("make: ***")]
    assert lines == [
        "make deb: missing Debian packages: debhelper dh-dkms "
        "(apt-get install debhelper dh-dkms, or 'make deps' as root)"
    ], r.stderr
    assert not out.exists()


# --- on a fresh machine: apt install, use, remove ---------------------------------------


def host_sfork_state() -> list[str]:
    """sfork as installed on this host: packages, DKMS tree, sources, modules."""
    r = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package}\n", *PACKAGES])
    found = [line for line in r.stdout.splitlines() if not line.startswith("un ")]
    found += [str(p) for p in (Path("/var/lib/dkms/sfork"),) if p.exists()]
    found += [str(p) for p in Path("/usr/src").glob("sfork-*")]
    found += [str(p) for p in Path("/lib/modules").glob("*/updates/dkms/sfork.ko*")]
    return found


@pytest.fixture(scope="module")
def testroot() -> Path:
    """scripts/deb-testroot's image for the default Debian kernel (built on first use)."""
    prerequisite(os.geteuid() == 0, "root (scripts/deb-testroot: debootstrap, chroot)")
    for tool in ("debootstrap", "mkfs.ext4", "qemu-system-x86_64"):
        prerequisite(shutil.which(tool) is not None, f"{tool} (make deps)")
    kver = run([str(ROOT / "scripts/default-kver")])
    prerequisite(kver.returncode == 0, f"a Debian kernel with headers: {kver.stderr.strip()}")
    r = subprocess.run(
        [str(ROOT / "scripts/deb-testroot"), kver.stdout.strip()],
        capture_output=True,
        text=True,
        timeout=TESTROOT_TIMEOUT,
    )
    assert r.returncode == 0, f"scripts/deb-testroot failed:\n{r.stdout}\n{r.stderr}"
    return Path(r.stdout.strip().splitlines()[-1])


def steps(console: str) -> dict[str, tuple[int, str]]:
    """deb_guest_check.sh's steps: name -> (exit status, output); their durations are
    printed (in the test's captured output)."""
    found = {}
    for m in re.finditer(r"^@@step (\S+)\n(.*?)^@@end \1 (\d+) (\d+)$", console, re.M | re.S):
        found[m.group(1)] = (int(m.group(3)), m.group(2))
        print(f"guest step {m.group(1)}: exit {m.group(3)}, {m.group(4)} s")
    return found


def boot_check(testroot: Path, debs: Debs, work: Path) -> str:
    """Boot the test system with the job disk (the three packages, README's example,
    deb_guest_check.sh as ``run``); the serial console's text."""
    job = work / "job"
    job.mkdir()
    for p in PACKAGES:
        shutil.copy2(debs.deb(p), job)
    shutil.copy2(EXAMPLE, job / "prog.c")
    shutil.copy2(DATA / "deb_guest_check.sh", job / "run")
    job_img = work / "job.img"
    with job_img.open("wb") as f:
        f.truncate(64 << 20)
    check(["mkfs.ext4", "-q", "-F", "-d", str(job), str(job_img)])
    append = (
        "console=ttyS0 root=/dev/vda rw init=/usr/local/sbin/sfork-job-init panic=-1 "
        "quiet loglevel=4 rcupdate.rcu_cpu_stall_timeout=300 watchdog_thresh=60"
    )
    # -snapshot keeps both disks read-only: the guest's writes live and die in QEMU.
    cmd = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-m", "2048"]
    cmd += ["-smp", "2", "-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none"]
    cmd += ["-serial", "stdio", "-snapshot", "-kernel", str(testroot / "vmlinuz")]
    cmd += ["-initrd", str(testroot / "initrd.img"), "-append", append]
    cmd += ["-drive", f"file={testroot / 'root.img'},format=raw,if=virtio"]
    cmd += ["-drive", f"file={job_img},format=raw,if=virtio"]
    log = work / "console.log"
    with log.open("wb") as out:
        try:
            subprocess.run(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=GUEST_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"the guest did not finish in {GUEST_TIMEOUT} s; console: {log}")
    return log.read_bytes().decode(errors="replace").replace("\r\n", "\n")


def field(output: str, key: str) -> str:
    m = re.search(rf"^{re.escape(key)}(?: (.*))?$", output, re.M)
    assert m is not None, f"no '{key}' in:\n{output}"
    return (m.group(1) or "").strip()


def new_packages(apt_output: str) -> set[str]:
    m = re.search(
        r"^The following NEW packages will be installed:\n((?:  .*\n)+)", apt_output, re.M
    )
    assert m is not None, apt_output
    return set(m.group(1).split())


@pytest.mark.guest
def test_apt_install_use_remove(testroot: Path, debs: Debs, tmp_path: Path) -> None:
    """On a fresh Debian 12 guest running Debian's kernel with its headers:
    ``apt install ./sfork-dkms_*.deb ./libsfork1_*.deb ./libsfork-dev_*.deb`` installs
    them and dkms; the postinst has DKMS build the module for the running kernel and
    loads it (the loaded module is the DKMS-built file; /dev/sfork, mode 0666); the
    README's example builds with pkg-config, links libsfork.so.1 and creates one region
    as root and one as ``nobody``; ``apt remove`` leaves no module (loaded, on disk or
    in the index), no DKMS tree, no file of the packages and no dpkg record.  The
    host's own sfork state and the test system's image are unchanged."""
    host_before = host_sfork_state()
    image = testroot / "root.img"
    image_before = image.stat().st_mtime_ns
    console = boot_check(testroot, debs, tmp_path)
    got = steps(console)
    where = f"(console: {tmp_path / 'console.log'})"
    names = ["before", "install", "dkms", "loaded", "pkg-config", "build", "run-root", "run-nobody"]
    names += ["remove", "leftovers"]
    assert list(got) == names, f"steps run: {list(got)} {where}\n{console[-3000:]}"

    status, out = got["before"]
    kver = field(out, "kernel")
    assert field(out, "headers") == "yes" and field(out, "dkms") in ("", "un"), out
    assert [x for x in out.splitlines() if x.startswith("/") or x.startswith("sfork ")] == [], out

    status, out = got["install"]
    assert status == 0, f"apt install exited {status}:\n{out}"
    assert {"dkms", *PACKAGES} <= new_packages(out), out
    status, out = got["dkms"]
    assert re.search(
        rf"^sfork/{re.escape(debs.version)}, {re.escape(kver)}, \S+: installed", out, re.M
    ), f"{out}\n--- apt install ---\n{got['install'][1]}"
    status, out = got["loaded"]
    assert status == 0, out
    assert field(out, "file") == f"/lib/modules/{kver}/updates/dkms/sfork.ko", out
    assert re.search(r"^sfork \d+ 0 ", out, re.M), out
    assert field(out, "dev") == "character special file 666", out
    build_id = field(out, "file-build-id")
    assert build_id and field(out, "loaded-notes").endswith(build_id), (
        f"the loaded module is not the DKMS-built file:\n{out}"
    )
    assert field(out, "modules-load.d") == "sfork", out

    status, out = got["pkg-config"]
    assert status == 0 and out.split()[0] == debs.version and "-lsfork" in out.split(), out
    status, out = got["build"]
    assert status == 0, f"cc prog.c $(pkg-config --cflags --libs sfork):\n{out}"
    assert re.search(r"libsfork\.so\.1 => (/usr)?/lib/\S+/libsfork\.so\.1 ", out), out
    for who in ("run-root", "run-nobody"):
        status, out = got[who]
        counts = [int(c) for c in re.findall(r"^regions_created (\d+)$", out, re.M)]
        assert field(out, "exit") == "0" and len(counts) == 2, f"{who}:\n{out}"
        assert counts[1] == counts[0] + 1, f"{who}: the example created no region:\n{out}"

    status, out = got["remove"]
    assert status == 0, f"apt remove exited {status}:\n{out}"
    status, out = got["leftovers"]
    assert out.strip() == "", (
        f"left after apt remove:\n{out}\n--- apt remove ---\n{got['remove'][1]}"
    )

    assert host_sfork_state() == host_before
    assert image.stat().st_mtime_ns == image_before, f"{image} was written"
