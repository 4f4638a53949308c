"""sfork's own [tool.kguest] table and scenario files, read by kguest."""

from __future__ import annotations

from pathlib import Path

from kguest import config
from kguest.config import find_root, load
from kguest.scenarios import load_file


def test_repo_config() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = load(root)
    assert cfg.modules == ("kmod/sfork.ko",)
    # sfork's vocabulary and kernels are sfork's data, in its pyproject
    assert [(k.name, k.option) for k in cfg.matrix] == [
        ("direction", "-d"),
        ("alloc", "-a"),
        ("size", "-s"),
    ]
    assert {e.name for e in cfg.kernels} == {"rt", "6.12", "check"}
    assert cfg.memory_mib == 2048 and cfg.cpus == 2
    assert cfg.build_command[:2] == ("make", "build")
    assert find_root(root / "pytests") == root


def test_repo_scenarios_are_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = config.load(root)
    files = sorted(cfg.scenario_path.glob("*.yaml"))
    cases = [c for p in files for c in load_file(p, None, cfg.matrix)]
    assert cases, "scenarios/ is empty"
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids))
