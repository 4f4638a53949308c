"""Kernel registry, the kernels table, the kernel/headers match check, and the Debian
provider's package choice and build environment (no boot, no network)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from kguest import config
from kguest.cache import Cache
from kguest.config import KernelEntry, kernel_table
from kguest.errors import ConfigError, KernelError
from kguest.kernels import (
    Registry,
    apt,
    buildenv,
    check_match,
    chroot,
    chrootrun,
    debian,
    find_debian,
    headers_version,
    host,
    vmlinuz_version,
)


def fake_bzimage(path: Path, banner: str) -> Path:
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x20E, 0x600 - 0x200)
    data[0x600 : 0x600 + len(banner)] = banner.encode()
    path.write_bytes(bytes(data))
    return path


def fake_headers(d: Path, release: str, upstream: str | None = None, cc: str = "") -> Path:
    (d / "include/generated").mkdir(parents=True)
    (d / "include/generated/utsrelease.h").write_text(f'#define UTS_RELEASE "{release}"\n')
    if upstream:
        (d / "include/config").mkdir(parents=True)
        (d / "include/config/kernel.release").write_text(upstream + "\n")
    if cc:
        (d / ".config").write_text(f'CONFIG_CC_VERSION_TEXT="{cc}"\nCONFIG_GCC_VERSION=0\n')
    return d


BANNER = "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP Debian 6.1.192-2 (2026-11-16)"


def test_versions(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    assert vmlinuz_version(vm) == "6.1.0-56-amd64"
    assert headers_version(fake_headers(tmp_path / "h", "6.1.0-56-amd64")) == "6.1.0-56-amd64"


def test_match(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    k = check_match("default", vm, fake_headers(tmp_path / "h", "6.1.0-56-amd64", "6.1.192"))
    assert (k.version, k.name) == ("6.1.0-56-amd64", "default")


def test_abi_mismatch_is_an_error_before_boot(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    with pytest.raises(KernelError) as ei:
        check_match("default", vm, fake_headers(tmp_path / "h", "6.1.0-55-amd64"))
    assert "6.1.0-56-amd64" in ei.value.message and "6.1.0-55-amd64" in ei.value.message
    assert "linux-headers-6.1.0-56-amd64" in ei.value.hint


def test_upstream_mismatch_is_an_error(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    with pytest.raises(KernelError, match=r"6\.1\.191"):
        check_match("default", vm, fake_headers(tmp_path / "h", "6.1.0-56-amd64", "6.1.191"))


def test_not_a_bzimage(tmp_path: Path) -> None:
    p = tmp_path / "vmlinux"
    p.write_bytes(b"\x7fELF" + bytes(0x1000))
    with pytest.raises(KernelError, match="not an x86 bzImage"):
        vmlinuz_version(p)


def test_no_headers(tmp_path: Path) -> None:
    with pytest.raises(KernelError) as ei:
        headers_version(tmp_path)
    assert "--kdir" in ei.value.hint


def test_find_debian_picks_newest_with_headers(tmp_path: Path) -> None:
    boot, mods = tmp_path / "boot", tmp_path / "mods"
    boot.mkdir()
    for v in ["6.1.0-9", "6.1.0-56", "6.1.0-60"]:
        (boot / f"vmlinuz-{v}-amd64").write_bytes(b"")
    (boot / "vmlinuz-6.1.0-70-rt-amd64").write_bytes(b"")
    for v in ["6.1.0-9", "6.1.0-56", "6.1.0-70-rt"]:
        (mods / f"{v}-amd64/build").mkdir(parents=True)
    hit = find_debian("amd64", boot, mods)  # 6.1.0-60 has no headers; rt is another flavour
    assert hit is not None and hit[0].name == "vmlinuz-6.1.0-56-amd64"
    rt = find_debian("rt-amd64", boot, mods)
    assert rt is not None and rt[0].name == "vmlinuz-6.1.0-70-rt-amd64"
    assert find_debian("cloud-amd64", boot, mods) is None


# --- the kernels table ------------------------------------------------------------


def test_kernel_entries_from_config(tmp_path: Path) -> None:
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel/extra.config").write_text("CONFIG_ZRAM=y\n")
    cfg = config.from_table(
        tmp_path,
        {
            "kernels": {
                "trixie": {"debian": "trixie"},
                "rt": {"debian": "bookworm", "flavour": "rt-amd64"},
                "check": {"source": "debian:linux-source-6.1",
                          "config": ["kasan", "kmemleak", "lockdep", "ubsan", "gcov",
                                     "fault-injection", "kunit", "kernel/extra.config"]},
                "6.12": {"source": "debian:trixie/linux-source-6.12", "timeout_mul": 4},
                "built": {"provision": ["./provision", "-q"], "descriptor": "k/kernel.json"},
                "disk": {"vmlinuz": "/boot/v", "kdir": "/lib/modules/v/build"},
            }
        },
    )
    by = {e.name: e for e in cfg.kernels}
    assert (by["trixie"].form, by["trixie"].debian, by["trixie"].flavour) == (
        "debian", "trixie", "amd64")
    assert by["rt"].flavour == "rt-amd64"
    assert by["check"].form == "source" and by["check"].config[-1] == "kernel/extra.config"
    assert by["6.12"].timeout_mul == 4.0 and by["check"].timeout_mul is None
    assert by["built"].provision == ("./provision", "-q") and by["disk"].form == "vmlinuz"
    reg = Registry(cfg.kernels, tmp_path)
    assert reg.names() == ["default", "trixie", "rt", "check", "6.12", "built", "disk"]
    assert reg.expand(["all"]) == reg.names()
    assert reg.expand(["6.12", "default", "6.12"]) == ["6.12", "default"]
    with pytest.raises(KernelError, match="unknown kernel 'nope'"):
        reg.expand(["nope"])


@pytest.mark.parametrize(
    ("entry", "msg"),
    [
        ({"vmlinuz": "/v"}, "missing kdir"),
        ({"provision": ["x"]}, "missing descriptor"),
        ({"debian": "trixie", "vmlinuz": "/v"}, "exactly one of"),
        ({"provision": "x", "descriptor": "d"}, "must be a list of strings"),
        ({"debian": "trixie", "kdir": "/k"}, "unknown kdir"),
        ({"debian": "trixie", "packages": ["x"]}, "unknown packages"),
        ({"flavour": "rt-amd64"}, "exactly one of"),
        ({"debian": "Trixie"}, "not a Debian suite name"),
        ({"debian": "trixie", "flavour": "rt amd64"}, "not a kernel flavour"),
        ({"source": "debian:linux-source-6.1", "config": ["kasn"]},
         "'kasan' is not one of"[:0] + "'kasn' is not one of kguest's fragments"),
        ({"source": "debian:linux-source-6.1", "config": ["k/x.config"]}, "does not exist"),
        ({"source": "linux-6.1.tar.xz"}, "does not exist"),
        ({"source": "debian:linux-source-6.1", "timeout_mul": 0.5}, "timeout_mul = 0.5"),
        ({"source": "debian:linux-source-6.1", "config": "kasan"}, "list of strings"),
        ("trixie", "must be a table"),
    ],
)
def test_kernel_entry_errors(tmp_path: Path, entry: object, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg) as ei:
        config.from_table(tmp_path, {"kernels": {"k": entry}}, "p.toml")
    assert str(ei.value).startswith("p.toml: [tool.kguest.kernels.k]")
    assert "\n" not in ei.value.message  # one line
    if msg == "exactly one of" and entry == {"flavour": "rt-amd64"}:
        assert 'debian = "bookworm"' in ei.value.hint


def test_kernel_names_are_quoted_in_messages(tmp_path: Path) -> None:
    assert kernel_table("rt") == "[tool.kguest.kernels.rt]"
    assert kernel_table("6.12") == '[tool.kguest.kernels."6.12"]'
    with pytest.raises(ConfigError) as ei:
        config.from_table(tmp_path, {"kernels": {"6.12": {"debian": 1}}}, "p.toml")
    assert '[tool.kguest.kernels."6.12"]' in ei.value.message
    with pytest.raises(KernelError) as ki:
        Registry((), tmp_path).resolve("6.13", print)
    assert '[tool.kguest.kernels."6.13"]' in ki.value.hint
    for reserved in ("default", "all"):
        with pytest.raises(ConfigError, match=f"'{reserved}'"):
            config.from_table(tmp_path, {"kernels": {reserved: {"debian": "trixie"}}})


def test_on_disk_entry_keeps_its_prefix_and_multiplier(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    h = fake_headers(tmp_path / "h", "6.1.0-56-amd64")
    e = KernelEntry("mine", str(vm), str(h), ("chroot", "/srv/x"), timeout_mul=2.0)
    k = Registry((e,), tmp_path).resolve("mine", print)
    assert k.build_prefix == ("chroot", "/srv/x") and k.timeout_mul == 2.0


# --- provision commands (the form for anything else) --------------------------------


def _provisioned_tree(root: Path, name: str, extra: dict[str, str]) -> KernelEntry:
    script = root / "tools" / f"provision-{name}"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\ntouch ran-here\n")
    script.chmod(0o755)
    vm = fake_bzimage(root / "vmlinuz", BANNER)
    h = fake_headers(root / "h", "6.1.0-56-amd64")
    desc = root / "build/kernels" / name / "kernel.json"
    desc.parent.mkdir(parents=True)
    desc.write_text(json.dumps({"VMLINUZ": str(vm), "KDIR": str(h), "BUILD_PREFIX": [],
                                "MODULES_DIR": str(root / "mods"), **extra}))
    return KernelEntry(name, provision=(f"tools/provision-{name}",),
                       descriptor=f"build/kernels/{name}/kernel.json")


def test_provision_command_runs_in_the_project_root(tmp_path: Path) -> None:
    entry = _provisioned_tree(tmp_path, "mine", {"TIMEOUT_MUL": "4"})
    k = Registry((entry,), tmp_path).resolve("mine", print)
    assert k.name == "mine" and k.timeout_mul == 4.0 and k.modules == tmp_path / "mods"
    if os.geteuid() == 0:
        assert (tmp_path / "ran-here").is_file()
        broken = KernelEntry("x", provision=("./no-such-script",), descriptor="d.json")
        with pytest.raises(KernelError, match=r"cannot run \./no-such-script"):
            Registry((broken,), tmp_path).resolve("x", print)


def test_bad_timeout_multiplier(tmp_path: Path) -> None:
    entry = _provisioned_tree(tmp_path, "mine", {"TIMEOUT_MUL": "slow"})
    with pytest.raises(KernelError, match="TIMEOUT_MUL"):
        Registry((entry,), tmp_path).resolve("mine", print)


# --- Debian packages: parsing, choice, relocation ----------------------------------

SHOW = """Package: linux-headers-6.12.118+deb13-amd64
Source: linux
Version: 6.12.118-1
Installed-Size: 10394
Depends: linux-base (>= 4.12~), linux-headers-6.12.118+deb13-common (= 6.12.118-1), \
linux-image-6.12.118+deb13-amd64 (= 6.12.118-1) | linux-image-6.12.118+deb13-amd64-unsigned \
(= 6.12.118-1), linux-kbuild-6.12.118+deb13, gcc-14
Size: 3307212

