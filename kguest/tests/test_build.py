"""The build step: the project's build once per session, each module directory built
per kernel in a mirror of its own (switching kernels rebuilds nothing), errors that
name the user's paths; the image cache key is the image's content (no guest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kguest import build, image
from kguest.config import from_table
from kguest.errors import BuildError, ImageError
from kguest.kernels import Kernel, find_debian


def test_missing_module_after_build_names_the_configured_path(tmp_path: Path) -> None:
    cfg = from_table(tmp_path, {"build_command": ["true"], "modules": ["drv/helo.ko"]}, "p.toml")
    k = Kernel("default", tmp_path / "vmlinuz", tmp_path, "6.1.0-x")
    with pytest.raises(BuildError) as ei:
        build.module_paths(cfg, k, print)
    msg = str(ei.value)
    assert "p.toml: modules: 'drv/helo.ko' does not exist after the build" in msg
    assert "build/kguest/modules" not in msg.split("\n")[0].split("(")[0]


def _project(root: Path) -> None:
    (root / "drv/include").mkdir(parents=True)
    (root / "drv/Kbuild").write_text("obj-m := hello.o\nccflags-y := -I$(src)/include\n")
    (root / "drv/hello.c").write_text(
        '#include <linux/module.h>\n#include "hello.h"\n'
        "static int __init h_init(void) { return HELLO; }\n"
        "static void __exit h_exit(void) { }\n"
        'module_init(h_init);\nmodule_exit(h_exit);\nMODULE_LICENSE("GPL");\n')
    (root / "drv/include/hello.h").write_text("#define HELLO 0\n")
    for junk in ("hello.o", ".hello.o.cmd", "hello.ko", "Module.symvers"):
        (root / "drv" / junk).write_text("left by an in-tree build")
    (root / "drv/bin").mkdir()
    (root / "drv/bin/tool").write_text("a test program")


def test_module_sources_and_mirror(tmp_path: Path) -> None:
    """A mirror holds the sources only (no build products, no bin_dirs/build_dir under the
    module directory); unchanged files keep their time, changed ones get a newer one,
    removed ones go."""
    _project(tmp_path)
    cfg = from_table(tmp_path, {"modules": ["drv/hello.ko"], "bin_dirs": ["drv/bin"]}, "p.toml")
    (d,) = build.module_dirs(cfg)
    assert (d.rel, d.names, d.buildable) == ("drv", ("hello.ko",), True)
    files = build.sources(d, cfg)
    assert sorted(files) == ["Kbuild", "hello.c", "include/hello.h"]
    mirror = tmp_path / "m"
    assert build.sync_mirror(files, mirror)
    t = (mirror / "hello.c").stat().st_mtime_ns
    assert t == (tmp_path / "drv/hello.c").stat().st_mtime_ns
    (mirror / "hello.o").write_text("an object of the mirror's own build")
    os.utime(tmp_path / "drv/hello.c")  # touched, same content
    assert not build.sync_mirror(build.sources(d, cfg), mirror)
    assert (mirror / "hello.c").stat().st_mtime_ns == t
    (tmp_path / "drv/hello.c").write_text("changed")
    os.utime(tmp_path / "drv/hello.c", ns=(t - 10**9, t - 10**9))  # even with an older time
    assert build.sync_mirror(build.sources(d, cfg), mirror)
    assert (mirror / "hello.c").stat().st_mtime_ns > t
    (tmp_path / "drv/include/hello.h").unlink()
    build.sync_mirror(build.sources(d, cfg), mirror)
    assert not (mirror / "include/hello.h").exists() and (mirror / "hello.o").exists()


def test_module_directory_of_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "Kbuild").write_text("obj-m := hello.o\n")
    (tmp_path / "hello.c").write_text("x")
    (tmp_path / "build/kguest").mkdir(parents=True)
    (tmp_path / "build/kguest/big").write_text("kguest's own")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git/HEAD").write_text("ref")
    cfg = from_table(tmp_path, {"modules": ["hello.ko"], "build_dir": "build/kguest"})
    (d,) = build.module_dirs(cfg)
    assert d.rel == "." and sorted(build.sources(d, cfg)) == ["Kbuild", "hello.c"]


def _host_headers() -> Path | None:
    hit = find_debian("amd64")
    return hit[1] if hit and shutil.which("make") else None


@pytest.mark.skipif(_host_headers() is None, reason="no Debian kernel headers on this host")
def test_switching_kernels_rebuilds_nothing(tmp_path: Path) -> None:
    """Two kernels (here: one headers tree under two names), built alternately: each
    builds once in its own mirror, then make does not run again and the .ko stays the
    same file (same bytes, same time)."""
    kdir = _host_headers()
    assert kdir is not None
    _project(tmp_path)
    cfg = from_table(tmp_path, {"modules": ["drv/hello.ko"], "build_command": []}, "p.toml")
    ver = kdir.resolve().parent.name
    a = Kernel("a", tmp_path / "vmlinuz", kdir, ver)
    b = Kernel("b", tmp_path / "vmlinuz", kdir, ver)
    said: list[str] = []
    (ka,) = build.module_paths(cfg, a, said.append)
    (kb,) = build.module_paths(cfg, b, said.append)
    assert ka != kb and ka.parent.parent.name.startswith("a-") and kb.is_file()
    assert sum("building hello.ko" in s for s in said) == 4  # start and end, twice
    before = {k: (k.read_bytes(), k.stat().st_mtime_ns) for k in (ka, kb)}
    said.clear()
    for k in (a, b, a, b):
        build.module_paths(cfg, k, said.append)
    assert said == []  # nothing built
    assert {k: (k.read_bytes(), k.stat().st_mtime_ns) for k in (ka, kb)} == before
    assert image._digest(image.ImageContent(a, (ka,), ()), {}) == image._digest(
        image.ImageContent(a, (ka,), ()), {})
    # --no-build: the kernel's build while it is of the sources as they are
    assert build.module_paths(cfg, a, said.append, build=False) == [ka]
    # a change to a source rebuilds (for the kernel that is used next)
    (tmp_path / "drv/include/hello.h").write_text("#define HELLO 0 /* changed */\n")
    assert build.module_paths(cfg, a, said.append, build=False) == [tmp_path / "drv/hello.ko"]
    build.module_paths(cfg, a, said.append)
    assert any("building hello.ko" in s for s in said)
    # a module name that Kbuild does not build is named with the user's path
    cfg2 = from_table(tmp_path, {"modules": ["drv/helo.ko"]}, "p.toml")
    with pytest.raises(BuildError, match=r"modules: 'drv/helo\.ko' was not built"):
        build.module_paths(cfg2, a, said.append)


@pytest.mark.skipif(_host_headers() is None, reason="no Debian kernel headers on this host")
def test_a_module_outside_the_project_builds_in_a_mirror_too(tmp_path: Path) -> None:
    """modules = ["/elsewhere/drv/hello.ko"]: mirrored under the kernel's mirror root,
    never built in its own directory."""
    kdir = _host_headers()
    assert kdir is not None
    (tmp_path / "proj").mkdir()
    _project(tmp_path / "elsewhere")
    ko = tmp_path / "elsewhere/drv/hello.ko"
    cfg = from_table(tmp_path / "proj", {"modules": [str(ko)]}, "p.toml")
    a = Kernel("a", tmp_path / "vmlinuz", kdir, kdir.resolve().parent.name)
    (built,) = build.module_paths(cfg, a, print)
    root = build.mirror_root(cfg, a)
    assert built.is_relative_to(root / "outside") and built.parent.name.startswith("drv-")
    assert (tmp_path / "elsewhere/drv/hello.o").read_text() == "left by an in-tree build"


def test_project_build_runs_once_per_session(tmp_path: Path) -> None:
    cfg = from_table(tmp_path, {"build_command": ["sh", "-c", "echo x >> ran"]}, "p.toml")
    k = Kernel("a", tmp_path / "v", tmp_path, "6.1.0-x")
    for _ in range(3):
        build.run_project_build(cfg, k, print, session="s1")
    build.run_project_build(cfg, k, print, session="s2")
    assert (tmp_path / "ran").read_text() == "x\nx\n"
    assert build.build_command(cfg, k)[:3] == ["sh", "-c", "echo x >> ran"]


def test_image_digest_ignores_where_the_module_was_found(tmp_path: Path) -> None:
    k = Kernel("default", tmp_path / "vmlinuz", tmp_path, "6.1.0-x", modules=tmp_path / "none")
    a, b = tmp_path / "tree/hello.ko", tmp_path / "mirror/hello.ko"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"same module")
    recipes = {"init": image.recipe("init"), "kguest.rc": image.recipe("kguest.rc")}
    same = [image._digest(image.ImageContent(k, (m,), ()), recipes) for m in (a, b)]
    assert same[0] == same[1]  # --no-build (tree) and a build (snapshot): one image
    b.write_bytes(b"another module")
    assert image._digest(image.ImageContent(k, (b,), ()), recipes) != same[0]


def test_missing_bin_dir_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    cfg = from_table(tmp_path, {"bin_dirs": ["bin", "tset/bin"]}, "p.toml")
    k = Kernel("default", tmp_path / "vmlinuz", tmp_path, "6.1.0-x", modules=tmp_path / "m")
    with pytest.raises(ImageError) as ei:
        image.content_for(cfg, k, [])
    assert "p.toml: bin_dirs: 'tset/bin' is not a directory" in ei.value.message


def test_recipes_are_package_data() -> None:
    assert image.recipe("init").startswith(b"#!/bin/sh")
    assert b"KGUEST" in image.recipe("kguest.rc")


def _fake_modules(d: Path) -> Kernel:
    """A kernel whose modules dir has zram (needing zsmalloc and lz4) as .ko.xz."""
    import lzma

    mods = d / "lib/modules/6.1.0-x"
    for rel in (
        "kernel/drivers/block/zram/zram.ko.xz",
        "kernel/mm/zsmalloc.ko.xz",
        "kernel/lib/lz4/lz4_compress.ko.xz",
    ):
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(lzma.compress(rel.encode()))
    (mods / "modules.dep").write_text(
        "kernel/drivers/block/zram/zram.ko.xz: kernel/mm/zsmalloc.ko.xz "
        "kernel/lib/lz4/lz4_compress.ko.xz\n"
        "kernel/mm/zsmalloc.ko.xz:\nkernel/lib/lz4/lz4_compress.ko.xz:\n"
    )
    (mods / "modules.builtin").write_text("kernel/drivers/block/loop.ko\n")
    return Kernel("default", d / "vmlinuz", d, "6.1.0-x", modules=mods)


def test_kernel_modules_bring_their_dependencies_unpacked(tmp_path: Path) -> None:
    """[tool.kguest] kernel_modules: the named module after what it needs, a built-in name
    needs nothing, an unknown name is a one-line error; the image holds plain .ko files."""
    k = _fake_modules(tmp_path)
    cfg = from_table(tmp_path, {"kernel_modules": ["zram", "loop"]}, "p.toml")
    content = image.content_for(cfg, k, [])
    assert content.kernel_modules == (
        "kernel/mm/zsmalloc.ko.xz",
        "kernel/lib/lz4/lz4_compress.ko.xz",
        "kernel/drivers/block/zram/zram.ko.xz",
    )
    out = tmp_path / "img"
    image._copy_module(k.modules_dir / content.kernel_modules[-1], out)
    assert (out / "zram.ko").read_bytes() == b"kernel/drivers/block/zram/zram.ko.xz"
    with pytest.raises(ImageError, match=r"'zrm', which kernel 6\.1\.0-x has neither"):
        image.content_for(from_table(tmp_path, {"kernel_modules": ["zrm"]}, "p.toml"), k, [])
    recipes = {"init": image.recipe("init"), "kguest.rc": image.recipe("kguest.rc")}
    bare = image._digest(image.content_for(from_table(tmp_path, {}, "p.toml"), k, []), recipes)
    assert image._digest(content, recipes) != bare
