"""The LTP tests catch a broken module.

Two deliberate breaks, each applied to a copy of kmod/ and built against the same
headers as the real module:

* ``mprotect``: ``sfork_vm_mprotect()`` always returns 0, so a read-only side can
  mprotect() itself writable again.  sfork03 must fail.
* ``direction``: ``sfork_side_may_write()`` (sfork_policy.h) gives the child write
  access in PARENT_TO_CHILD.  ``sfork02 -d p2c`` must fail.

A pristine copy built the same way is the control: both binaries pass against it.
One guest (busybox initramfs, booted without the project module) holds all three
modules; the test insmods each in turn, runs the binaries and rmmods it.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from guestkit import boot_with_overlay, copy_kmod, ltp_status, provisioner, stage_file

from kguest.guest import Guest
from kguest.kernels import Kernel

GUEST_DIR = "/opt/sfork-modules"


@dataclasses.dataclass(frozen=True)
class Break:
    function: str  # the C function the change is confined to
    old: str  # text replaced, exactly once, inside that function
    new: str
    command: str  # the LTP test that must catch it
    file: str = "sfork.c"  # the source file of kmod/ that holds the function


BREAKS = {
    "mprotect": Break("sfork_vm_mprotect", "return -EACCES;", "return 0;", "sfork03"),
    "direction": Break(
        "sfork_side_may_write",
        "return id == SFORK_CREATOR;",
        "return true;",
        "sfork02 -d p2c",
        "sfork_policy.h",
    ),
}
COMMANDS = sorted({b.command for b in BREAKS.values()})


def apply_break(source: Path, br: Break) -> None:
    """Replace ``br.old`` by ``br.new`` in the body of ``br.function`` (exactly once)."""
    text = source.read_text()
    m = re.search(rf"^static [^\n(]*\b{br.function}\(.*?^}}$", text, re.S | re.M)
    assert m is not None, f"{br.function}() not found in {source}: update BREAKS"
    body = m.group(0)
    assert body.count(br.old) == 1, (
        f"{br.old!r} occurs {body.count(br.old)} times in {br.function}(): update BREAKS"
    )
    source.write_text(text[: m.start()] + body.replace(br.old, br.new) + text[m.end() :])


def build_modules(kernel: Kernel, dirs: list[Path]) -> None:
    """Build the copies side by side (each is one compile plus modpost)."""
    procs = [
        (
            d,
            subprocess.Popen(
                ["make", "-C", str(d), f"KDIR={kernel.kdir}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for d in dirs
    ]
    for d, p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, f"building {d} failed:\n{out[-4000:]}"
        assert (d / "sfork.ko").is_file(), f"{d}: no sfork.ko after the build"


@pytest.fixture(scope="module")
def guest(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guest]:
    tmp = tmp_path_factory.mktemp("broken-module")
    prov = provisioner(pytestconfig, "pytests-broken")
    kernel = prov.kernel()
    variants = {"real": copy_kmod(tmp / "real")}
    for name, br in BREAKS.items():
        variants[name] = copy_kmod(tmp / name)
        apply_break(variants[name] / br.file, br)
        assert (variants[name] / br.file).read_text() != (variants["real"] / br.file).read_text()
    build_modules(kernel, list(variants.values()))
    stage = tmp / "stage"
    for name, d in variants.items():
        stage_file(stage, f"{GUEST_DIR}/{name}/sfork.ko", d / "sfork.ko")
    with boot_with_overlay(prov, stage) as g:
        yield g


def run_with_module(g: Guest, variant: str, commands: list[str]) -> dict[str, tuple[int, str]]:
    """insmod one variant, run ``commands``, rmmod it; status and output of each."""
    r = g.run(f"insmod {GUEST_DIR}/{variant}/sfork.ko && test -c /dev/sfork", 60)
    assert r.status == 0, f"insmod of the {variant} module failed:\n{r.output}"
    try:
        out = {}
        for c in commands:
            res = g.run(c, 240)
            out[c] = (res.status, res.output)
        return out
    finally:
        r = g.run("rmmod sfork", 60)
        assert r.status == 0, f"rmmod after the {variant} module's tests failed:\n{r.output}"


@pytest.mark.guest
def test_ltp_tests_catch_a_broken_module(guest: Guest) -> None:
    """sfork02 and sfork03 pass against kmod/ as it is and fail with TFAIL against a
    module whose mprotect guard (sfork03) or direction (sfork02 -d p2c) is broken."""
    assert guest.run("grep -c '^sfork ' /proc/modules", 30).output.strip() == "0"
    problems = []

    for cmd, (status, out) in run_with_module(guest, "real", COMMANDS).items():
        if status != 0:
            problems.append(f"real module: `{cmd}` should pass, {ltp_status(status)}:\n{out}")

    for name, br in BREAKS.items():
        status, out = run_with_module(guest, name, [br.command])[br.command]
        if status < 0 or status > 255 or not status & 1 or "TFAIL" not in out:
            problems.append(
                f"{name} break ({br.function}: {br.old!r} -> {br.new!r}): `{br.command}` "
                f"should fail with TFAIL, {ltp_status(status)}:\n{out}"
            )

    assert not problems, "\n\n".join(problems)