Package: linux-headers-6.12.118+deb13-amd64
Version: 6.12.117-1
"""


def test_apt_show_and_depends() -> None:
    p = apt.parse_show(SHOW)
    assert p is not None and (p.name, p.version, p.size) == (
        "linux-headers-6.12.118+deb13-amd64", "6.12.118-1", 3307212)
    assert p.depend_names() == ["linux-base", "linux-headers-6.12.118+deb13-common",
                                "linux-image-6.12.118+deb13-amd64",
                                "linux-kbuild-6.12.118+deb13", "gcc-14"]
    assert p.depends[2] == ("linux-image-6.12.118+deb13-amd64",
                            "linux-image-6.12.118+deb13-amd64-unsigned")
    assert apt.parse_depends("libc6:any (>= 2), b [amd64]") == (("libc6",), ("b",))
    assert apt.parse_show("N: Unable to locate package x\n") is None


class FakeApt:
    """The package lists of a suite, as PrivateApt.show reads them."""

    suite = "trixie"

    def __init__(self, pkgs: dict[str, str]) -> None:
        self.pkgs = pkgs

    def show(self, name: str) -> apt.Package:
        if name not in self.pkgs:
            raise KernelError(f"Debian trixie has no package {name!r}", "")
        return apt.Package(name, "6.12.118-1", apt.parse_depends(self.pkgs[name]))


def test_debian_selection_follows_the_dependencies() -> None:
    fake = FakeApt({
        "linux-image-amd64": "linux-image-6.12.118+deb13-amd64 (= 6.12.118-1)",
        "linux-image-6.12.118+deb13-amd64": "kmod, initramfs-tools",
        "linux-headers-6.12.118+deb13-amd64": "linux-base, linux-headers-6.12.118+deb13-common,"
        " linux-image-6.12.118+deb13-amd64 | linux-image-6.12.118+deb13-amd64-unsigned, "
        "linux-kbuild-6.12.118+deb13, gcc-14",
        "linux-headers-6.12.118+deb13-common": "",
        "linux-kbuild-6.12.118+deb13": "libc6 (>= 2.38), libelf1t64, pahole",
    })
    sel = debian.select(fake, "amd64")  # type: ignore[arg-type]
    assert sel.abi == "6.12.118+deb13-amd64"
    assert [p.name for p in sel.parts] == ["linux-headers-6.12.118+deb13-common",
                                           "linux-kbuild-6.12.118+deb13"]
    assert sel.build_deps == ("gcc-14", "libc6", "libelf1t64", "pahole")  # no linux-*
    with pytest.raises(KernelError, match="no package 'linux-image-cloud-amd64'"):
        debian.select(fake, "cloud-amd64")  # type: ignore[arg-type]


def test_headers_include_is_relocated_into_the_cache(tmp_path: Path) -> None:
    mk = tmp_path / "usr/src/linux-headers-6.12.1-amd64/Makefile"
    mk.parent.mkdir(parents=True)
    mk.write_text("include /usr/src/linux-headers-6.12.1-common/Makefile\n")
    debian.relocate(tmp_path)
    assert mk.read_text() == f"include {tmp_path}/usr/src/linux-headers-6.12.1-common/Makefile\n"


def test_suite_and_flavour_names_are_checked_before_any_download(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="not a Debian suite name"):
        apt.PrivateApt(tmp_path, "../etc", print)
    with pytest.raises(KernelError, match="not a Debian kernel flavour"):
        debian.resolve("x", "trixie", "a b", Cache(tmp_path), print)


def test_apt_state_is_private(tmp_path: Path) -> None:
    a = apt.PrivateApt(tmp_path / "apt", "trixie", print)
    opts = a._options()
    joined = " ".join(opts)
    for k in ("sourcelist", "sourceparts", "State::lists", "State::status", "Cache::archives"):
        assert f"{k}={tmp_path}" in joined.replace("Dir::Etc::", "").replace("Dir::", "")
    assert "/etc/apt/sources" not in joined and "/var/lib/dpkg" not in joined
    assert (tmp_path / "apt/status").read_text() == ""  # no installed packages
    assert "trixie-security" in a._sources(extra=True)
    assert "security" not in a._sources(extra=False)


# --- build environments ---------------------------------------------------------------


def test_compiler_versions() -> None:
    assert host.gcc_major("gcc-14 (Debian 14.2.0-19) 14.2.0") == 14
    assert host.gcc_major("x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0") == 12
    assert host.gcc_major("140200") == 14
    assert host.gcc_major("Debian clang version 16.0.6") is None


def test_host_suite(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert host.suite(f) == "bookworm"
    f.write_text('NAME="Arch"\n')
    assert host.suite(f) == ""


def test_host_fits_headers_of_its_own_compiler(tmp_path: Path) -> None:
    majors = host.compilers()
    if not majors:
        pytest.skip("no gcc on this host")
    mine = max(majors)
    kd = fake_headers(tmp_path / "a", "x", cc=f"gcc-{mine} (Debian {mine}.1.0-1) {mine}.1.0")
    assert buildenv.host_fits(kd) == ""
    other = fake_headers(tmp_path / "b", "x", cc="gcc-99 (Debian 99.1.0-1) 99.1.0")
    assert "gcc 99" in buildenv.host_fits(other)
    # build tools linked against a newer C library do not run here
    tool = other / "scripts/basic/fixdep"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\necho \"fixdep: /lib/x86_64-linux-gnu/libc.so.6: version "
                    "'GLIBC_2.38' not found\" >&2; exit 1\n")
    tool.chmod(0o755)
    assert "GLIBC_2.38" in buildenv.tools_run(other)


def test_chroot_runner_command_lines(tmp_path: Path) -> None:
    pre = chroot.prefix(tmp_path / "root", [tmp_path / "cache"])
    assert pre[1:3] == ("-m", "kguest.kernels.chrootrun") and pre[-1] == "--"
    assert chroot.stable(pre)[0] == "python"  # the interpreter is not part of a key
    assert chrootrun.parse([str(tmp_path), "--bind", "/a", "--bind", "/b", "--", "make"]) == (
        tmp_path, [Path("/a"), Path("/b")], ["make"])
    with pytest.raises(ValueError, match="no command"):
        chrootrun.parse([str(tmp_path), "--bind", "/a", "--"])
    argv = chroot.argv(tmp_path, [tmp_path], tmp_path, ["make", "-C", "x"])
    assert argv[:3] == ["unshare", "--mount", "--propagation"] and argv[-3:] == ["make", "-C", "x"]
    assert chrootrun.main([str(tmp_path / "nothing"), "--", "true"]) == 125


def _apt(out: str, rc: int = 0) -> object:
    import subprocess

    return subprocess.CompletedProcess([], rc, out, "")


def test_apt_update_problems_are_read_from_its_output() -> None:
    """apt-get update exits 0 when a fetch fails: its Err/W lines tell."""
    offline = _apt("Err:1 http://deb.example.invalid/debian trixie InRelease\n"
                   "  Temporary failure resolving 'deb.example.invalid'\n"
                   "W: Failed to fetch http://deb.example.invalid/debian/dists/trixie/InRelease\n")
    probs = apt._problems(offline)  # type: ignore[arg-type]
    assert probs[0].endswith("Temporary failure resolving 'deb.example.invalid'")
    assert apt._NETWORK.search("\n".join(probs))
    assert apt._problems(_apt("Hit:1 http://deb.debian.org/debian trixie InRelease\n")) == []  # type: ignore[arg-type]
    assert apt._problems(_apt("", 100)) == ["apt-get exited 100"]  # type: ignore[arg-type]
