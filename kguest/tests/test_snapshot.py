"""Guest snapshots (kguest/snapshot.py): restore after a panic, per-test isolation,
a changed module giving a new snapshot, and the fallbacks to booting.

The in-guest checks run inner pytest sessions on a project of their own whose guest
loads tests/troublemaker (as in test_guest_trouble.py) and reads their JUnit XML,
where kguest records how each test's guest started (property kguest_guest_start).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from guestkit import build_troublemaker, inner_pytest, junit_results, provisioner
from test_guest_trouble import CLEAN

from kguest import backends, config, kernels
from kguest.backends import GuestSpec
from kguest.errors import ScenarioError
from kguest.guest import Guest
from kguest.kernels import Kernel
from kguest.scenarios import load_file
from kguest.snapshot import Plan, SnapshotStore, probe_qemu

HERE = Path(__file__).resolve().parent
RESTORE_BOUND = 10.0  # seconds: a correctness bound for a restore, not a target

SCENARIO = f"""
defaults: {{format: exit, timeout: 30}}
tests:
  - {{name: before, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: panic, binary: sh, args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/panic"]}}
  - {{name: after_panic, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: taint, binary: sh, args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/taint"]}}
  - {{name: after_taint, binary: sh, args: ["-c", "{CLEAN}"]}}
  - name: freeze
    binary: sh
    args: ["-c", "echo 1 > /sys/kernel/debug/troublemaker/freeze"]
    timeout: 4
  - {{name: after_freeze, binary: sh, args: ["-c", "{CLEAN}"]}}
  - {{name: shared_leave, binary: sh, args: ["-c", "touch /tmp/shared_mark"]}}
  - {{name: shared_sees, binary: sh, args: ["-c", "test -e /tmp/shared_mark"]}}
  - name: iso_leave
    isolation: test
    binary: sh
    args: ["-c", "test ! -e /tmp/shared_mark && insmod /opt/kguest/extra/leftover.ko &&
      test -d /sys/module/leftover && touch /tmp/leftover"]
  - name: iso_check
    isolation: test
    binary: sh
    args: ["-c", "test -d /sys/module/troublemaker && test ! -d /sys/module/leftover &&
      test ! -e /tmp/leftover"]
  - {{name: after_iso, binary: sh, args: ["-c", "test ! -e /tmp/leftover"]}}
"""

ONE = f"""
tests:
  - {{name: one, binary: sh, args: ["-c", "{CLEAN}"], format: exit, timeout: 30}}
"""


def starts(junit: Path) -> dict[str, tuple[str, float]]:
    """test name -> (boot | restore, seconds) for the tests whose setup started a guest."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        for prop in case.iter("property"):
            if prop.get("name") == "kguest_guest_start":
                how, secs, _ = (prop.get("value") or "").split()
                out[case.get("name", "")] = (how, float(secs))
    return out


def call_times(junit: Path) -> dict[str, float]:
    return {
        c.get("name", ""): float(c.get("time", "0"))
        for c in ET.parse(junit).getroot().iter("testcase")
    }


@dataclasses.dataclass
class Project:
    root: Path
    kernel: Kernel
    accel: str
    src: Path  # troublemaker sources, rebuilt in place

    def run(self, scenario: str, junit: Path) -> subprocess.CompletedProcess[str]:
        (self.root / "scenarios/s.yaml").write_text(scenario)
        return inner_pytest(self.root, junit, self.kernel, self.accel, timeout=900)

    def snapshots(self) -> list[Path]:
        return sorted((self.root / "kguest-cache/snapshots").glob("*.vmstate"))


def _results(junit: Path) -> dict[str, tuple[str, str]]:
    return {k: v[:2] for k, v in junit_results(junit).items()}


def make_project(tmp: Path, pytestconfig: pytest.Config) -> Project:
    cfg = config.load(HERE.parent)
    o = pytestconfig.option
    kernel = kernels.select(cfg, print, o.kernel or None, None, o.kdir)
    ko = build_troublemaker(kernel.kdir, tmp / "troublemaker")
    proj = tmp / "proj"
    (proj / "scenarios").mkdir(parents=True)
    # A second copy of the module, not loaded at boot: the isolated test loads it.
    # (bin_dirs copies a directory's executable files into the image.)
    lo = build_troublemaker(kernel.kdir, tmp / "leftover", name="leftover")
    (proj / "extra").mkdir()
    shutil.copy2(lo, proj / "extra/leftover.ko")
    (proj / "extra/leftover.ko").chmod(0o755)
    (proj / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [tool.kguest]
        build_command = []
        modules = ["{ko}"]
        bin_dirs = ["extra"]
        boot_timeout = 240

        [tool.pytest.ini_options]
        junit_duration_report = "call"
        """)
    )
    return Project(proj, kernel, o.accel, tmp / "troublemaker")


@pytest.mark.guest
def test_restore_after_panic_isolation_and_invalidation(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    p = make_project(tmp_path, pytestconfig)

    # 1. A panic, then the next test on a restored guest; isolated tests on fresh ones.
    junit = tmp_path / "a.xml"
    r = p.run(SCENARIO, junit)
    log = f"inner session:\n{r.stdout[-6000:]}\n{r.stderr[-4000:]}"
    res, st, t = _results(junit), starts(junit), call_times(junit)
    passed = ("before", "after_panic", "after_taint", "after_freeze", "shared_leave", "shared_sees")
    for name in (*passed, "iso_leave"):
        assert res[name][0] == "passed", f"{name}: {res[name]}\n{log}"
    outcome, text = res["panic"]
    assert outcome == "failure" and "deliberate panic" in text and "guest died" in text, text
    outcome, text = res["taint"]
    assert outcome == "failure" and "gained U" in text, text
    outcome, text = res["freeze"]
    assert outcome == "failure" and "stopped answering" in text, text
    assert res["iso_check"][0] == "passed", f"isolated state leaked: {res['iso_check']}\n{log}"
    assert res["after_iso"][0] == "passed", f"{res['after_iso']}\n{log}"

    assert st["before"][0] == "boot", (st, log)
    # the boot is the setup's, not the first test's time
    assert t["before"] < st["before"][1], (t, st)
    restored = ("after_panic", "after_taint", "after_freeze", "iso_leave", "iso_check", "after_iso")
    for name in restored:
        how, secs = st.get(name, ("none", 0.0))
        assert how == "restore" and secs <= RESTORE_BOUND, (name, st, log)
    # the worker's guest, kept when nothing went wrong
    assert not {"panic", "taint", "freeze", "shared_leave", "shared_sees"} & set(st), st
    (snap,) = p.snapshots()
    meta = json.loads(snap.with_suffix(".json").read_text())
    assert meta["bytes"] == snap.stat().st_size > 0

    # 2. A changed module: a new image, a new key, a boot; the old snapshot is gone.
    src = p.src / "troublemaker.c"
    src.write_text(src.read_text() + '\nMODULE_INFO(kguest_selftest, "changed");\n')
    b = subprocess.run(
        ["make", "-C", str(p.kernel.kdir), f"M={p.src}", "modules"], capture_output=True
    )
    assert b.returncode == 0, b.stderr.decode()
    junit = tmp_path / "b.xml"
    r = p.run(ONE, junit)
    log = f"inner session:\n{r.stdout[-6000:]}\n{r.stderr[-4000:]}"
    assert _results(junit)["one"][0] == "passed", log
    assert starts(junit)["one"][0] == "boot", (starts(junit), log)
    (new,) = p.snapshots()
    assert new != snap and not snap.exists(), (new, snap)

    # 3. The same again: restored from the new snapshot.
    junit = tmp_path / "c.xml"
    r = p.run(ONE, junit)
    assert _results(junit)["one"][0] == "passed", r.stdout[-4000:]
    how, secs = starts(junit)["one"]
    assert how == "restore" and secs <= RESTORE_BOUND, (how, secs)
    assert p.snapshots() == [new]


@pytest.mark.guest
@pytest.mark.kguest(backend="vng")
def test_vng_boots_without_snapshots(kguest_guest: Guest) -> None:
    """The vng backend cannot be snapshotted: said once, booted, and it works."""
    store = kguest_guest.snapshots
    if store is None:
        pytest.skip("snapshots turned off with --no-snapshots")
    assert kguest_guest.started_from == "boot"
    why = store.unsupported(kguest_guest.spec)
    assert "host's filesystem" in why
    said = [s for s in store.said if "snapshots off" in s and "vng" in s]
    assert len(said) == 1 and why in said[0], store.said
    assert store.plan(kguest_guest.spec, kguest_guest.spec.backend.argv(kguest_guest.spec)) is None
    assert len([s for s in store.said if "snapshots off" in s and "vng" in s]) == 1
    assert kguest_guest.run("echo ok", 60).output.strip() == "ok"


FAKE_QEMU = """#!/bin/sh
# a QEMU without QMP: refuses -qmp, otherwise the real one
for a; do [ "$a" = -qmp ] && { echo "qemu: -qmp: invalid option" >&2; exit 1; }; done
exec qemu-system-x86_64 "$@"
"""


def fake_qemu(d: Path) -> Path:
    q = d / "qemu-no-qmp"
    q.write_text(FAKE_QEMU)
    q.chmod(0o755)
    return q


def test_qemu_probe() -> None:
    version, why = probe_qemu("qemu-system-x86_64")
    assert version[:1].isdigit() and why == "", (version, why)


def test_qemu_without_qmp_is_refused(tmp_path: Path) -> None:
    version, why = probe_qemu(str(fake_qemu(tmp_path)))
    assert version == "" and "no QMP" in why and "-qmp: invalid option" in why


@pytest.mark.guest
def test_qemu_without_snapshots_boots(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    """A QEMU that cannot migrate: said once, booted, no snapshot written."""
    prov = provisioner(pytestconfig, "snapshot-test")
    spec = dataclasses.replace(prov.spec("initramfs"), qemu=str(fake_qemu(tmp_path)))
    said: list[str] = []
    store = SnapshotStore(tmp_path / "snapshots", said.append)
    g = prov.new_guest(spec, snapshots=store, log=tmp_path / "console.log")
    with g:
        assert g.started_from == "boot"
        assert g.run("echo ok", 60).output.strip() == "ok"
    assert store.plan(spec, spec.backend.argv(spec)) is None  # asked again: not said again
    assert len(said) == 1 and "snapshots off" in said[0] and "no QMP" in said[0], said
    assert not (tmp_path / "snapshots").exists() or not any((tmp_path / "snapshots").iterdir())


# --- keys and pruning (no guest) ----------------------------------------------------


def _spec(tmp: Path, initrd: Path, **kw: object) -> GuestSpec:
    vmlinuz = tmp / "vmlinuz"
    if not vmlinuz.exists():
        vmlinuz.write_bytes(b"kernel")
    k = Kernel("default", vmlinuz, tmp, "6.1.0-test")
    spec = GuestSpec(backends.get("initramfs"), k, initrd=initrd)
    return dataclasses.replace(spec, **kw)  # type: ignore[arg-type]


def _plan(store: SnapshotStore, spec: GuestSpec) -> Plan:
    plan = store.plan(spec, spec.backend.argv(spec))
    assert plan is not None
    return plan


def test_key_follows_what_shapes_the_guest(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", print)
    img = tmp_path / "a.cpio"
    img.write_bytes(b"image one")
    base = _plan(store, _spec(tmp_path, img))
    assert _plan(store, _spec(tmp_path, img)).key == base.key
    for change in ({"memory_mib": 1024}, {"cpus": 1}, {"append": ("x=1",)}, {"accel": "kvm"}):
        other = _plan(store, _spec(tmp_path, img, **change))
        assert other.key != base.key and other.family != base.family, change
    # new image content (a rebuilt module): another key, the same family
    time.sleep(0.01)
    img.write_bytes(b"image two")
    changed = _plan(store, _spec(tmp_path, img))
    assert changed.key != base.key and changed.family == base.family
    # the same content under another name: the same key
    copy = tmp_path / "b.cpio"
    copy.write_bytes(b"image two")
    assert _plan(store, _spec(tmp_path, copy)).key == changed.key


def _fake_snapshot(plan, inputs: dict[str, list[int]]) -> None:  # type: ignore[no-untyped-def]
    plan.state.parent.mkdir(parents=True, exist_ok=True)
    plan.state.write_bytes(b"state")
    meta = {"key": plan.key, "family": plan.family, "inputs": inputs}
    plan.meta.write_text(json.dumps(meta))


def test_prune_removes_stale_snapshots(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "s", print)
    img = tmp_path / "a.cpio"
    img.write_bytes(b"one")
    st = img.stat()
    old = _plan(store, _spec(tmp_path, img))
    _fake_snapshot(old, {str(img): [st.st_size, st.st_mtime_ns]})
    other = _plan(store, _spec(tmp_path, img, memory_mib=512))  # another family
    _fake_snapshot(other, {str(img): [st.st_size, st.st_mtime_ns]})
    gone = _plan(store, _spec(tmp_path, img, cpus=3))  # its input vanished
    _fake_snapshot(gone, {str(tmp_path / "vanished.cpio"): [1, 1]})
    img2 = tmp_path / "b.cpio"
    img2.write_bytes(b"two")
    new = _plan(store, _spec(tmp_path, img2))
    _fake_snapshot(new, {})
    removed = store.prune(keep_key=new.key, family=new.family)
    assert sorted(removed) == sorted([old.state, gone.state])
    assert new.state.exists() and other.state.exists() and not old.meta.exists()
    # beyond the newest KEEP: oldest first
    assert store.prune(keep=1, keep_key=new.key) == [other.state]


def test_prune_removes_abandoned_partial_saves(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, print)
    old, fresh = tmp_path / ".k.vmstate.1.tmp", tmp_path / ".k.vmstate.2.tmp"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    t = time.time() - 3600
    os.utime(old, (t, t))
    assert store.prune() == [old]
    assert fresh.exists()


@pytest.mark.guest
def test_damaged_snapshot_is_replaced(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    """A snapshot QEMU cannot load: said, booted, saved again; the next start restores."""
    prov = provisioner(pytestconfig, "snapshot-test")
    spec = prov.spec("initramfs")
    said: list[str] = []
    store = SnapshotStore(tmp_path / "snapshots", said.append)

    def start(n: int) -> str:
        log = tmp_path / f"console-{n}.log"
        with prov.new_guest(spec, snapshots=store, log=log).boot() as g:
            assert g.run("echo ok", 60).output.strip() == "ok"
            return g.started_from

    assert start(1) == "boot"
    (state,) = (tmp_path / "snapshots").glob("*.vmstate")
    size = state.stat().st_size
    with state.open("r+b") as f:
        f.truncate(size // 2)
    assert start(2) == "boot"
    assert any("failed" in s and "booting instead" in s for s in said), said
    assert state.stat().st_size > size // 2
    assert start(3) == "restore"


def test_isolation_scenario_key(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("tests:\n  - {name: a, binary: b, isolation: test}\n  - {name: c, binary: d}\n")
    a, c = load_file(f)
    assert (a.isolation, c.isolation) == ("test", "worker")
    f.write_text("tests:\n  - name: a\n    binary: b\n    isolation: always\n")
    with pytest.raises(ScenarioError) as e:
        load_file(f)
    assert ":4:" in str(e.value) and "isolation" in str(e.value) and "worker, test" in str(e.value)


LEFTOVER = "/tmp/kguest-snapshot-test-leftover"


@pytest.mark.guest
def test_marker_isolation_1_leave_state(kguest_run) -> None:  # type: ignore[no-untyped-def]
    """On the worker's shared guest: leave a file behind (the next test must not see it)."""
    kguest_run(f"touch {LEFTOVER}", timeout=30)


@pytest.mark.guest
@pytest.mark.kguest(isolation="test")
def test_marker_isolation_2_fresh_guest(kguest_guest: Guest) -> None:
    """kguest(isolation='test'): a guest started for this test, without the leftover."""
    g = kguest_guest
    assert g.tests_run == 0
    if g.snapshots is None:
        assert g.started_from == "boot"
    else:  # restored, or (on a cold cache) the boot that saved the snapshot
        assert g.started_from == "restore" or g.saved_snapshot, g.started_from
    assert g.run(f"test -e {LEFTOVER}; echo $?", 30).output.strip() == "1"
