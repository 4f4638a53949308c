"""Region pages are zeroed once, on 6.1 as on 6.12: by the page allocator alone when
init_on_alloc is on (Debian's default; `zero_once` 1, `pages_zeroed_once` counts them),
by the module alone when it is off (`zero_once` 0, `pages_cleared` counts them), and a
region reads as zeros either way: sfork01 checks a new region after 64 MiB were dirtied
and freed, and a second one that reuses the first's pages.  In a guest booted with
init_on_alloc=0 the allocator zeroes nothing, so the module must clear every page
itself: that guest is where skipping a clear would show old memory.

One guest per case, with the project's module; the 6.12 cases run when --kernels names
6.12 (as `make test` does)."""

from __future__ import annotations

import pytest

import kguest
from kguest.guest import Guest

PAGES_4M = 1024
SFORK01 = [f"sfork01 -d bi -a {a} -s 4M" for a in ("eager", "lazy")]


def _cases(config: pytest.Config) -> list[tuple[str, tuple[str, ...]]]:
    kernels = {k.strip() for k in config.option.kernels.split(",")}
    names = ["default"]
    if "6.12" in kernels or "all" in kernels:
        names.append("6.12")
    return [(k, c) for k in names for c in ((), ("init_on_alloc=0",))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = _cases(metafunc.config)
        metafunc.parametrize("case", cases, ids=[f"{k}{''.join('-' + w for w in c)}"
                                                 for k, c in cases])


def _stats(g: Guest) -> dict[str, int]:
    out = g.check("cat /sys/kernel/debug/sfork/stats", 30).output
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.guest
def test_region_pages_zeroed_once(
    case: tuple[str, tuple[str, ...]], pytestconfig: pytest.Config
) -> None:
    kernel, cmdline = case
    o = pytestconfig.option
    with kguest.boot(kernel=kernel, cmdline=cmdline, accel=o.accel, build=not o.no_build,
                     memory_mib=1024) as g:
        before = _stats(g)
        for cmd in SFORK01:
            r = g.run(cmd, 240)
            assert r.status == 0, f"{kernel} {cmdline}: `{cmd}` failed:\n{r.output}"
        after = _stats(g)
    once = after["pages_zeroed_once"] - before["pages_zeroed_once"]
    cleared = after["pages_cleared"] - before["pages_cleared"]
    # two runs, each two 4 MiB regions whose every page is touched
    if not cmdline:
        assert after["zero_once"] == 1, f"{kernel}: the module does not trust init_on_alloc"
        assert once >= 4 * PAGES_4M, f"{kernel}: only {once} pages were left to the allocator"
        assert cleared == 0, f"{kernel}: the module cleared {cleared} pages the allocator zeroed"
    else:
        assert after["zero_once"] == 0, f"{kernel} {cmdline}: zero_once says the allocator zeroes"
        assert once == 0, f"{once} pages skipped the module's clear without init_on_alloc"
        assert cleared >= 4 * PAGES_4M, f"{kernel} {cmdline}: only {cleared} pages cleared"
