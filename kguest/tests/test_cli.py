"""The ``kguest`` command's user errors (one message, exit 125, no traceback) and how
module parameters and kernel command-line words reach a guest's spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kguest.backends import GuestSpec, Vng, module_args
from kguest.config import from_table
from kguest.kernels import Kernel
from kguest.options import Options, kernel_words, parse_module_params

ROOT = Path(__file__).resolve().parent.parent


def kguest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kguest.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "where", "msg"),
    [
        (("shell",), ROOT, "kguest shell needs a terminal"),
        (("run", "--", "true"), Path("/"), "no pyproject.toml with a [tool.kguest] table"),
        (("run", "--module-param", "hello", "--", "true"), ROOT, "is not MODULE.NAME=VALUE"),
        (("run", "--memory", "lots"), ROOT, "invalid int value: 'lots'"),
        (("frobnicate",), ROOT, "invalid choice: 'frobnicate'"),
        (("run",), ROOT, "nothing to run"),
        (("kernel", "nosuch"), ROOT, "unknown kernel 'nosuch'"),
        (
            ("run", "--no-build", "--no-modules", "--accel=tcg", "--qemu=/no/qemu", "--", "x"),
            ROOT,
            "cannot start /no/qemu",
        ),
    ],
)
def test_user_errors_exit_125_without_a_traceback(
    args: tuple[str, ...], where: Path, msg: str
) -> None:
    r = kguest(*args, cwd=where)
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert "kguest: error: " in r.stderr and msg in r.stderr, r.stderr
    err = r.stderr[r.stderr.find("kguest: error: ") :].splitlines()  # after progress lines
    assert "Traceback" not in r.stderr and len(err) <= 2, r.stderr


def test_kernel_says_where_a_declared_kernel_is() -> None:
    r = kguest("kernel", "default")
    assert r.returncode == 0, r.stderr
    got = dict(line.split(" ", 1) for line in r.stdout.splitlines())
    assert set(got) == {"vmlinuz", "kdir", "version"}
    assert Path(got["vmlinuz"]).is_file() and (Path(got["kdir"]) / "Makefile").is_file()
    assert got["version"] in got["vmlinuz"]


def test_module_params_and_cmdline_words() -> None:
    cfg = from_table(ROOT, {"module_params": {"hello": ["greeting=hi"]}, "cmdline": ["nokaslr"]})
    opts = Options(
        module_params=parse_module_params(["hello.warn=1", "other-mod.x=2"]),
        cmdline=("loglevel=7",),
    )
    words = kernel_words(cfg, opts)
    assert words == ("nokaslr", "loglevel=7", "hello.greeting=hi", "hello.warn=1", "other_mod.x=2")
    k = Kernel("default", Path("/boot/v"), Path("/k"), "6.1.0-x")
    spec = GuestSpec(Vng(), k, append=words, modules=(Path("/m/hello.ko"), Path("/m/other-mod.ko")))
    assert module_args(spec, "hello") == ["greeting=hi", "warn=1"]
    assert module_args(spec, "other-mod") == ["x=2"]
    script = Vng.setup_script(spec)
    assert "insmod /m/hello.ko greeting=hi warn=1 2>&1) ||" in script
    assert "insmod /m/other-mod.ko x=2 2>&1) ||" in script


def test_command_and_plugin_read_the_same_guest_flags() -> None:
    """One table (kguest.flags) gives both front ends the same Options."""
    import argparse

    from kguest.cli import build_parser
    from kguest.flags import add_guest_flags, options_from

    words = ["--kernel", "6.12", "--accel", "tcg", "--module-param", "hello.warn=1"]
    words += ["--kernel-cmdline", "quiet nokaslr", "--no-snapshots", "--no-build"]
    cli = options_from(
        build_parser().parse_args(["run", *words, "--memory", "512", "--cpus", "3", "--", "x"])
    )
    plugin_parser = argparse.ArgumentParser()
    add_guest_flags(plugin_parser.add_argument, plugin=True)
    plugin = options_from(
        plugin_parser.parse_args([*words, "--guest-memory", "512", "--guest-cpus", "3"])
    )
    want = Options(
        kernel="6.12",
        accel="tcg",
        memory_mib=512,
        cpus=3,
        build=False,
        module_params=(("hello", ("warn=1",)),),
        cmdline=("quiet", "nokaslr"),
        snapshots=False,
    )
    assert cli == want and plugin == want, (cli, plugin)
    assert options_from(plugin_parser.parse_args([])) == Options()
