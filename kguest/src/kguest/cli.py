"""The ``kguest`` command: run a command in a guest, open a shell, build images, benchmark."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pexpect

from . import config, coverage, kernels
from .errors import BootError, CommandTimeout, GuestDied, KguestError
from .flags import add_guest_flags, options_from
from .pool import GuestPool
from .progress import to_stderr
from .provision import Provisioner
from .trouble import TROUBLE_RX, scan


def _common(p: argparse.ArgumentParser) -> None:
    add_guest_flags(p.add_argument, plugin=False)


def _provisioner(a: argparse.Namespace) -> Provisioner:
    return Provisioner(config.load(), options_from(a), to_stderr, worker="cli")


def cmd_run(a: argparse.Namespace) -> int:
    if not a.command:
        raise KguestError("nothing to run", "usage: kguest run -- CMD [ARGS...]")
    prov = _provisioner(a)
    run_dir = coverage.run_dir(prov.cfg, f"cli-{os.getpid()}-{int(time.time())}")
    harvester = coverage.Harvester(prov.cfg, run_dir, "cli") if a.kguest_coverage else None
    pool = GuestPool(prov, watchers=[harvester] if harvester else [])
    cmd = a.command[0] if len(a.command) == 1 else shlex.join(a.command)
    try:
        g = pool.get(prov.spec())
        r = g.run(cmd, a.timeout)
    except CommandTimeout as e:
        raise CommandTimeout(
            e.message,
            f"give it longer with kguest run --timeout SECONDS (now {a.timeout:g}), "
            "or find why it hangs",
            output=e.output,
            recovered=e.recovered,
        ) from None
    finally:
        pool.close()
    sys.stdout.write(r.output)
    if harvester is not None:
        rep = coverage.report(prov.cfg, run_dir, coverage.coverage_dir(prov.cfg), to_stderr)
        for line in rep.lines() if rep else ["no coverage collected"]:
            print(f"kguest: coverage: {line}", file=sys.stderr)
        if rep is not None:
            print(f"kguest: coverage: lcov {rep.tracefile}, html {rep.html}", file=sys.stderr)
    return r.status


def cmd_shell(a: argparse.Namespace) -> int:
    """An interactive shell on the guest's console, started like any other guest
    (restored from its snapshot when there is one).  Exit status 0 when the user
    leaves (``poweroff -f``, Ctrl-]); 1, with what the kernel said, when the guest
    dies under the user (a panic)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise KguestError(
            "kguest shell needs a terminal: stdin or stdout is not a tty",
            "run it from a terminal; for a command without one: kguest run -- CMD",
        )
    prov = _provisioner(a)
    g = prov.new_guest(prov.spec()).boot()
    try:
        assert g.child is not None and g.console is not None
        g.console.send_line("stty echo; PS1='kguest# '; export PS1")
        to_stderr("kguest: interactive shell; `poweroff -f` or Ctrl-] quits")
        mark = g.log.total

        def log_output(data: bytes) -> bytes:
            g.log.add(data.decode("utf-8", errors="replace").replace("\r", ""))
            return data

        g.child.interact(escape_character="\x1d", output_filter=log_output)
        if not _console_ended(g.child, log_output):  # Ctrl-]
            return 0
        trouble = scan(g.log.since(mark))
        if not trouble:  # poweroff
            return 0
        first = next((ln for ln in trouble[0].splitlines() if TROUBLE_RX.search(ln)), "")
        print(
            f"\nkguest: the guest died: {first.strip()}\n"
            f"  -> the kernel's words are in the console log {g.log.path}",
            file=sys.stderr,
        )
        return 1
    finally:
        g.close()


def _console_ended(child: pexpect.spawn, log: Callable[[bytes], bytes]) -> bool:
    """After ``interact()``: whether the console reached its end (QEMU exits) rather than
    the user escaping.  The end is read, not guessed from the process, which may still
    be exiting when the pty already said EOF."""
    while True:
        try:
            log(child.read_nonblocking(size=4096, timeout=0.5))
        except pexpect.EOF:
            return True
        except pexpect.TIMEOUT:
            return not child.isalive()


def cmd_image(a: argparse.Namespace) -> int:
    prov = _provisioner(a)
    spec = prov.spec(backend="initramfs")
    print(spec.initrd)
    return 0


def cmd_kernel(a: argparse.Namespace) -> int:
    """Fetch or build the project's kernel NAME (once; cached) and print where it is."""
    k = kernels.select(config.load(), to_stderr, a.name)
    print(f"vmlinuz {k.vmlinuz}\nkdir {k.kdir}\nversion {k.version}")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import bench_harness

    return bench_harness(config.load(), options_from(a), Path(a.output), a.quick, a.pytest_args)


class _Parser(argparse.ArgumentParser):
    """Usage errors end like every other user error: one line, exit 125."""

    def error(self, message: str) -> NoReturn:
        self.exit(125, f"kguest: error: {message}\n  -> see {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kguest", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="boot, run CMD, print its output, exit with its status")
    _common(r)
    r.add_argument("--timeout", type=float, default=600.0, help="seconds for CMD")
    r.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("shell", help="boot and attach an interactive shell")
    _common(s)
    s.set_defaults(fn=cmd_shell)
    i = sub.add_parser("image", help="build (or find cached) initramfs; print its path")
    _common(i)
    i.set_defaults(fn=cmd_image)
    k = sub.add_parser(
        "kernel", help="fetch or build a declared kernel (cached); print its vmlinuz and kdir"
    )
    k.add_argument("name", help="a kernel of [tool.kguest.kernels], or default")
    k.set_defaults(fn=cmd_kernel)
    b = sub.add_parser(
        "bench-harness", help="time boots, snapshots and the suite with/without them"
    )
    _common(b)
    b.add_argument("--output", default="build/kguest/bench-harness.json")
    b.add_argument("--quick", action="store_true", help="boot times only (no suite runs)")
    b.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- extra pytest arguments")
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if getattr(a, "command", None) and a.command[:1] == ["--"]:
        a.command = a.command[1:]
    if getattr(a, "pytest_args", None) and a.pytest_args[:1] == ["--"]:
        a.pytest_args = a.pytest_args[1:]
    t0 = time.monotonic()
    try:
        rc: int = a.fn(a)
    except (BootError, GuestDied) as e:
        print(f"kguest: error: {e}", file=sys.stderr)
        if e.console:
            print(f"--- console ---\n{e.console[-6000:]}", file=sys.stderr)
        return 125
    except CommandTimeout as e:
        print(f"kguest: error: {e}\n--- output ---\n{e.output}", file=sys.stderr)
        return 124
    except KguestError as e:
        print(f"kguest: error: {e}", file=sys.stderr)
        return 125
    except OSError as e:
        # a file or program the user's setup names cannot be used (permissions, missing)
        print(f"kguest: error: {e}", file=sys.stderr)
        return 125
    except KeyboardInterrupt:
        return 130
    if os.environ.get("KGUEST_VERBOSE"):
        print(f"kguest: total {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
