"""The Python API and `kguest run`, against a real guest (busybox initramfs, no project
modules, no build: what the benchmark engineer's code does)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

import kguest
from kguest import cli
from kguest.errors import CommandTimeout
from kguest.guest import Guest


@pytest.fixture(scope="module")
def guest(pytestconfig: pytest.Config) -> Iterator[Guest]:
    with kguest.boot(
        kernel=pytestconfig.option.kernel,
        accel=pytestconfig.option.accel,
        build=False,
        modules=False,
        memory_mib=512,
        cpus=1,
    ) as g:
        yield g


@pytest.mark.guest
def test_run_output_and_status(guest: Guest) -> None:
    r = guest.run("echo out; echo err >&2; exit 5", timeout=30)
    assert (r.output, r.status) == ("out\nerr\n", 5)
    assert guest.boot_seconds > 0


@pytest.mark.guest
def test_read_file_is_binary_exact(guest: Guest) -> None:
    guest.check("printf 'a\\0b\\377\\n' > /tmp/f; head -c 70000 /dev/urandom >> /tmp/f", 30)
    data = guest.read_file("/tmp/f")
    assert data.startswith(b"a\0b\xff\n") and len(data) == 5 + 70000
    assert (
        guest.run("md5sum < /tmp/f", 30).output.split()[0]
        == __import__("hashlib").md5(data).hexdigest()
    )


@pytest.mark.guest
def test_timeout_then_usable(guest: Guest) -> None:
    with pytest.raises(CommandTimeout) as ei:
        guest.run("sleep 100", timeout=2)
    assert ei.value.recovered
    assert guest.run("echo alive", 30).output == "alive\n"


@pytest.mark.guest
def test_environment(guest: Guest) -> None:
    r = guest.check(
        "grep -c -E ' (/sys/kernel/debug|/sys/fs/cgroup|/tmp|/dev/shm) ' "
        "/proc/mounts; id -u nobody; nproc; free -m | awk '/Mem/{print $2}'",
        30,
    )
    mounts, nobody, cpus, mem = r.output.split()
    assert (mounts, nobody, cpus) == ("4", "65534", "1")
    assert 300 < int(mem) <= 512


def _guest_flags(pytestconfig: pytest.Config) -> list[str]:
    """The small module-less guest of these tests, as flags of the kguest command."""
    return [
        "--no-build",
        "--no-modules",
        "--accel",
        pytestconfig.option.accel,
        "--memory",
        "512",
        "--cpus",
        "1",
    ]


@pytest.mark.guest
def test_cli_run_propagates_exit_code(
    capfd: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    rc = cli.main(["run", *_guest_flags(pytestconfig), "--", "sh", "-c", "echo from-guest; exit 7"])
    out, err = capfd.readouterr()
    assert rc == 7
    assert out == "from-guest\n"
    assert "booting" in err


@pytest.mark.guest
def test_cli_run_timeout_names_its_own_option(
    capfd: pytest.CaptureFixture[str], pytestconfig: pytest.Config
) -> None:
    rc = cli.main(["run", *_guest_flags(pytestconfig), "--timeout", "3", "--", "sleep", "60"])
    _, err = capfd.readouterr()
    assert rc == 124
    assert "kguest run --timeout SECONDS (now 3)" in err, err
    assert "pytest" not in err and "YAML" not in err and "Traceback" not in err


def _shell(pytestconfig: pytest.Config) -> pexpect.spawn:
    args = ["shell", *_guest_flags(pytestconfig)]
    return pexpect.spawn(
        str(Path(sys.executable).parent / "kguest"),
        args,
        cwd=Path(__file__).resolve().parent.parent,
        encoding="utf-8",
        timeout=300,
        dimensions=(40, 200),
    )


@pytest.mark.guest
def test_shell_restores_and_tells_a_panic(pytestconfig: pytest.Config) -> None:
    """`kguest shell` starts like every other guest (a snapshot is saved, then restored);
    leaving it is status 0, a panic under the user is status 1 with the kernel's words."""
    for expect_start in ("", "from its snapshot"):
        sh = _shell(pytestconfig)
        sh.expect("interactive shell")
        if expect_start:
            assert expect_start in sh.before, sh.before
        sh.sendline("echo shell-$((6 * 7))")
        sh.expect("shell-42")
        if not expect_start:
            sh.sendline("poweroff -f")
            sh.expect(pexpect.EOF)
            sh.close()
            assert sh.exitstatus == 0, sh.before
    sh.sendline("echo c > /proc/sysrq-trigger")
    sh.expect(pexpect.EOF)
    sh.close()
    assert sh.exitstatus == 1, sh.before
    assert "kguest: the guest died:" in sh.before and "sysrq" in sh.before, sh.before
