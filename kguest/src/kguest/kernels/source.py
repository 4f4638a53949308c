"""A kernel built from source with a small config, once, cached by content.

``[tool.kguest.kernels.NAME] source = ...`` with ``config = [...]``:

* the source is ``debian:PACKAGE`` or ``debian:SUITE/PACKAGE`` (a Debian
  ``linux-source-*`` package: the host's own when installed, else downloaded with
  a private apt, of the host's suite unless one is named), a kernel tree, or a
  tarball of one (a path, relative to the project root);
* the config is ``make tinyconfig``, kguest's ``base`` fragment, then the
  fragments ``config`` names (see :mod:`kguest.fragments`); every option they ask
  for must survive ``make olddefconfig`` (one that does not is an error naming it
  and its fragment; an option a fragment marks optional is reported);
* it is built out of tree (``make O=...``, ``-j`` the host's CPUs) with a progress
  line at least every 30 s and an estimate of the time left, then cached in the
  user cache under a key of the source's content, the fragments' text and the
  compiler's version: a second session, worker or project with the same inputs
  waits for that one build and reuses it.

The build tree is the headers directory modules are built against; everything
builds with the host's compiler.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import resource
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .. import fragments as frag
from ..cache import Cache, key
from ..errors import ConfigError, KernelError
from ..files import atomic_write_text
from ..progress import Say
from . import host, kconfig
from .apt import PrivateApt, unpack
from .kernel import Kernel, check_match

FORMAT = "kguest-source-kernel-1"
NOTE_SECONDS = 30.0
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst")
# What building a kernel needs on the host: {program or file: Debian package}.
TOOLS = {
    "make": "make",
    "gcc": "gcc",
    "flex": "flex",
    "bison": "bison",
    "bc": "bc",
    "/usr/include/gelf.h": "libelf-dev",
    "xz": "xz-utils",
}
# The first build's estimate, before this machine has history: objects compiled per
# enabled (=y) option, measured on kguest's check configurations (6.1 and 6.12).
OBJECTS_PER_OPTION = 2.6
HISTORY = "kernels/source-history.json"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a kernel's source comes from, and a digest of its content."""

    label: str  # for messages: "linux-source-6.1 6.1.192-3 (Debian)", a path
    digest: str
    tarball: Path | None = None  # unpacked into the cache
    tree: Path | None = None  # used in place (read only: the build is out of tree)


def _is_tarball(p: Path) -> bool:
    return p.name.endswith(TARBALL_SUFFIXES)


def check_tree(tree: Path, shown: str) -> None:
    """A kernel tree kguest can build out of tree, or a one-line error."""
    if not all((tree / f).is_file() for f in ("Makefile", "Kconfig", "arch/x86/Kconfig")):
        raise ConfigError(
            f"source = {shown!r}: {tree} is not a kernel tree (no Makefile, Kconfig and "
            "arch/x86/Kconfig)",
            'point source at a Linux tree or tarball, or use "debian:linux-source-6.1"',
        )
    if (tree / ".config").exists() or (tree / "include/config").exists():
        raise ConfigError(
            f"source = {shown!r}: {tree} is configured in place (it has a .config); kguest "
            "builds out of tree",
            f"run `make -C {tree} mrproper`, or point source at a clean copy",
        )


def tree_digest(tree: Path) -> str:
    """A key of a tree's content: git's HEAD and its changes, else every file's size
    and modification time."""
    if (tree / ".git").exists() and shutil.which("git"):
        def git(*a: str) -> str:
            return subprocess.run(["git", "-C", str(tree), *a], capture_output=True,
                                  text=True).stdout
        head = git("rev-parse", "HEAD").strip()
        if head:
            return key("git", head, git("diff", "HEAD"), git("status", "--porcelain"))
    parts: list[str] = []
    for d, dirs, files in os.walk(tree):
        dirs[:] = sorted(x for x in dirs if x != ".git")
        for f in sorted(files):
            p = Path(d) / f
            try:
                st = p.lstat()
            except OSError:
                continue
            parts.append(f"{p.relative_to(tree)} {st.st_size} {st.st_mtime_ns}")
    return key("tree", *parts)


def _installed_version(package: str) -> str:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", package],
                           capture_output=True, text=True)
    except OSError:
        return ""
    parts = r.stdout.split()
    return parts[-1] if r.returncode == 0 and "installed" in parts[:3] and len(parts) == 4 else ""


def _package_tarball(files: list[Path], label: str) -> Path:
    found = [p for p in files if p.parent.name == "src" and _is_tarball(p)]
    if not found:
        raise ConfigError(f"{label} holds no kernel tarball under /usr/src",
                          'name a linux-source package, e.g. "debian:linux-source-6.1"')
    return found[0]


