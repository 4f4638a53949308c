"""Python tests of the example module, through kguest's fixtures."""

from __future__ import annotations

from typing import Any


def test_cat_greets_with_the_configured_parameter(kguest_run: Any) -> None:
    # kguest_run runs the command as a test (taint and dmesg checked around it)
    # and returns its TestRun; .result is the CommandResult (output, status).
    run = kguest_run("cat /dev/hello")
    assert run.result.status == 0
    assert run.result.output.strip() == "Hello, kguest!"  # module_params in pyproject.toml


def test_config_cmdline_reaches_the_kernel(kguest_run: Any) -> None:
    run = kguest_run("cat /proc/cmdline")
    words = run.result.output.split()
    assert "hello.example=1" in words  # cmdline in pyproject.toml
    assert "hello.greeting=kguest" in words  # how module_params travel
