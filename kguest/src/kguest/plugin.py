"""pytest plugin: YAML scenarios as items, one guest per xdist worker, kernel trouble per test.

Registered through the ``pytest11`` entry point only.  Options are in the
"kguest" group of ``pytest --help``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from . import config as config_mod
from .config import MatrixKey
from .errors import BootError, CommandTimeout, GuestDied, KguestError, ScenarioError
from .flags import add_guest_flags, options_from
from .guest import Guest, TestRun
from .results import (
    Outcome,
    Verdict,
    auto_verdict,
    expect_errno,
    expect_signal,
    ltp_verdict,
    plain_verdict,
    tap_verdict,
)
from .scenarios import ISOLATIONS, Case, load_file
from .session import GuestPool, Provisioner, parse_module_params

SESSION_KEY = pytest.StashKey["KguestSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kguest", "kernel guest (kguest)")
    add_guest_flags(g.addoption, plugin=True)
    g.addoption(
        "--kernels",
        default="default",
        help="comma list of kernel names whose scenario items run, or 'all' (default: default)",
    )
    g.addoption("--big", action="store_true", help="also run big matrix values (e.g. 1G sizes)")
    g.addoption(
        "--kguest-timeout",
        type=float,
        default=None,
        help="default per-test timeout in seconds (config: timeout)",
    )
    g.addoption(
        "--kguest-isolation",
        choices=ISOLATIONS,
        default=None,
        help="test: every guest test gets a freshly restored guest "
        "(default: per the scenario key / marker, else one guest per worker)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kguest(timeout=None, backend=None, kernel=None, isolation=None): "
        "per-test guest settings for the kguest_guest and kguest_run fixtures "
        "(isolation='test': a freshly restored guest, thrown away after the test)",
    )
    config.addinivalue_line("markers", "big: a big matrix value, collected only with --big")
    try:
        parse_module_params(config.option.module_param)
    except KguestError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[SESSION_KEY] = KguestSession(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    s = config.stash.get(SESSION_KEY, None)
    if s is not None:
        s.close()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand every worker the controller's session id (one build per run)."""
    s = node.config.stash.get(SESSION_KEY, None)
    if s is not None:
        node.workerinput["kguest_session"] = s.session_id


