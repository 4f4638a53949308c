"""The build step's errors name the user's paths; the image cache key is the image's
content, not where kguest found it (no guest needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kguest import build, image
from kguest.config import from_table
from kguest.errors import BuildError
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


def test_recipes_are_package_data() -> None:
    assert image.recipe("init").startswith(b"#!/bin/sh")
    assert b"KGUEST" in image.recipe("kguest.rc")
