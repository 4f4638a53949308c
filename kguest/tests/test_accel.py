"""Accelerator choice: a hanging KVM costs the probe's bound, then TCG, then the cache answers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kguest import accel


def fake_qemu(tmp_path: Path, body: str) -> str:
    q = tmp_path / "qemu-fake"
    q.write_text(f"#!/bin/sh\n{body}\n")
    q.chmod(0o755)
    return str(q)


def test_hanging_kvm_probe_is_bounded(tmp_path: Path) -> None:
    q = fake_qemu(tmp_path, "echo 'Booting from ROM..'; exec sleep 300")
    t0 = time.monotonic()
    ok, why = accel.probe_kvm(q, Path("/nonexistent"), Path("/nonexistent"), bound=2.0)
    assert not ok and "no answer within 2 s" in why
    assert time.monotonic() - t0 < 5


def test_working_kvm_probe(tmp_path: Path) -> None:
    q = fake_qemu(tmp_path, "echo booting; echo KGUEST-PROBE-OK; exec sleep 300")
    ok, _ = accel.probe_kvm(q, Path("/x"), Path("/x"), bound=5.0)
    assert ok


def test_exiting_qemu(tmp_path: Path) -> None:
    q = fake_qemu(tmp_path, "echo 'failed to initialize kvm'; exit 1")
    ok, why = accel.probe_kvm(q, Path("/x"), Path("/x"), bound=5.0)
    assert not ok and "exited 1" in why


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="needs /dev/kvm")
def test_choose_falls_back_to_tcg_and_caches(tmp_path: Path) -> None:
    q = fake_qemu(tmp_path, "exec sleep 300")
    cache = tmp_path / "accel.json"
    made: list[int] = []

    def image() -> Path:
        made.append(1)
        return Path("/x")

    t0 = time.monotonic()
    assert accel.choose("auto", q, Path("/x"), image, 2.0, print, cache) == "tcg"
    assert time.monotonic() - t0 < 5
    t1 = time.monotonic()
    assert accel.choose("auto", q, Path("/x"), image, 2.0, print, cache) == "tcg"
    assert time.monotonic() - t1 < 0.5 and len(made) == 1
    assert "tcg" in cache.read_text()


def test_override() -> None:
    def never() -> Path:
        raise AssertionError("no probe with --accel")

    assert accel.choose("tcg", "q", Path("/x"), never, 1.0, print) == "tcg"
    assert accel.choose("kvm", "q", Path("/x"), never, 1.0, print) == "kvm"