class KguestSession:
    """Per-process state: the provisioner and the pool of guests (created lazily)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        winput = getattr(config, "workerinput", None)
        self.worker = winput["workerid"] if winput else "main"
        self.session_id = (winput or {}).get("kguest_session") or uuid.uuid4().hex
        self._prov: Provisioner | None = None
        self._pool: GuestPool | None = None
        self._errors: dict[tuple[str | None, str], KguestError] = {}

    def say(self, line: str) -> None:
        """Progress to the terminal, past pytest's output capture (stderr under --tap/xdist)."""
        pm = self.config.pluginmanager
        tr = pm.get_plugin("terminalreporter") if self.worker == "main" else None
        cap = pm.get_plugin("capturemanager")
        with cap.global_and_fixture_disabled() if cap is not None else nullcontext():
            if tr is not None:
                tr.write_line(line)
            else:
                prefix = "" if self.worker == "main" else f"[{self.worker}] "
                print(f"{prefix}{line}", file=sys.stderr, flush=True)

    @property
    def cfg(self) -> config_mod.ProjectConfig:
        return self.prov.cfg

    @property
    def prov(self) -> Provisioner:
        if self._prov is None:
            cfg = config_mod.load(config_mod.find_root(Path(str(self.config.rootpath))))
            self._prov = Provisioner(
                cfg,
                options_from(self.config.option),
                self.say,
                self.session_id,
                self.worker,
            )
        return self._prov

    @property
    def pool(self) -> GuestPool:
        if self._pool is None:
            self._pool = GuestPool(self.prov)
        return self._pool

    def guest(self, backend: str | None, kernel: str, fresh: bool = False) -> Guest:
        """A booted guest; provisioning and boot errors are remembered so later
        tests fail fast with the same message instead of retrying for minutes.
        ``fresh``: one that has run no test yet (restored again if it has)."""
        key = (backend, kernel)
        if key in self._errors:
            raise self._errors[key]
        try:
            spec = self.prov.spec(backend, kernel)
            return self.pool.fresh(spec) if fresh else self.pool.get(spec)
        except BootError as e:
            self._errors[key] = e
            raise
        except KguestError as e:
            self._errors[key] = e
            raise

    def run_test(
        self, backend: str | None, kernel: str, command: str, timeout: float
    ) -> tuple[Guest, TestRun]:
        guest = self.guest(backend, kernel)
        mul = guest.spec.kernel.timeout_mul
        if mul != 1:
            command = f"LTP_TIMEOUT_MUL={mul:g} {command}"
            timeout *= mul
        try:
            return guest, guest.run_test(command, timeout)
        except (GuestDied, CommandTimeout) as e:
            # the looks at taint/dmesg around the test failed: the guest is unusable
            self.pool.discard(guest)
            raise GuestTestFailure(
                f"guest stopped answering around `{command}`: {e}\n"
                f"-> restarted for the next test; console log: "
                f"{guest.log.path}"
            ) from e

    def isolated(self, wanted: str | None) -> bool:
        """Whether a test gets a guest of its own: the option wins, then the test's choice."""
        return (self.config.option.kguest_isolation or wanted or "worker") == "test"

    def setup_guest(
        self, item: pytest.Item, backend: str | None, kernel: str, isolated: bool
    ) -> Guest | None:
        """Start (or restore) the test's guest in the setup phase, so that the boot
        is not counted as the test's own time; the start is recorded as a
        property of the test.  An error is raised again by the test itself
        (``guest()`` remembers it): it fails the test, as it always did."""
        started = self.pool.started
        try:
            g = self.guest(backend, kernel, fresh=isolated)
        except KguestError:
            return None
        if self.pool.started != started:
            item.user_properties.append(
                ("kguest_guest_start", f"{g.started_from} {g.boot_seconds:.2f} s")
            )
        return g

    def default_timeout(self) -> float:
        t = self.config.option.kguest_timeout
        return float(t) if t else self.cfg.timeout

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


# --- scenario collection --------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    root = config_mod.find_root(file_path.parent)
    if root is None:
        return None
    try:
        cfg = config_mod.load(root)
    except KguestError as e:
        # A broken [tool.kguest] fails collection, loudly: never "collected 0 items".
        return BrokenFile.from_parent(parent, path=file_path, error=str(e))
    if not file_path.resolve().is_relative_to(cfg.scenario_path.resolve()):
        if _named_on_command_line(parent.config, file_path):
            return BrokenFile.from_parent(
                parent,
                path=file_path,
                error=f"{file_path} is not a scenario: it is outside scenario_dir = "
                f"{cfg.scenario_dir!r} ({cfg.source})\n"
                f"  -> move it to {cfg.scenario_path}, or set scenario_dir in [tool.kguest]",
            )
        return None
    return ScenarioFile.from_parent(parent, path=file_path, keys=cfg.matrix)


def _named_on_command_line(config: pytest.Config, path: Path) -> bool:
    here = config.invocation_params.dir
    for arg in config.args:
        p = Path(arg.split("::", 1)[0])
        if (here / p).resolve() == path.resolve():
            return True
    return False


