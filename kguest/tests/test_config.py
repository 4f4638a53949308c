"""[tool.kguest] parsing and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kguest.config import from_table, load
from kguest.errors import ConfigError


@pytest.mark.parametrize(
    ("table", "msg"),
    [
        ({"colour": 1}, "unknown key"),
        ({"cpus": "two"}, "not a int"),
        ({"timeout": True}, "not a float"),
        ({"modules": "x.ko"}, "list of strings"),
        ({"backend": "docker"}, "not known"),
        ({"memory_mib": 64}, "memory_mib >= 128"),
        ({"kernels": {"x": {"vmlinuz": "/v"}}}, "missing kdir"),
        ({"kernels": {"default": {"vmlinuz": "/v", "kdir": "/k"}}}, "'default' is built in"),
        ({"matrix": {"mode": {"kind": "words", "values": ["a"]}}}, "needs exactly one of option"),
        ({"matrix": {"mode": {"option": "-m", "kind": "list"}}}, "kind = 'list' is not known"),
        ({"matrix": {"mode": {"option": "-m", "kind": "words"}}}, "values must be a list"),
        ({"matrix": {"n": {"option": "-n", "kind": "int", "values": ["1"]}}}, "values is for"),
        ({"matrix": {"n": {"option": "-n", "kind": "int", "big": "1M"}}}, "a size, for kind"),
        ({"matrix": {"s": {"option": "-s", "kind": "size", "big": "huge"}}}, "not a size"),
        ({"matrix": {"s": {"option": "-s", "kind": "size", "step": 2}}}, "unknown key step"),
        ({"matrix": {"Mode": {"option": "-m", "kind": "text"}}}, "not a key name"),
        ({"module_params": {"hello": "warn=1"}}, "must be a list of strings"),
        ({"module_params": {"hello": ["warn"]}}, "'warn' is not name=value"),
        ({"module_params": {"hel lo": ["a=1"]}}, "not a module name"),
        ({"cmdline": "quiet"}, "list of strings"),
        ({"fault_sweep": {"accept_errnos": ["ENOPE"]}}, "not an errno name"),
        ({"fault_sweep": {"kinds": ["disk"]}}, "'disk' is not known"),
        ({"fault_sweep": {"max_n": 0}}, "must be positive"),
        ({"fault_sweep": {"kmemleak": "yes"}}, "is not a bool"),
        ({"fault_sweep": {"retries": 2}}, "unknown key retries"),
        ({"kunit": {"modules": ["a_test.c"]}}, "is not a .ko path"),
        ({"kunit": "x.ko"}, "must be a table"),
    ],
)
def test_errors(tmp_path: Path, table: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError) as ei:
        from_table(tmp_path, table, "x/pyproject.toml")
    assert msg in ei.value.message, ei.value.message
    assert ei.value.message.startswith("x/pyproject.toml: ")  # file, then the key
    assert ei.value.hint


def test_matrix_params_cmdline(tmp_path: Path) -> None:
    cfg = from_table(
        tmp_path,
        {
            "matrix": {
                "mode": {"option": "-m", "kind": "words", "values": ["blocking", "nonblocking"]},
                "count": {"option": "-c", "kind": "int"},
                "size": {"option": "-s", "kind": "size", "big": "256M"},
            },
            "module_params": {"hello": ["warn=1", "greeting=hi"], "my-mod": ["x=2"]},
            "cmdline": ["nokaslr"],
        },
    )
    assert [k.name for k in cfg.matrix] == ["mode", "count", "size"]  # declaration order
    assert cfg.matrix_keys()["size"].big == 256 << 20
    assert cfg.params_for("hello") == ("warn=1", "greeting=hi")
    assert cfg.params_for("my-mod") == ("x=2",) and cfg.params_for("other") == ()
    assert cfg.cmdline == ("nokaslr",)


def test_matrix_key_targets(tmp_path: Path) -> None:
    cfg = from_table(
        tmp_path,
        {
            "matrix": {
                "bug": {"module_param": "ring-dev.bug", "kind": "words", "values": ["none"]},
                "zero": {"cmdline": "init_on_alloc", "kind": "int"},
            }
        },
    )
    bug, zero = cfg.matrix
    assert (bug.option, bug.module_param, bug.cmdline) == ("", "ring_dev.bug", "")
    assert (zero.option, zero.module_param, zero.cmdline) == ("", "", "init_on_alloc")
    with pytest.raises(ConfigError) as ei:
        from_table(tmp_path, {"matrix": {"b": {"module_param": "bug", "kind": "int"}}})
    assert "module_param = 'bug' is not a parameter of a module" in ei.value.message
    with pytest.raises(ConfigError) as ei:
        from_table(tmp_path, {"matrix": {"b": {"option": "-b", "cmdline": "x", "kind": "int"}}})
    assert "needs exactly one of option, module_param, cmdline" in ei.value.message


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


def test_fault_sweep_and_kunit(tmp_path: Path) -> None:
    cfg = from_table(
        tmp_path,
        {
            "fault_sweep": {
                "accept_errnos": ["enomem", "EAGAIN"],
                "leak_check": "true",
                "max_n": 7,
            },
            "kunit": {"modules": ["kmod/x_test.ko"], "kernels": ["check"]},
        },
    )
    assert cfg.fault_sweep.accept_errnos == ("ENOMEM", "EAGAIN")
    assert cfg.fault_sweep.max_n == 7 and cfg.fault_sweep.kmemleak
    assert cfg.kunit.modules == ("kmod/x_test.ko",) and cfg.kunit.kernels == ("check",)
    assert from_table(tmp_path, {}).fault_sweep.accept_errnos == ("ENOMEM",)
