"""Kernel registry and the kernel/headers match check (no boot needed)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from kguest import config
from kguest.config import KernelEntry
from kguest.errors import ConfigError, KernelError
from kguest.kernels import Registry, check_match, find_debian, headers_version, vmlinuz_version


def fake_bzimage(path: Path, banner: str) -> Path:
    data = bytearray(0x1000)
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x20E, 0x600 - 0x200)
    data[0x600 : 0x600 + len(banner)] = banner.encode()
    path.write_bytes(bytes(data))
    return path


def fake_headers(d: Path, release: str, upstream: str | None = None) -> Path:
    (d / "include/generated").mkdir(parents=True)
    (d / "include/generated/utsrelease.h").write_text(f'#define UTS_RELEASE "{release}"\n')
    if upstream:
        (d / "include/config").mkdir(parents=True)
        (d / "include/config/kernel.release").write_text(upstream + "\n")
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


def test_registry_names_and_entries(tmp_path: Path) -> None:
    vm = fake_bzimage(tmp_path / "vmlinuz", BANNER)
    h = fake_headers(tmp_path / "h", "6.1.0-56-amd64")
    reg = Registry((KernelEntry("mine", str(vm), str(h), ("chroot", "/srv/x")),), tmp_path)
    # only "default" is built in: every other kernel is the project's data
    assert reg.names() == ["default", "mine"]
    k = reg.resolve("mine", print)
    assert k.build_prefix == ("chroot", "/srv/x")
    with pytest.raises(KernelError, match="unknown kernel 'rt'") as ei:
        reg.resolve("rt", print)
    assert "[tool.kguest.kernels.rt]" in ei.value.hint


def test_kernel_entries_from_config(tmp_path: Path) -> None:
    cfg = config.from_table(
        tmp_path,
        {
            "kernels": {
                "built": {"provision": ["./provision", "-q"], "descriptor": "k/kernel.json"},
                "rt": {"flavour": "rt-amd64", "packages": ["linux-image-rt-amd64"]},
                "disk": {"vmlinuz": "/boot/v", "kdir": "/lib/modules/v/build"},
            }
        },
    )
    by = {e.name: e for e in cfg.kernels}
    assert by["built"].provision == ("./provision", "-q") and by["rt"].flavour == "rt-amd64"
    assert set(Registry(cfg.kernels, tmp_path).names()) == {"default", "built", "rt", "disk"}


@pytest.mark.parametrize(
    ("entry", "msg"),
    [
        ({"vmlinuz": "/v"}, "missing kdir"),
        ({"provision": ["x"]}, "missing descriptor"),
        ({"flavour": "rt", "packages": ["p"], "vmlinuz": "/v"}, "exactly one of"),
        ({"provision": "x", "descriptor": "d"}, "must be a list of strings"),
        ({"flavour": "rt", "packages": ["p"], "kdir": "/k"}, "unknown kdir"),
    ],
)
def test_kernel_entry_errors(tmp_path: Path, entry: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg) as ei:
        config.from_table(tmp_path, {"kernels": {"k": entry}}, "p.toml")
    assert str(ei.value).startswith("p.toml: [tool.kguest.kernels.k]")


def test_provision_command_runs_in_the_project_root(tmp_path: Path) -> None:
    _provisioned_tree(tmp_path, "debug", {})
    (tmp_path / "vmimages/kernels/provision-debug").write_text("#!/bin/sh\ntouch ran-here\n")
    entry = KernelEntry(
        "debug",
        provision=("vmimages/kernels/provision-debug",),
        descriptor="build/kernels/debug/kernel.json",
    )
    k = Registry((entry,), tmp_path).resolve("debug", print)
    assert k.name == "debug" and (tmp_path / "ran-here").is_file()
    broken = KernelEntry("x", provision=("./no-such-script",), descriptor="d.json")
    with pytest.raises(KernelError, match=r"cannot run \./no-such-script"):
        Registry((broken,), tmp_path).resolve("x", print)


def _provisioned_tree(root: Path, name: str, extra: dict[str, str]) -> None:
    script = root / "vmimages/kernels" / f"provision-{name}"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    vm = fake_bzimage(root / "vmlinuz", BANNER)
    h = fake_headers(root / "h", "6.1.0-56-amd64")
    desc = root / "build/kernels" / name / "kernel.json"
    desc.parent.mkdir(parents=True)
    desc.write_text(
        json.dumps(
            {
                "VMLINUZ": str(vm),
                "KDIR": str(h),
                "BUILD_PREFIX": [],
                "MODULES_DIR": str(root / "mods"),
                **extra,
            }
        )
    )


DEBUG = KernelEntry(
    "debug",
    provision=("vmimages/kernels/provision-debug",),
    descriptor="build/kernels/debug/kernel.json",
)


def test_debug_kernel_timeout_multiplier(tmp_path: Path) -> None:
    """kernel.json's TIMEOUT_MUL (written by provision-debug) reaches the Kernel."""
    _provisioned_tree(tmp_path, "debug", {"TIMEOUT_MUL": "4"})
    k = Registry((DEBUG,), tmp_path).resolve("debug", print)
    assert k.timeout_mul == 4.0 and k.modules == tmp_path / "mods"


def test_bad_timeout_multiplier(tmp_path: Path) -> None:
    _provisioned_tree(tmp_path, "debug", {"TIMEOUT_MUL": "slow"})
    with pytest.raises(KernelError, match="TIMEOUT_MUL"):
        Registry((DEBUG,), tmp_path).resolve("debug", print)
