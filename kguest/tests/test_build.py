"""The build step's errors name the user's paths; the image cache key is the image's
content, not where kguest found it (no guest needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kguest import build, image
from kguest.config import from_table
from kguest.errors import BuildError, ImageError
from kguest.kernels import Kernel


def test_missing_module_after_build_names_the_configured_path(tmp_path: Path) -> None:
    cfg = from_table(tmp_path, {"build_command": ["true"], "modules": ["drv/helo.ko"]}, "p.toml")
    k = Kernel("default", tmp_path / "vmlinuz", tmp_path, "6.1.0-x")
    with pytest.raises(BuildError) as ei:
        build.run_build(cfg, k, print)
    msg = str(ei.value)
    assert "p.toml: modules: 'drv/helo.ko' does not exist after the build" in msg
    assert "build/kguest/modules" not in msg.split("\n")[0].split("(")[0]


def test_image_digest_ignores_where_the_module_was_found(tmp_path: Path) -> None:
    k = Kernel("default", tmp_path / "vmlinuz", tmp_path, "6.1.0-x", modules=tmp_path / "none")
    a, b = tmp_path / "tree/hello.ko", tmp_path / "snapshot/hello.ko"
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
