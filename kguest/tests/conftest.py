"""kguest's self-tests: pytester drives inner pytest sessions (test_plugin.py); the
tests of coverage, the fault sweep and KUnit need a check kernel (--check-kernel)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kguest self-tests")
    g.addoption(
        "--check-kernel",
        default=None,
        metavar="VMLINUZ",
        help="a kernel with CONFIG_GCOV_KERNEL, fault injection (FAILSLAB, FAIL_PAGE_ALLOC, "
        "FAULT_INJECTION_DEBUG_FS, KPROBES), KUnit and KASAN, for the check_kernel tests",
    )
    g.addoption("--check-kdir", default=None, metavar="DIR", help="its build directory")
