"""Guest images.  The initramfs backend packs busybox-static, the project's
modules (with host ``depmod -b`` so ``modprobe NAME`` works) and its static
binaries into a cpio archive, cached in build/ by a hash of its content.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import lzma
import os
import shutil
import struct
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from .config import ProjectConfig
from .errors import ImageError
from .files import file_lock
from .kernels import Kernel
from .progress import Say, step

FORMAT = "kguest-initramfs-1"
RECIPES = "data/initramfs"  # package data of kguest: init, kguest.rc, kguest.sh, probe-init
GUEST_BIN_ROOT = "/opt/kguest"
BUSYBOX = Path("/bin/busybox")
KEEP_IMAGES = 6


@dataclasses.dataclass(frozen=True)
class ImageContent:
    """What goes into an image: resolved host paths."""

    kernel: Kernel
    modules: tuple[Path, ...]
    bin_dirs: tuple[tuple[Path, str], ...]  # (host dir, guest dir)
    # the kernel's own modules the image carries (paths relative to modules_dir, in
    # load order): the project modules' dependencies and [tool.kguest] kernel_modules
    kernel_modules: tuple[str, ...] = ()
    # the project's modules the image carries for tests to load (KUnit test modules)
    test_modules: tuple[Path, ...] = ()

    @property
    def module_names(self) -> list[str]:
        return [m.name.split(".ko")[0] for m in self.modules]

    @property
    def guest_path(self) -> str:
        return ":".join(g for _, g in self.bin_dirs)


def content_for(
    cfg: ProjectConfig, kernel: Kernel, modules: list[Path], test_modules: tuple[Path, ...] = ()
) -> ImageContent:
    """What the image of ``kernel`` carries: ``modules`` (loaded at boot), ``test_modules``
    (there for tests to load), the project's binaries and the kernel modules needed."""
    mods = tuple(modules)
    build = " ".join(cfg.build_command) or "the build"
    for m in (*mods, *test_modules):
        if not m.is_file():
            raise ImageError(
                f"module {m} does not exist",
                f"run {build} (or drop --no-build), or pass --no-modules to boot without it",
            )
        check_vermagic(m, kernel, build)
    for p, d in zip(cfg.bin_paths(), cfg.bin_dirs, strict=True):
        if not p.is_dir():
            raise ImageError(
                f"{cfg.source}: bin_dirs: {d!r} is not a directory ({p})",
                "fix the path in bin_dirs = [...] (relative to the project root), "
                "or make build_command create it",
            )
    dirs = tuple(
        (p, f"{GUEST_BIN_ROOT}/{d.strip('/')}")
        for p, d in zip(cfg.bin_paths(), cfg.bin_dirs, strict=True)
    )
    wanted = [n for m in mods for n in _depends(m)]
    own = _dep_closure(kernel, wanted, f"{', '.join(m.name for m in mods)} depend(s) on")
    extra = _dep_closure(
        kernel, list(cfg.kernel_modules), f"{cfg.source} kernel_modules names", strict=True
    )
    return ImageContent(
        kernel, mods, dirs, tuple(dict.fromkeys([*own, *extra])), tuple(test_modules)
    )


