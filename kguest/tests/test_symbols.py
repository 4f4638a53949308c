"""A module's frames in a kernel stack as file:line (from its debug info), and the
console shell's watchdog (no guest: the helpers run on the host)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from guestkit import ROOT, build_troublemaker

from kguest import config, kernels
from kguest.backends import shell_functions
from kguest.symbols import Symbolizer

SRC = Path(__file__).resolve().parent / "troublemaker/troublemaker.c"


@pytest.fixture(scope="module")
def troublemaker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kernel = kernels.select(config.load(ROOT), print)
    return build_troublemaker(kernel.kdir, tmp_path_factory.mktemp("sym") / "troublemaker")


def _line_of(text: str) -> int:
    return next(i for i, s in enumerate(SRC.read_text().splitlines(), 1) if text in s)


def test_frames_of_the_module_get_file_and_line(troublemaker: Path) -> None:
    sym = Symbolizer([troublemaker], troublemaker.parent)
    off = _offset(troublemaker, "oops_write", "mov    (%rax),%esi")
    text = sym.annotate(
        f"RIP: 0010:oops_write+{off:#x}/0x30 [troublemaker]\n"
        " full_proxy_write+0x5c/0x80\n"
        " sleep_write+0x10/0x60 [other]\n"
    )
    first, second, third = text.splitlines()
    assert first.endswith(f"[troublemaker] (troublemaker.c:{_line_of('troublemaker: reading')})")
    assert second == " full_proxy_write+0x5c/0x80"  # the kernel's own: as it was
    assert third == " sleep_write+0x10/0x60 [other]"  # another module: as it was


def _offset(ko: Path, func: str, insn: str) -> int:
    """The offset of the first ``insn`` in ``func`` (objdump of the .ko)."""
    dump = subprocess.run(["objdump", "-d", str(ko)], capture_output=True, text=True).stdout
    body = dump[dump.index(f"<{func}>:") :]
    m = re.search(rf"^\s*([0-9a-f]+):\s.*{re.escape(insn)}", body, re.M)
    assert m is not None, body[:2000]
    start = int(re.search(rf"^([0-9a-f]+) <{func}>:", dump, re.M).group(1), 16)  # type: ignore[union-attr]
    return int(m.group(1), 16) - start


def test_watchdog_prints_the_stacks_of_a_command_still_running(tmp_path: Path) -> None:
    """kguest_watch (package data, sourced by the guest's shell) prints the kernel stacks
    of a command that outlives its time, and nothing for one that ends in time."""
    script = tmp_path / "t.sh"
    script.write_text(
        shell_functions()
        + "( read -r kgp _ </proc/self/stat; ( kguest_watch 1 $kgp & ); eval 'sleep 3' )\n"
        + "echo first-done\n"
        + "( read -r kgp _ </proc/self/stat; ( kguest_watch 2 $kgp & ); eval 'true' )\n"
        + "sleep 3; echo second-done\n"
    )
    t0 = time.monotonic()
    out = subprocess.run(
        ["busybox", "sh", str(script)], capture_output=True, text=True, timeout=60
    ).stdout
    assert time.monotonic() - t0 < 20
    first, second = out.split("first-done")
    assert "kguest: still running after 1 s" in first, out
    assert re.search(r"pid \d+ \(sleep\), state S:", first), out
    assert "still running" not in second, out