def debian_source(spec: str, cache: Cache, say: Say) -> Source:
    """``debian:[SUITE/]PACKAGE``: the host's installed package, else a download."""
    body = spec.removeprefix("debian:")
    suite, _, package = body.rpartition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", package):
        raise ConfigError(f"source = {spec!r}: {package!r} is not a Debian package name",
                          'e.g. source = "debian:linux-source-6.1"')
    host_suite = host.suite()
    ver = _installed_version(package)
    if ver and suite in ("", host_suite):
        listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True).stdout
        tarball = _package_tarball([Path(x) for x in listed.split()], f"package {package}")
        return Source(f"{package} {ver} (installed)", cache.digest(tarball), tarball=tarball)
    suite = suite or host_suite
    if not suite:
        raise ConfigError(
            f"source = {spec!r}: the host is not Debian (no VERSION_CODENAME), so name the "
            "suite",
            f'e.g. source = "debian:bookworm/{package}"',
        )
    pin = cache.path("downloads", f"debian-{suite}-{package}.json")
    try:
        tarball = Path(json.loads(pin.read_text())["tarball"])
        if tarball.is_file():
            return Source(f"{package} ({suite})", cache.digest(tarball), tarball=tarball)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    apt = PrivateApt(cache.path("apt", suite), suite, say)
    say(f"kguest: looking up {package} in Debian {suite} (apt-get update, private lists)")
    apt.update()
    pkg = apt.show(package)

    def make(d: Path, progress: Say) -> dict[str, object]:
        progress(f"kguest: downloading {package} {pkg.version} ({pkg.size >> 20} MiB)")
        (deb,) = apt.download([pkg], d / "debs")
        unpack(deb, d / "root")
        deb.unlink()
        tb = _package_tarball(list((d / "root").rglob("*")), f"{package} {pkg.version}")
        return {"package": package, "version": pkg.version, "tarball": str(tb)}

    _, meta = cache.entry(f"downloads/debian-{suite}-{package}-{key(pkg.version)}",
                          f"{package} {pkg.version}", make, say)
    tarball = Path(str(meta["tarball"]))
    atomic_write_text(pin, json.dumps({"tarball": str(tarball)}) + "\n")
    return Source(f"{package} {pkg.version} ({suite})", cache.digest(tarball), tarball=tarball)


def find_source(spec: str, root: Path, cache: Cache, say: Say) -> Source:
    if spec.startswith("debian:"):
        return debian_source(spec, cache, say)
    p = (root / spec).resolve()
    if p.is_dir():
        check_tree(p, spec)
        return Source(str(p), tree_digest(p), tree=p)
    if p.is_file() and _is_tarball(p):
        return Source(str(p), cache.digest(p), tarball=p)
    raise ConfigError(
        f"source = {spec!r}: {p} is neither a kernel tree nor a tarball "
        f"({', '.join(TARBALL_SUFFIXES)})",
        'use a path to a Linux tree or tarball, or "debian:linux-source-6.1"',
    )