class BrokenFile(pytest.File):
    """A YAML file kguest cannot collect: the error fails collection."""

    def __init__(self, *, error: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.error = error

    def collect(self) -> Iterator[pytest.Item]:
        raise self.CollectError(self.error)


class ScenarioFile(pytest.File):
    def __init__(self, *, keys: tuple[MatrixKey, ...] = (), **kw: Any) -> None:
        super().__init__(**kw)
        self.keys = keys

    def collect(self) -> Iterator[pytest.Item]:
        rel = os.path.relpath(self.path, self.config.rootpath)
        try:
            cases = load_file(self.path, rel, self.keys)
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        for c in cases:
            item = ScenarioItem.from_parent(self, name=c.id, case=c)
            for tag in c.tags:
                self.config.addinivalue_line("markers", f"{tag}: scenario tag")
                item.add_marker(tag)
            if c.big:
                item.add_marker("big")
            yield item


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kernels = {k.strip() for k in config.option.kernels.split(",") if k.strip()}
    keep, drop = [], []
    for it in items:
        if isinstance(it, ScenarioItem):
            c = it.case
            if (c.big and not config.option.big) or (
                "all" not in kernels and c.kernel not in kernels
            ):
                drop.append(it)
                continue
        keep.append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # One guest per worker: run each kernel's (and backend's) items together,
    # so that a worker reboots when the kernel changes, not at every item.
    scen = sorted((it for it in keep if isinstance(it, ScenarioItem)), key=_guest_key)
    items[:] = [*(it for it in keep if not isinstance(it, ScenarioItem)), *scen]


def _guest_key(item: ScenarioItem) -> tuple[bool, str, str]:
    c = item.case
    return c.kernel != "default", c.kernel, c.backend or ""


class GuestTestFailure(Exception):
    """A scenario item failed; the message is the whole story."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, case: Case, **kw: Any) -> None:
        super().__init__(**kw)
        self.case = case
        self._guest: Guest | None = None
        self._isolated = False

    def setup(self) -> None:
        if self.case.skip:
            return
        session: KguestSession = self.config.stash[SESSION_KEY]
        self._isolated = session.isolated(self.case.isolation)
        self._guest = session.setup_guest(self, self.case.backend, self.case.kernel, self._isolated)

    def teardown(self) -> None:
        # an isolated test's guest state must not reach the next test
        if self._isolated and self._guest is not None:
            self.config.stash[SESSION_KEY].pool.discard(self._guest)
        self._guest = None

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.case.id

    def runtest(self) -> None:
        c = self.case
        if c.skip:
            pytest.skip(c.skip)
        session: KguestSession = self.config.stash[SESSION_KEY]
        timeout = c.timeout or session.default_timeout()
        guest, run = session.run_test(c.backend, c.kernel, c.command, timeout)
        finish(self, session, guest, run, c.command, c.expect.kind, c.expect.name, c.format)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (GuestTestFailure, KguestError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def verdict_for(run: TestRun, expect_kind: str, expect_name: str, fmt: str) -> Verdict:
    assert run.result is not None
    out, status = run.result.output, run.result.status
    if run.timed_out:
        why = f"timed out after {run.result.duration:.0f} s (interrupted with ^C)"
        if run.stuck:
            why += f"; stuck in the kernel:\n{run.stuck}"
        return Verdict(Outcome.FAIL, why)
    if expect_kind == "signal":
        return expect_signal(status, expect_name)
    if expect_kind == "errno":
        return expect_errno(out, status, expect_name)
    reader = {"auto": auto_verdict, "ltp": ltp_verdict, "tap": tap_verdict}.get(fmt)
    return reader(out, status) if reader else plain_verdict(status)


def finish(
    item: pytest.Item,
    session: KguestSession,
    guest: Guest,
    run: TestRun,
    command: str,
    expect_kind: str = "pass",
    expect_name: str = "",
    fmt: str = "auto",
) -> None:
    """Turn a TestRun into pass / fail / skip, restarting the guest after trouble."""
    if run.result is not None:
        item.add_report_section("call", "guest output", run.result.output)
    if run.kernel_log.strip():
        item.add_report_section("call", "kernel log", run.kernel_log[-20000:])
    if run.died:
        session.pool.discard(guest)
        raise GuestTestFailure(
            f"guest died or stopped answering during `{command}`"
            + (f"\n{run.trouble.report()}" if run.trouble else "")
            + f"\n--- console (tail) ---\n{run.died}\n"
            f"-> the guest is restarted for the next test; console log: {guest.log.path}"
        )
    if run.trouble:
        session.pool.discard(guest)
        raise GuestTestFailure(
            f"kernel trouble during `{command}`:\n{run.trouble.report()}\n"
            f"--- test output ---\n{run.result.output if run.result else ''}\n"
            f"-> the guest is restarted for the next test; console log: {guest.log.path}"
        )
    v = verdict_for(run, expect_kind, expect_name, fmt)
    if run.timed_out:
        # whatever the command left behind (stuck tasks, held module references) must not
        # reach the next test
        session.pool.discard(guest)
    if v.outcome is Outcome.SKIP:
        if os.environ.get("CI") == "true":
            # In CI a guest test that cannot run is a broken prerequisite.
            raise GuestTestFailure(f"`{command}` skipped under CI=true: {v.reason}")
        pytest.skip(v.reason)
    if v.outcome is Outcome.FAIL:
        assert run.result is not None
        raise GuestTestFailure(f"`{command}`: {v.reason}\n--- output ---\n{run.result.output}")


# --- fixtures for Python tests ----------------------------------------------------------


@pytest.fixture
def kguest_guest(request: pytest.FixtureRequest) -> Iterator[Guest]:
    """A booted guest of this worker (shared across tests; restarted when it dies).

    ``@pytest.mark.kguest(backend="vng", kernel="default")`` picks another one;
    ``isolation="test"`` a freshly restored one, thrown away after the test.
    """
    session: KguestSession = request.config.stash[SESSION_KEY]
    m = request.node.get_closest_marker("kguest")
    kw = m.kwargs if m else {}
    isolated = session.isolated(kw.get("isolation"))
    try:
        g = session.setup_guest(
            request.node, kw.get("backend"), kw.get("kernel", "default"), isolated
        )
        if g is None:  # the error, remembered, is raised here
            g = session.guest(kw.get("backend"), kw.get("kernel", "default"))
    except KguestError as e:
        # the user's set-up (config, build, kernel, boot): its message, not a traceback
        pytest.fail(str(e), pytrace=False)
    yield g
    if isolated:
        session.pool.discard(g)


class GuestRunner:
    """``kguest_run(command, timeout=None, expect="pass", expect_name="", fmt="auto")``.

    Runs ``command`` (a shell command line) in the worker's guest as a test: taint
    and the kernel log are checked around it, and its result is judged like a
    scenario item's.

    * ``timeout``: seconds (default: the ``kguest`` marker's, else ``--kguest-timeout``,
      else the config's ``timeout``);
    * ``expect``: ``"pass"``, ``"signal"`` or ``"errno"``, with ``expect_name`` the
      signal (``"SIGSEGV"``) or errno (``"EINVAL"``) name expected instead of success;
    * ``fmt``: how to read a passing result: ``"auto"``, ``"ltp"``, ``"tap"`` or
      ``"exit"`` (the scenario key ``format``).

    Returns the :class:`~kguest.guest.TestRun` when the test passed: ``.result`` is
    the :class:`~kguest.console.CommandResult` (``output``, ``status``, ``duration``),
    ``.kernel_log`` the kernel messages printed meanwhile.  Otherwise the test fails
    (kernel trouble, a wrong result, a timeout: the guest is then restarted for the
    next test) or is skipped (TCONF, TAP SKIP), and nothing is returned.
    """

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.session: KguestSession = request.config.stash[SESSION_KEY]

    def __call__(
        self,
        command: str,
        timeout: float | None = None,
        expect: str = "pass",
        expect_name: str = "",
        fmt: str = "auto",
    ) -> TestRun:
        m = self.request.node.get_closest_marker("kguest")
        kw = m.kwargs if m else {}
        t = timeout or kw.get("timeout") or self.session.default_timeout()
        try:
            guest, run = self.session.run_test(
                kw.get("backend"), kw.get("kernel", "default"), command, float(t)
            )
        except KguestError as e:
            pytest.fail(str(e), pytrace=False)
        finish(self.request.node, self.session, guest, run, command, expect, expect_name, fmt)
        return run


@pytest.fixture
def kguest_run(request: pytest.FixtureRequest) -> Iterator[GuestRunner]:
    session: KguestSession = request.config.stash[SESSION_KEY]
    m = request.node.get_closest_marker("kguest")
    kw = m.kwargs if m else {}
    isolated = session.isolated(kw.get("isolation"))
    g = session.setup_guest(request.node, kw.get("backend"), kw.get("kernel", "default"), isolated)
    yield GuestRunner(request)
    if isolated and g is not None:
        session.pool.discard(g)
