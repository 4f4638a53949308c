"""Kernels built from source: fragments, what survives olddefconfig, the source's
forms and their errors, the cache key, the time estimate and progress (no build)."""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

import pytest

from kguest import fragments
from kguest.cache import Cache
from kguest.errors import ConfigError, KernelError
from kguest.kernels import kconfig, source

CHECK = ("kasan", "kmemleak", "lockdep", "ubsan", "gcov", "fault-injection", "kunit")


def test_named_fragments_are_package_data() -> None:
    assert set(CHECK) <= set(fragments.names())
    assert "base" not in fragments.names()  # applied to every source kernel, not named
    base = fragments.named("base").wanted()
    for must in ("CONFIG_SERIAL_8250_CONSOLE", "CONFIG_BLK_DEV_INITRD", "CONFIG_DEVTMPFS",
                 "CONFIG_TMPFS", "CONFIG_DEBUG_FS", "CONFIG_MEMCG", "CONFIG_MODULES",
                 "CONFIG_ACPI", "CONFIG_KALLSYMS", "CONFIG_9P_FS", "CONFIG_PRINTK"):
        assert base[must] == "y", must
    assert fragments.named("kmemleak").wanted()["CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF"] == "n"
    gcov = fragments.named("gcov").wanted()
    assert gcov["CONFIG_GCOV_KERNEL"] == "y" and gcov["CONFIG_GCOV_PROFILE_ALL"] == "n"
    fi = fragments.named("fault-injection")
    assert dict(fi.optional).keys() == {"CONFIG_FAULT_INJECTION_STACKTRACE_FILTER"}
    for name in CHECK:
        assert fragments.named(name).options, name


def test_fragment_lines_and_errors(tmp_path: Path) -> None:
    f = fragments.parse(
        '# a comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n'
        "# kguest: optional: only on 6.2+\nCONFIG_D=y\n# kguest: slowdown: 1.5\nCONFIG_E=m\n",
        "mine",
    )
    assert f.options == (("CONFIG_A", "y"), ("CONFIG_B", "n"), ("CONFIG_C", '"x y"'),
                         ("CONFIG_D", "y"), ("CONFIG_E", "m"))
    assert f.optional == (("CONFIG_D", "only on 6.2+"),) and f.slowdown == 1.5
    with pytest.raises(ConfigError, match=r"mine:2: 'KASAN=y' is not a kconfig line"):
        fragments.parse("CONFIG_A=y\nKASAN=y\n", "mine")
    with pytest.raises(ConfigError, match="unknown kernel config fragment 'kasn'") as ei:
        fragments.named("kasn")
    assert "kasan" in ei.value.hint
    with pytest.raises(ConfigError, match="cannot be read"):
        fragments.project_file(tmp_path, "k/extra.config")
    (tmp_path / "k").mkdir()
    (tmp_path / "k/extra.config").write_text("CONFIG_ZRAM=y\n")
    loaded = fragments.load(tmp_path, ("kasan", "k/extra.config"))
    assert [x.name for x in loaded] == ["base", "kasan", "k/extra.config"]
    assert fragments.is_file_name("k/extra.config") and fragments.is_file_name("x.config")
    assert not fragments.is_file_name("kasan")


def test_merge_and_what_survived(tmp_path: Path) -> None:
    frs = (fragments.parse("CONFIG_A=y\nCONFIG_B=y\n", "one"),
           fragments.parse("# CONFIG_B is not set\nCONFIG_C=16\n"
                           "# kguest: optional: not here\nCONFIG_D=y\n", "two"))
    merged = kconfig.merge("CONFIG_A=m\n# CONFIG_C is not set\nCONFIG_X=y\n", frs)
    have = kconfig.parse_config(merged)
    assert have == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "16", "CONFIG_D": "y",
                    "CONFIG_X": "y"}
    # after olddefconfig: A dropped (a dependency missing), D dropped (optional)
    after = "# CONFIG_A is not set\nCONFIG_C=16\nCONFIG_X=y\n"
    lost = kconfig.dropped(after, frs)
    assert [(d.symbol, d.fragment, d.optional) for d in lost] == [
        ("CONFIG_A", "one", None), ("CONFIG_D", "two", "not here")]
    assert lost[0].describe() == ("CONFIG_A=y (fragment 'one') did not survive olddefconfig "
                                  "(got unset)")


def test_dropped_option_names_what_it_depends_on(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/Kconfig.debug").write_text(
        "config FAULT_INJECTION_STACKTRACE_FILTER\n\tbool \"filter\"\n"
        "\tdepends on FAULT_INJECTION_DEBUG_FS && \\\n\t\tSTACKTRACE_SUPPORT\n"
        "\tdepends on !X86_64\n\thelp\n\t  text\n\nconfig OTHER\n\tdepends on FOO\n")
    known, deps = kconfig.symbol_info(tmp_path, "FAULT_INJECTION_STACKTRACE_FILTER")
    assert known and deps == "FAULT_INJECTION_DEBUG_FS && STACKTRACE_SUPPORT && !X86_64"
    frs = (fragments.parse("CONFIG_FAULT_INJECTION_STACKTRACE_FILTER=y\nCONFIG_NOPE=y\n", "fi"),)
    lost = kconfig.dropped("", frs, tmp_path)
    assert "it depends on: FAULT_INJECTION_DEBUG_FS" in lost[0].describe()
    assert lost[1].describe() == "CONFIG_NOPE=y (fragment 'fi'): not an option of this kernel"