def source_tree(src: Source, cache: Cache, say: Say) -> Path:
    """The tree to build from: in place, or the tarball unpacked once in the cache."""
    if src.tree is not None:
        return src.tree
    assert src.tarball is not None
    tarball = src.tarball

    def make(d: Path, progress: Say) -> dict[str, object]:
        progress(f"kguest: unpacking {tarball.name} (about a minute)")
        tree = d / "tree"
        tree.mkdir()
        r = subprocess.run(["tar", "-xf", str(tarball), "-C", str(tree), "--strip-components=1"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise KernelError(f"tar -xf {tarball} failed: {r.stderr.strip()[:300]}",
                              "is it a complete kernel tarball?")
        check_tree(tree, str(tarball))
        return {"tarball": str(tarball)}

    d, _ = cache.entry(f"sources/{src.digest[:16]}", f"the source {tarball.name}", make, say)
    return d / "tree"


# --- building -----------------------------------------------------------------


@dataclasses.dataclass
class Estimate:
    """Objects a build will compile, and how fast this machine compiles them."""

    total: int | None
    rate: float | None  # objects per second, from earlier builds

    def left(self, done: int, elapsed: float) -> float | None:
        if self.total is None or done >= self.total:
            return None
        rate = done / elapsed if done >= 200 and elapsed >= 60 else self.rate
        return (self.total - done) / rate if rate else None


def _history(cache: Cache) -> list[dict[str, object]]:
    try:
        data = json.loads(cache.path(HISTORY).read_text())
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def _num(d: dict[str, object], k: str) -> float:
    v = d.get(k)
    return float(v) if isinstance(v, int | float) else 0.0


def estimate(cache: Cache, options: int, jobs: int) -> Estimate:
    """From earlier builds on this machine (objects per enabled option, objects per
    second at this -j), else the measured prior."""
    hist = [h for h in _history(cache) if _num(h, "options") and _num(h, "objects")]
    per = (sum(_num(h, "objects") / _num(h, "options") for h in hist[-5:]) / len(hist[-5:])
           if hist else OBJECTS_PER_OPTION)
    same_j = [h for h in hist if _num(h, "jobs") == jobs and _num(h, "seconds")]
    rate = (sum(_num(h, "objects") / _num(h, "seconds") for h in same_j[-5:]) / len(same_j[-5:])
            if same_j else None)
    return Estimate(int(options * per), rate)


def _record(cache: Cache, entry: dict[str, object]) -> None:
    hist = [*_history(cache), entry][-20:]
    atomic_write_text(cache.path(HISTORY), json.dumps(hist, indent=1) + "\n")


def _minutes(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"


_OBJECT_LINE = re.compile(r"^\s+(?:CC|AS)(?: \[M\])?\s+\S+\.o$")


@dataclasses.dataclass(frozen=True)
class Made:
    """What a kernel build took."""

    objects: int
    seconds: float  # wall clock
    cpu_seconds: float  # user + system of every process of the build


def run_make(cmd: list[str], log: Path, what: str, progress: Say, est: Estimate) -> Made:
    """Run ``cmd`` (a kernel build), output to ``log``; a progress line when it starts
    and at least every 30 s."""
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = 0
    last_line = ""
    last_note = t0
    with log.open("w") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=_clean_env())
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        buf = b""
        while True:
            ready = sel.select(timeout=5.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                f.write(chunk.decode(errors="replace"))
                buf += chunk
                *lines, rest = buf.split(b"\n")
                buf = rest
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if _OBJECT_LINE.match(line):
                        done += 1
                    if line.strip():
                        last_line = line.strip()
            now = time.monotonic()
            if now - last_note >= NOTE_SECONDS:
                last_note = now
                elapsed = now - t0
                total = f"/~{est.total}" if est.total else ""
                left = est.left(done, elapsed)
                eta = f", about {_minutes(left)} left" if left is not None else ""
                progress(f"kguest: {what}: {done}{total} objects, {_minutes(elapsed)} so far"
                         f"{eta} ({last_line[:60]})")
        proc.stdout.close()
        rc = proc.wait()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if rc != 0:
        text = log.read_text(errors="replace").splitlines()
        errors = [ln for ln in text if re.search(r"\berror\b|Error \d", ln)][-12:]
        raise KernelError(
            f"{what} failed (exit {rc}):\n" + "\n".join(errors or text[-20:]),
            f"read {log}",
        )
    return Made(done, time.monotonic() - t0, cpu)


def _clean_env() -> dict[str, str]:
    """The environment for a kernel build: no make or kbuild variables of the caller's."""
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "ARCH", "CROSS_COMPILE",
            "CC", "LD", "KCFLAGS", "KCPPFLAGS", "KBUILD_OUTPUT", "O", "M", "KDIR")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KBUILD_")}


def configure(tree: Path, out: Path, fragments: tuple[frag.Fragment, ...], log: Path,
              name: str, progress: Say) -> str:
    """tinyconfig + fragments + olddefconfig in ``out``; the ``.config`` text."""
    def make(*targets: str) -> None:
        with log.open("a") as f:
            r = subprocess.run(["make", "-C", str(tree), f"O={out}", *targets], stdout=f,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=_clean_env())
        if r.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise KernelError(f"kernel {name!r}: make {' '.join(targets)} failed: {tail[0]}",
                              f"read {log}")

    make("tinyconfig")
    cfg = out / ".config"
    cfg.write_text(kconfig.merge(cfg.read_text(), fragments))
    make("olddefconfig")
    text = cfg.read_text()
    lost = kconfig.dropped(text, fragments, tree)
    hard = [d for d in lost if d.optional is None]
    if hard:
        more = f" (and {len(hard) - 1} more: " + ", ".join(
            f"{d.symbol} from {d.fragment!r}" for d in hard[1:]) + ")" if len(hard) > 1 else ""
        raise ConfigError(f"kernel {name!r}: {hard[0].describe()}{more}",
                          "add what it depends on to a fragment of the project's, or drop "
                          "the fragment that asks for it")
    for d in lost:
        progress(f"kguest: kernel {name!r}: without {d.symbol} ({d.fragment}: {d.optional})")
    return text


def build(
    name: str, tree: Path, src: Source, fragments: tuple[frag.Fragment, ...], cc: str,
    d: Path, progress: Say, cache: Cache,
) -> dict[str, object]:
    """Configure and build into the entry ``d``; the entry's metadata."""
    out = d / "build"
    out.mkdir()
    log = d / "build.log"
    t0 = time.monotonic()
    progress(f"kguest: kernel {name!r}: configuring {src.label} (tinyconfig + "
             f"{', '.join(f.name for f in fragments)})")
    text = configure(tree, out, fragments, d / "config.log", name, progress)
    options = sum(1 for ln in text.splitlines() if ln.endswith("=y"))
    jobs = os.cpu_count() or 1
    est = estimate(cache, options, jobs)
    guess = (f"; about {_minutes(est.total / est.rate)} on this machine"
             if est.total and est.rate else
             f"; about {est.total} objects, typically 10-20 min on 2 CPUs" if est.total else "")
    what = f"building kernel {name!r}"
    progress(f"kguest: {what} (make -j{jobs} bzImage modules, log {log}){guess}")
    made = run_make(["make", "-C", str(tree), f"O={out}", f"-j{jobs}", "bzImage", "modules"],
                    log, what, progress, est)
    version = subprocess.run(["make", "-s", "-C", str(tree), f"O={out}", "kernelrelease"],
                             capture_output=True, text=True, env=_clean_env()).stdout.strip()
    root = d / "root"
    with log.open("a") as f:
        r = subprocess.run(["make", "-C", str(tree), f"O={out}", "modules_install",
                            f"INSTALL_MOD_PATH={root}", "INSTALL_MOD_STRIP=1"],
                           stdout=f, stderr=subprocess.STDOUT, env=_clean_env())
    mods = root / "lib/modules" / version
    if r.returncode != 0 or not (mods / "modules.dep").is_file():
        raise KernelError(f"kernel {name!r}: modules_install failed", f"read {log}")
    for link in ("build", "source"):
        (mods / link).unlink(missing_ok=True)
    seconds = time.monotonic() - t0
    freed = prune(out)
    _record(cache, {"options": options, "objects": made.objects, "seconds": round(made.seconds),
                    "cpu_seconds": round(made.cpu_seconds), "jobs": jobs, "source": src.label,
                    "load": os.getloadavg()[0]})
    progress(f"kguest: kernel {name!r} ({version}) built in {_minutes(seconds)} "
             f"({made.objects} objects, {made.cpu_seconds / 60:.0f} CPU-minutes; "
             f"{freed >> 20} MiB of objects removed)")
    missing = [d.symbol for d in kconfig.dropped(text, fragments) if d.optional is not None]
    return {
        "version": version, "vmlinuz": "build/arch/x86/boot/bzImage", "kdir": "build",
        "modules": str(mods.relative_to(d)), "source": src.label,
        "fragments": [f.name for f in fragments], "compiler": cc, "seconds": round(seconds),
        "cpu_seconds": round(made.cpu_seconds), "objects": made.objects, "without": missing,
    }


def prune(out: Path) -> int:
    """Remove the build's object files, except what building external modules needs
    (scripts/, tools/): the tree stays a headers directory.  Bytes freed."""
    freed = 0
    for d, dirs, files in os.walk(out):
        rel = Path(d).relative_to(out)
        if rel.parts[:1] in (("scripts",), ("tools",)):
            dirs[:] = []
            continue
        for f in files:
            if f.endswith((".o", ".a")):
                p = Path(d) / f
                freed += p.stat().st_size
                p.unlink()
    return freed


def resolve(
    name: str, spec: str, words: tuple[str, ...], root: Path, cache: Cache, say: Say,
    timeout_mul: float | None = None,
) -> Kernel:
    fragments = frag.load(root, words)
    host.ensure_tools(TOOLS, f"building kernel {name!r}", say)
    src = find_source(spec, root, cache, say)
    cc = host.compiler_text("gcc")
    k = config_key(src, cc, fragments)

    def make(d: Path, progress: Callable[[str], None]) -> dict[str, object]:
        tree = source_tree(src, cache, progress)
        return build(name, tree, src, fragments, cc, d, progress, cache)

    d, meta = cache.entry(f"kernels/source-{k}", f"kernel {name!r}", make, say)
    paths = [meta.get(x) for x in ("vmlinuz", "kdir", "modules")]
    if not all(isinstance(x, str) for x in paths):
        raise KernelError(f"{d}: unreadable cache entry", f"remove {d} and retry")
    vmlinuz, kdir, mods = (d / str(x) for x in paths)
    kern = check_match(name, vmlinuz, kdir)
    mul = timeout_mul if timeout_mul is not None else slowdown(fragments)
    return dataclasses.replace(kern, modules=mods, timeout_mul=mul)


def config_key(src: Source, cc: str, fragments: tuple[frag.Fragment, ...]) -> str:
    """What a build depends on: the source's content, the compiler, and the options the
    fragments ask for (not their comments: a note changes no kernel)."""
    want = kconfig.requested(fragments)
    return key(FORMAT, src.digest, cc, *sorted(f"{s}={r.value}" for s, r in want.items()))


def slowdown(fragments: tuple[frag.Fragment, ...]) -> float:
    """How much slower tests run on a kernel with these fragments (their product)."""
    mul = 1.0
    for f in fragments:
        mul *= f.slowdown
    return round(mul, 1)
