"""[tool.kguest] parsing and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kguest.config import find_root, from_table, load
from kguest.errors import ConfigError


def test_repo_config() -> None:
    root = Path(__file__).resolve().parent.parent
    cfg = load(root)
    assert cfg.modules == ("kmod/sfork.ko",)
    assert cfg.memory_mib == 2048 and cfg.cpus == 2
    assert cfg.build_command[:2] == ("make", "build")
    assert find_root(root / "pytests") == root


@pytest.mark.parametrize(
    ("table", "msg"),
    [
        ({"colour": 1}, "unknown key"),
        ({"cpus": "two"}, "not a int"),
        ({"timeout": True}, "not a float"),
        ({"modules": "x.ko"}, "list of strings"),
        ({"backend": "docker"}, "not known"),
        ({"memory_mib": 64}, "memory_mib >= 128"),
        ({"kernels": {"x": {"vmlinuz": "/v"}}}, "needs vmlinuz and kdir"),
    ],
)
def test_errors(tmp_path: Path, table: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError, match=msg) as ei:
        from_table(tmp_path, table)
    assert ei.value.hint


def test_other_module_config(tmp_path: Path) -> None:
    cfg = from_table(
        tmp_path,
        {
            "modules": ["drv/foo.ko"],
            "build_command": ["make", "-C", "drv"],
            "bin_dirs": ["t"],
            "timeout": 5,
        },
    )
    assert cfg.module_paths() == [tmp_path / "drv/foo.ko"]
    assert cfg.timeout == 5.0


def test_no_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\[tool.kguest\]"):
        load()