def _tree(d: Path) -> Path:
    for f in ("Makefile", "Kconfig", "arch/x86/Kconfig"):
        (d / f).parent.mkdir(parents=True, exist_ok=True)
        (d / f).write_text("# fake\n")
    return d


def test_source_forms_and_their_errors(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "cache")
    tree = _tree(tmp_path / "linux")
    src = source.find_source("linux", tmp_path, cache, print)
    assert src.tree == tree and src.tarball is None
    tb = tmp_path / "linux-6.1.tar.xz"
    tb.write_bytes(b"not really xz")
    src2 = source.find_source("linux-6.1.tar.xz", tmp_path, cache, print)
    assert src2.tarball == tb and len(src2.digest) == 64
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="neither a kernel tree nor a tarball"):
        source.find_source("notes.txt", tmp_path, cache, print)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="is not a kernel tree"):
        source.find_source("empty", tmp_path, cache, print)
    (tree / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(ConfigError, match="configured in place") as ei:
        source.find_source("linux", tmp_path, cache, print)
    assert "mrproper" in ei.value.hint
    with pytest.raises(ConfigError, match="not a Debian package name"):
        source.find_source("debian:Linux Source", tmp_path, cache, print)


def test_tree_digest_follows_content(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "linux")
    a = source.tree_digest(tree)
    assert source.tree_digest(tree) == a
    (tree / "mm").mkdir()
    (tree / "mm/new.c").write_text("int x;\n")
    assert source.tree_digest(tree) != a


def test_estimate_and_history(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    first = source.estimate(cache, 800, 2)
    assert first.total == int(800 * source.OBJECTS_PER_OPTION) and first.rate is None
    source._record(cache, {"options": 800, "objects": 2400, "seconds": 1200, "jobs": 2})
    e = source.estimate(cache, 400, 2)
    assert e.total == 1200 and e.rate == 2.0
    assert e.left(600, 30) == 300  # early: the history's rate
    assert e.left(600, 600) == 600  # later: this build's own rate (1 object/s)
    assert source.estimate(cache, 400, 8).rate is None  # another -j: no rate yet


def test_progress_lines_at_least_every_interval(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock that moves one second per look: every output read is a note's moment,
    # whatever the host's load does to the child's pace.
    ticks = itertools.count()
    monkeypatch.setattr(source, "time", types.SimpleNamespace(monotonic=lambda: next(ticks)))
    monkeypatch.setattr(source, "NOTE_SECONDS", 0.5)
    lines: list[str] = []
    script = ("import time\nfor i in range(4):\n    print('  CC      mm/f%d.o' % i, flush=True)"
              "\n    time.sleep(0.25)\n")
    made = source.run_make([sys.executable, "-c", script], tmp_path / "log", "building x",
                           lines.append, source.Estimate(8, None))
    assert made.objects == 4
    assert len(lines) >= 1 and all(ln.startswith("kguest: building x: ") for ln in lines)
    assert "/~8 objects" in lines[-1]
    with pytest.raises(KernelError, match=r"building x failed \(exit 2\)"):
        source.run_make([sys.executable, "-c", "import sys; print('x.c:1: error: no'); "
                        "sys.exit(2)"], tmp_path / "log", "building x", lines.append,
                        source.Estimate(None, None))


def test_slowdown_is_the_product_of_the_fragments() -> None:
    frs = (fragments.parse("# kguest: slowdown: 2\n", "a"),
           fragments.parse("# kguest: slowdown: 1.5\n", "b"), fragments.parse("", "c"))
    assert source.slowdown(frs) == 3.0


def test_unknown_tools_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kguest.kernels import host

    assert host.missing_packages({"sh": "dash", "/nonexistent/gelf.h": "libelf-dev",
                                  "no-such-program-kguest": "nothing"}) == [
        "libelf-dev", "nothing"]
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(KernelError, match="needs nothing, which the host lacks") as ei:
        host.ensure_tools({"no-such-program-kguest": "nothing"}, "building kernel 'x'", print)
    assert ei.value.hint == "install them: sudo apt-get install nothing"


def test_the_key_is_the_options_not_the_comments(tmp_path: Path) -> None:
    src = source.Source("x", "0" * 64)
    a = (fragments.parse("# note\nCONFIG_A=y\nCONFIG_B=y\n", "f"),)
    b = (fragments.parse("# kguest: slowdown: 3\nCONFIG_B=y\n\nCONFIG_A=y\n", "g"),)
    c = (fragments.parse("CONFIG_A=y\n# CONFIG_B is not set\n", "f"),)
    assert source.config_key(src, "gcc 12", a) == source.config_key(src, "gcc 12", b)
    assert source.config_key(src, "gcc 12", a) != source.config_key(src, "gcc 12", c)
    assert source.config_key(src, "gcc 12", a) != source.config_key(src, "gcc 14", a)
