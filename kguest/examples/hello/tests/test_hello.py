"""Python tests of the example module, through kguest's fixtures."""

from __future__ import annotations

import pytest

import kguest


def test_cat_greets_with_the_configured_parameter(kguest_run: kguest.GuestRunner) -> None:
    # kguest_run runs the command as a test (taint and dmesg checked around it)
    # and returns its TestRun: .output and .status are the command's.
    run = kguest_run("cat /dev/hello")
    assert run.status == 0
    assert run.output.strip() == "Hello, kguest!"  # module_params in pyproject.toml


def test_config_cmdline_reaches_the_kernel(kguest_run: kguest.GuestRunner) -> None:
    run = kguest_run("cat /proc/cmdline")
    words = run.output.split()
    assert "hello.example=1" in words  # cmdline in pyproject.toml
    assert "hello.greeting=kguest" in words  # how module_params travel


def test_load_banner_is_in_the_kernel_log(kguest_run: kguest.GuestRunner) -> None:
    # the kernel's log stays whole in the guest: the module's boot message is there
    run = kguest_run("dmesg | grep 'hello: loaded'")
    assert "greeting kguest" in run.output


@pytest.mark.kguest(module_params={"hello": ["greeting=marker"]})
def test_a_marker_gives_a_guest_with_other_parameters(kguest_run: kguest.GuestRunner) -> None:
    run = kguest_run("cat /dev/hello")
    assert run.output.strip() == "Hello, marker!"