def _modinfo(module: Path, field: str) -> str:
    """One field of a module's modinfo (``vermagic``, ``depends``, ...)."""
    try:
        return subprocess.run(
            ["modinfo", "-F", field, str(module)], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise ImageError(f"modinfo {module} failed: {e}", "install kmod; is it a .ko?") from e


def check_vermagic(module: Path, kernel: Kernel, build: str = "the build") -> None:
    """A module built for another kernel is an error before any boot."""
    magic = _modinfo(module, "vermagic")
    if magic.split(" ", 1)[0] != kernel.version:
        raise ImageError(
            f"{module.name} was built for {magic.split(' ', 1)[0] or '?'}, "
            f"the guest kernel is {kernel.version}",
            f"rebuild it: {build} KDIR={kernel.kdir} (or drop --no-build)",
        )


def is_dynamic_elf(path: Path) -> bool:
    """True for an ELF executable with a PT_INTERP (needs a libc the initramfs lacks)."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return False
        phoff = struct.unpack_from("<Q", head, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == 3 for i in range(phnum))


def _files(d: Path) -> list[Path]:
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file() and os.access(p, os.X_OK))


def _depends(module: Path) -> list[str]:
    """The module names ``module`` needs (modinfo's depends)."""
    out = _modinfo(module, "depends")
    return [n for n in out.replace(",", " ").split() if n]


def _mod_key(name: str) -> str:
    return Path(name).name.split(".ko")[0].replace("-", "_")


def _dep_closure(kernel: Kernel, names: list[str], who: str, strict: bool = False) -> list[str]:
    """Paths (relative to /lib/modules/VER) of the kernel's modules ``names`` and what they
    need, in load order.  A name the kernel has built in needs nothing; with ``strict``,
    a name it has neither built in nor as a module is an error."""
    if not names:
        return []
    depfile = kernel.modules_dir / "modules.dep"
    if not depfile.is_file():
        raise ImageError(
            f"{who} {names} but {depfile} is missing",
            f"install linux-image-{kernel.version} (its modules) on the host",
        )
    table: dict[str, tuple[str, list[str]]] = {}
    for line in depfile.read_text().splitlines():
        path, _, deps = line.partition(":")
        table[_mod_key(path)] = (path, deps.split())
    builtin = kernel.modules_dir / "modules.builtin"
    built_in = {_mod_key(ln) for ln in builtin.read_text().split()} if builtin.is_file() else set()
    order: list[str] = []

    def visit(name: str) -> None:
        key = _mod_key(name)
        if key not in table:
            if strict and key not in built_in:
                raise ImageError(
                    f"{who} {name!r}, which kernel {kernel.version} has neither as a module "
                    "nor built in",
                    f"check the name against {depfile}",
                )
            return  # built in
        path, deps = table[key]
        for d in deps:
            visit(d)
        if path not in order:
            order.append(path)

    for n in names:
        visit(n)
    return order


def _copy_module(src: Path, dest_dir: Path) -> None:
    """Copy a kernel module into the image uncompressed (busybox's modprobe may lack the
    decompressor Debian's .ko.xz needs; depmod -b indexes the .ko)."""
    name = src.name
    dest_dir.mkdir(parents=True, exist_ok=True)
    if name.endswith(".ko"):
        shutil.copy2(src, dest_dir / name)
        return
    if src.suffix == ".xz":
        data = lzma.decompress(src.read_bytes())
    elif src.suffix == ".gz":
        data = gzip.decompress(src.read_bytes())
    else:
        raise ImageError(
            f"{src}: cannot unpack a {src.suffix} module",
            "use a kernel whose modules are plain, .xz or .gz",
        )
    (dest_dir / src.stem).write_bytes(data)


def recipe(name: str) -> bytes:
    """A guest recipe shipped inside the kguest package (works from a wheel, too)."""
    try:
        return resources.files("kguest").joinpath(f"{RECIPES}/{name}").read_bytes()
    except OSError as e:
        raise ImageError(
            f"kguest's guest recipe {RECIPES}/{name} is missing: {e}",
            "reinstall kguest (pip install --force-reinstall kguest)",
        ) from e


def _put(data: bytes, dest: Path, mode: int) -> None:
    dest.write_bytes(data)
    dest.chmod(mode)


def _digest(content: ImageContent, recipes: dict[str, bytes]) -> str:
    h = hashlib.sha256()

    def add(tag: str, data: bytes) -> None:
        h.update(f"{tag}\0{len(data)}\0".encode())
        h.update(data)

    # Keyed by what lands in the image, never by host paths: the same module
    # found in another place (--no-build reads it from the tree) is the same image.
    add("format", FORMAT.encode())
    add("kver", content.kernel.version.encode())
    add("busybox", BUSYBOX.read_bytes())
    for name, data in sorted(recipes.items()):
        add(f"recipe/{name}", data)
    for m in content.modules:
        add(f"module/{m.name}", m.read_bytes())
    for m in content.test_modules:
        add(f"test-module/{m.name}", m.read_bytes())
    for rel in content.kernel_modules:
        add(f"kernel-module/{rel}", (content.kernel.modules_dir / rel).read_bytes())
    for host, guest in content.bin_dirs:
        for f in _files(host):
            add(f"{guest}/{f.name}:{f.stat().st_mode & 0o777:o}", f.read_bytes())
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        p = content.kernel.modules_dir / name
        if p.is_file():
            add(name, p.read_bytes())
    return h.hexdigest()[:20]


def _stage_base(root: Path) -> None:
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "run",
        "var/log",
        "lib/modules",
        "opt",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    if not BUSYBOX.is_file():
        raise ImageError(f"{BUSYBOX} missing", "apt-get install busybox-static")
    if is_dynamic_elf(BUSYBOX):
        raise ImageError(f"{BUSYBOX} is dynamically linked", "apt-get install busybox-static")
    shutil.copy2(BUSYBOX, root / "bin/busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=True
    ).stdout.split()
    for a in applets:
        link = root / a
        if not link.exists() and not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    )
    (root / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")


def pack_cpio(root: Path, out: Path) -> None:
    """Pack the tree ``root`` as the newc cpio archive ``out`` (files owned by root)."""
    names = subprocess.run(
        ["find", ".", "-mindepth", "1"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    listing = "\n".join(sorted(n for n in names if n)) + "\n"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        proc = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"],
            cwd=root,
            input=listing.encode(),
            stdout=f,
            stderr=subprocess.PIPE,
        )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ImageError(f"cpio failed: {proc.stderr.decode()}", "apt-get install cpio")
    os.replace(tmp, out)


def _prune(d: Path, pattern: str, keep: int = KEEP_IMAGES) -> None:
    imgs = sorted(d.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in imgs[keep:]:
        p.unlink(missing_ok=True)


def build_initramfs(cfg: ProjectConfig, content: ImageContent, say: Say) -> Path:
    """Return the cached image for ``content``, building it if needed (under a lock)."""
    recipes = {name: recipe(name) for name in ("init", "kguest.rc", "kguest.sh")}
    for host, _ in content.bin_dirs:
        for f in _files(host):
            if is_dynamic_elf(f):
                raise ImageError(
                    f"{f} is dynamically linked; the initramfs has no libc",
                    "link it with -static, or use --vm-backend=vng",
                )
    outdir = cfg.build_path / "images"
    digest = _digest(content, recipes)
    out = outdir / f"initramfs-{content.kernel.version}-{digest}.cpio"
    with file_lock(outdir / ".lock"):
        if out.is_file():
            os.utime(out)
            return out
        with (
            step(say, f"building initramfs {out.name}"),
            tempfile.TemporaryDirectory(dir=outdir, prefix=".stage-") as tmp,
        ):
            root = Path(tmp)
            _stage_base(root)
            _put(recipes["init"], root / "init", 0o755)
            _put(recipes["kguest.rc"], root / "etc/kguest.rc", 0o644)
            _put(recipes["kguest.sh"], root / "etc/kguest.sh", 0o644)
            kver = content.kernel.version
            mdir = root / "lib/modules" / kver
            (mdir / "extra").mkdir(parents=True)
            for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
                p = content.kernel.modules_dir / name
                if p.is_file():
                    shutil.copy2(p, mdir / name)
            for m in (*content.modules, *content.test_modules):
                shutil.copy2(m, mdir / "extra" / m.name)
            for rel in content.kernel_modules:
                _copy_module(content.kernel.modules_dir / rel, (mdir / rel).parent)
            if content.modules or content.kernel_modules or content.test_modules:
                r = subprocess.run(
                    ["depmod", "-b", str(root), kver], capture_output=True, text=True
                )
                if r.returncode != 0:
                    raise ImageError(f"depmod -b failed: {r.stderr}", "apt-get install kmod")
            for host, guest in content.bin_dirs:
                dest = root / guest.lstrip("/")
                dest.mkdir(parents=True, exist_ok=True)
                for f in _files(host):
                    shutil.copy2(f, dest / f.name)
            (root / "etc/kguest.conf").write_text(
                f'KGUEST_MODULES="{" ".join(content.module_names)}"\n'
                f'KGUEST_PATH="{content.guest_path}"\n'
            )
            pack_cpio(root, out)
            _prune(outdir, "initramfs-*.cpio")
    return out


def build_probe_initramfs(cfg: ProjectConfig, say: Say) -> Path:
    """A minimal image that prints a marker and powers off (for the accelerator probe)."""
    probe = recipe("probe-init")
    outdir = cfg.build_path / "images"
    h = hashlib.sha256(FORMAT.encode() + probe + BUSYBOX.read_bytes()).hexdigest()
    out = outdir / f"probe-{h[:20]}.cpio"
    with file_lock(outdir / ".lock"):
        if out.is_file():
            return out
        with tempfile.TemporaryDirectory(dir=outdir, prefix=".stage-") as tmp:
            root = Path(tmp)
            _stage_base(root)
            _put(probe, root / "init", 0o755)
            pack_cpio(root, out)
            _prune(outdir, "probe-*.cpio", keep=2)
    return out


def with_overlay(cfg: ProjectConfig, base: Path, stage: Path) -> Path:
    """``base`` (an initramfs) followed by the tree ``stage`` packed as a second archive:
    the kernel unpacks both, the later files winning.  For a guest with files of a
    test's own (extra programs, modules at paths of its choosing).  Cached by content
    beside the images."""
    outdir = cfg.build_path / "images"
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".overlay-") as tmp:
        overlay = Path(tmp) / "overlay.cpio"
        pack_cpio(stage, overlay)
        h = hashlib.sha256(f"{FORMAT}\0{base.name}\0".encode())
        h.update(overlay.read_bytes())
        out = outdir / f"overlay-{h.hexdigest()[:20]}.cpio"
        with file_lock(outdir / ".lock"):
            if not out.is_file():
                tmp_out = Path(tmp) / "combined.cpio"
                with tmp_out.open("wb") as f:
                    for part in (base, overlay):
                        with part.open("rb") as src:
                            shutil.copyfileobj(src, f)
                        # the kernel's unpacker skips zero padding between archives
                        f.write(b"\0" * (-f.tell() % 4))
                os.replace(tmp_out, out)
                _prune(outdir, "overlay-*.cpio")
    os.utime(out)
    return out
