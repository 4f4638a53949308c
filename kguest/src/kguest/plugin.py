"""pytest plugin: YAML scenarios as items, one guest per xdist worker, kernel trouble per test.

Registered through the ``pytest11`` entry point only.  Options are in the
"kguest" group of ``pytest --help``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NoReturn

import pytest

from . import config as config_mod
from . import coverage, faultsweep, kunit
from .config import MatrixKey
from .errors import CommandTimeout, GuestDied, KguestError, ScenarioError
from .flags import add_guest_flags, options_from
from .guest import Guest, TestRun
from .kernels import Registry, kconfig
from .options import ModuleParams, parse_module_params
from .pool import GuestPool
from .provision import Provisioner
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
from .symbols import Symbolizer

SESSION_KEY = pytest.StashKey["KguestSession"]()
KERNEL_KEY = pytest.StashKey[str]()  # the kernel of a Python test's copy for --kernels
GUEST_FIXTURES = ("kguest_guest", "kguest_run")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kguest", "kernel guest (kguest)")
    add_guest_flags(g.addoption, plugin=True)
    g.addoption(
        "--kernels",
        default="default",
        help="comma list of kernels the guest tests run on (scenario items and Python "
        "tests using kguest's fixtures), or 'all' for every declared one (default: default)",
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
    g.addoption(
        "--kguest-repeat",
        type=int,
        default=1,
        metavar="N",
        help="run every test N times (ids gain -1ofN ... -NofN), to hunt a flaky one",
    )
    g.addoption(
        "--kguest-coverage-dir",
        default=None,
        metavar="DIR",
        help="where --kguest-coverage writes its reports (default: <build_dir>/coverage)",
    )
    g.addoption(
        "--kguest-fault-sweep",
        action="store_true",
        help="run each scenario item again with the N-th fault-injectable call made on the "
        "modules' behalf failing, N = 1, 2, ... (a kernel with fault injection); "
        "one report per N: ITEM[...-sweep-KIND-N]",
    )
    g.addoption(
        "--kguest-sweep-tag",
        default=None,
        metavar="TAG",
        help="with --kguest-fault-sweep: sweep only the scenario items with this tag; the "
        "others run once, as usual (one session for the suite and the sweep of a few)",
    )
    g.addoption(
        "--kguest-sweep-no-kmemleak",
        action="store_true",
        help="no kmemleak scan after each swept run (a scan of a KASAN guest under TCG "
        "takes a minute; the project's leak_check still runs)",
    )
    g.addoption(
        "--kguest-sweep-max-n",
        type=int,
        default=None,
        metavar="N",
        help="largest N per kind and test (config: [tool.kguest.fault_sweep] max_n, 100)",
    )
    g.addoption(
        "--kguest-sweep-seconds",
        type=float,
        default=None,
        metavar="S",
        help="time for one test's sweep (config: [tool.kguest.fault_sweep] seconds, 1800)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kguest(timeout=None, backend=None, kernel=None, isolation=None, module_params=None, "
        "cmdline=None): per-test guest settings for the kguest_guest and kguest_run fixtures "
        "(isolation='test': a freshly restored guest, thrown away after the test; "
        "module_params={'mod': ['name=value']} and cmdline=['word']: a guest with these)",
    )
    config.addinivalue_line("markers", "big: a big matrix value, collected only with --big")
    try:
        parse_module_params(config.option.module_param)
        if config.option.kguest_repeat < 1:
            raise KguestError(
                f"--kguest-repeat {config.option.kguest_repeat}: not a count", "give N >= 1"
            )
        if not hasattr(config, "workerinput"):
            _check_project(config)
    except KguestError as e:
        raise pytest.UsageError(f"kguest: {e}") from None
    config.stash[SESSION_KEY] = KguestSession(config)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(SubReports(config.stash[SESSION_KEY]), "kguest-subreports")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlColumns(), "kguest-html")


def _check_project(config: pytest.Config) -> None:
    """The project's [tool.kguest] and the kernel names asked for: a typo is one error
    now, not one failure per test later."""
    root = config_mod.find_root(Path(str(config.rootpath)))
    if root is None:
        return
    cfg = config_mod.load(root)
    names = Registry(cfg.kernels, cfg.root).names()
    for k in _kernel_words(config):
        if k not in names and k != "all":
            raise KguestError(
                f"--kernels: unknown kernel {k!r}",
                f"declared: {', '.join(names)} (or all); declare others in "
                f'[tool.kguest.kernels."{k}"] of {cfg.source}',
            )


def _kernel_words(config: pytest.Config) -> list[str]:
    return [k.strip() for k in config.option.kernels.split(",") if k.strip()]


def pytest_unconfigure(config: pytest.Config) -> None:
    s = config.stash.get(SESSION_KEY, None)
    if s is not None:
        s.close()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Guests off before xdist tells the controller this worker is done (their counters
    collected); then, in the controller, the coverage of every worker merged."""
    s = session.config.stash.get(SESSION_KEY, None)
    if s is None:
        return
    s.close_guests()
    if s.worker != "main" or not session.config.option.kguest_coverage:
        return
    try:
        cfg = s.prov.cfg
        out = Path(session.config.option.kguest_coverage_dir or coverage.coverage_dir(cfg))
        s.coverage = coverage.report(cfg, coverage.run_dir(cfg, s.session_id), out, s.say)
    except KguestError as e:
        s.say(f"kguest: coverage: {e}")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR


def pytest_terminal_summary(terminalreporter: Any) -> None:
    config = terminalreporter.config
    s = config.stash.get(SESSION_KEY, None)
    if s is None:
        return
    tr = terminalreporter
    if s.sweep_rows:
        tr.write_sep("=", "kguest fault sweep")
        for line in faultsweep.table(s.sweep_rows):
            tr.write_line(line)
    if config.option.kguest_coverage:
        tr.write_sep("=", "kguest coverage")
        rep = s.coverage
        if rep is None:
            tr.write_line("no coverage collected (no guest test ran)")
            return
        for line in rep.lines():
            tr.write_line(line)
        tr.write_line(
            f"({rep.collections} collections) lcov: {rep.tracefile}  html: {rep.html}  "
            f"cobertura: {rep.cobertura}"
        )
        run = coverage.run_dir(s.prov.cfg, s.session_id)
        for lost in sorted(run.glob("lost-*.txt")):
            for line in lost.read_text().splitlines():
                tr.write_line(f"lost (a guest that died takes its counts along): {line}")


class SubReports:
    """In the process that reports (the controller, or the only process): the results an
    item carries for others (each N of a sweep, a KUnit case its source lacks) are
    reported right after its own; the sweep's rows are kept for the summary."""

    def __init__(self, session: KguestSession) -> None:
        self.session = session

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        row = props.get("kguest_sweep")
        if isinstance(row, str):
            self.session.sweep_rows.append(faultsweep.Row(**json.loads(row)))
        subs = props.get(SUBREPORTS)
        if not isinstance(subs, str):
            return
        for sub in json.loads(subs):
            rep = pytest.TestReport(
                nodeid=sub["nodeid"],
                location=report.location,
                keywords={},
                outcome="passed" if sub["passed"] else "failed",
                longrepr=None if sub["passed"] else sub["text"],
                when="call",
                sections=[("Captured stdout call", sub["stdout"])] if sub["stdout"] else [],
                duration=sub["duration"],
                user_properties=[tuple(p) for p in sub["props"]],
            )
            self.session.config.hook.pytest_runtest_logreport(report=rep)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: hand every worker the controller's session id (one build per run)."""
    s = node.config.stash.get(SESSION_KEY, None)
    if s is not None:
        node.workerinput["kguest_session"] = s.session_id


# --- what guest a test wants ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GuestRequest:
    """The guest a test runs in: the run's, or one with other settings."""

    backend: str | None = None
    kernel: str = "default"
    module_params: ModuleParams = ()
    cmdline: tuple[str, ...] = ()
    where: str = ""  # where params and cmdline come from, for errors

    @classmethod
    def of_case(cls, c: Case) -> GuestRequest:
        return cls(c.backend, c.kernel, c.module_params, c.cmdline, f"{c.path}:{c.line}")

    @classmethod
    def of_node(cls, node: pytest.Item) -> GuestRequest:
        kw = _marker(node)
        where = f"{node.nodeid}: @pytest.mark.kguest"
        try:
            params = (
                config_mod.module_params(kw["module_params"], where, "module_params")
                if kw.get("module_params")
                else ()
            )
        except KguestError as e:
            raise pytest.UsageError(str(e)) from None
        return cls(
            kw.get("backend"),
            node.stash.get(KERNEL_KEY, kw.get("kernel", "default")),
            params,
            tuple(kw.get("cmdline") or ()),
            where,
        )


def _marker(node: pytest.Item) -> dict[str, Any]:
    m = node.get_closest_marker("kguest")
    return dict(m.kwargs) if m else {}


# --- per-process state -------------------------------------------------------------------


class SetupError(Exception):
    """The guests of this run cannot be set up (config, kernel, build, image, boot)."""


class KguestSession:
    """Per-process state: the provisioner and the pool of guests (created lazily)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        winput = getattr(config, "workerinput", None)
        self.worker = winput["workerid"] if winput else "main"
        self.session_id = (winput or {}).get("kguest_session") or uuid.uuid4().hex
        self._prov: Provisioner | None = None
        self._pool: GuestPool | None = None
        self._errors: dict[GuestRequest, KguestError] = {}
        self._symbolizer: Symbolizer | None = None
        self.harvester: coverage.Harvester | None = None
        self.coverage: coverage.Report | None = None
        self.sweep_rows: list[faultsweep.Row] = []
        self._kunit: dict[tuple[GuestRequest, str], KunitRun] = {}

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
    def prov(self) -> Provisioner:
        if self._prov is None:
            root = config_mod.find_root(Path(str(self.config.rootpath)))
            cfg = config_mod.load(root)
            self._prov = Provisioner(
                cfg, options_from(self.config.option), self.say, self.session_id, self.worker
            )
        return self._prov

    @property
    def pool(self) -> GuestPool:
        if self._pool is None:
            if self.config.option.kguest_coverage:
                cfg = self.prov.cfg
                self.harvester = coverage.Harvester(
                    cfg, coverage.run_dir(cfg, self.session_id), self.worker
                )
            self._pool = GuestPool(self.prov, watchers=[self.harvester] if self.harvester else [])
        return self._pool

    def symbolizer(self, guest: Guest) -> Symbolizer:
        mods = (*guest.spec.modules, *guest.spec.test_modules)
        if self._symbolizer is None or set(self._symbolizer.modules.values()) != set(mods):
            self._symbolizer = Symbolizer(mods, self.prov.cfg.root)
        return self._symbolizer

    def guest(self, req: GuestRequest, fresh: bool = False) -> Guest:
        """A started guest for ``req``; a set-up error is remembered, so that later
        tests fail fast with it instead of retrying for minutes.  ``fresh``: one that
        has run no test yet (restored again if it has)."""
        if req in self._errors:
            raise self._errors[req]
        try:
            spec = self.prov.spec(
                req.backend, req.kernel, req.module_params, req.cmdline, req.where
            )
            return self.pool.fresh(spec) if fresh else self.pool.get(spec)
        except KguestError as e:
            self._errors[req] = e
            raise

    def setup_guest(self, item: pytest.Item, req: GuestRequest, isolated: bool) -> Guest:
        """Start (or restore) the test's guest in its setup phase, so that the start is
        not counted as the test's own time; it is recorded as a property of the test."""
        started = self.pool.started if self._pool is not None else -1
        try:
            g = self.guest(req, fresh=isolated)
        except KguestError as e:
            self.setup_failed(item, e)
        if self.pool.started != started:
            item.user_properties.append(
                ("kguest_guest_start", f"{g.started_from} {g.boot_seconds:.2f} s")
            )
        return g

    def setup_failed(self, item: pytest.Item, e: KguestError) -> NoReturn:
        """A set-up error ends the session.  The first process to meet it reports it,
        whole, on its test; others (xdist workers meeting the same) skip theirs with
        a reference to it: one report per run, however many workers."""
        __tracebackhide__ = True
        line = f"kguest: {str(e).splitlines()[0]}"
        item.session.shouldstop = line
        marker = Path(tempfile.gettempdir()) / f"kguest-{self.session_id}.setup-error"
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            reported = True
        else:
            reported = False
        if reported:
            pytest.skip(f"{line} (reported on another worker's test; the run stops)")
        os.write(fd, line.encode())
        os.close(fd)
        console = getattr(e, "console", "")
        text = str(e)
        if console:
            text += "\n--- from the guest ---\n" + "\n".join(console.splitlines()[-40:])
        raise SetupError(text + "\n(the run stops: the other tests would meet the same)") from None

    def run_test(
        self, req: GuestRequest, command: str, timeout: float, name: str
    ) -> tuple[Guest, TestRun]:
        guest = self.guest(req)
        mul = guest.spec.kernel.timeout_mul
        if mul != 1:
            command = f"LTP_TIMEOUT_MUL={mul:g} {command}"
            timeout *= mul
        try:
            return guest, guest.run_test(command, timeout, name)
        except (GuestDied, CommandTimeout) as e:
            # the looks at taint/dmesg around the test failed: the guest is unusable
            self.pool.discard(guest)
            raise GuestTestFailure(
                f"guest stopped answering around `{command}`: {e}\n"
                f"-> restarted for the next test; console log: {guest.log.path}"
            ) from e

    def isolated(self, wanted: str | None) -> bool:
        """Whether a test gets a guest of its own: the option wins, then the test's choice."""
        return (self.config.option.kguest_isolation or wanted or "worker") == "test"

    def default_timeout(self) -> float:
        t = self.config.option.kguest_timeout
        return float(t) if t else self.prov.cfg.timeout

    def kunit_loaded(self, req: GuestRequest, ko: str) -> bool:
        return (req, ko) in self._kunit

    def kunit_run(self, req: GuestRequest, ko: str, suites: list[kunit.Suite]) -> KunitRun:
        """Load the KUnit test module ``ko`` once per guest request and worker; its cases'
        results from the kernel's log of the load (raised console log level, so that a
        guest that dies in a case still shows the cases before it)."""
        key = (req, ko)
        if key in self._kunit:
            return self._kunit[key]
        guest = self.guest(req)
        kernel = guest.spec.kernel
        name = Path(ko).name.split(".ko")[0]
        if not any(m.name == Path(ko).name for m in guest.spec.test_modules):
            raise KguestError(
                f"KUnit module {ko} is not in the guest's image",
                f"build it for kernel {kernel.name} (its Kbuild: obj-$(CONFIG_KUNIT) += ...)",
            )
        cmd = (
            "read -r kglvl _ < /proc/sys/kernel/printk; echo 7 > /proc/sys/kernel/printk; "
            f"modprobe {name}; kgs=$?; echo $kglvl > /proc/sys/kernel/printk; "
            f"rmmod {name} 2>/dev/null; exit $kgs"
        )
        guest, run = self.run_test(req, cmd, self.default_timeout(), f"kunit {name}")
        died = bool(run.died)
        found, extra = kunit.results(run.died if died else run.kernel_log, suites, died)
        if died or run.trouble.excerpts:
            self.pool.discard(guest)
        status = run.result.status if run.result is not None else -1
        self._kunit[key] = KunitRun(found, extra, died, status, self.symbolizer(guest).annotate)
        return self._kunit[key]

    def close_guests(self) -> None:
        """Power the guests off (their coverage counters collected first)."""
        if self._pool is not None:
            self._pool.close()
        if self.harvester is not None and self.harvester.lost:
            lost = self.harvester.out / f"lost-{self.worker}-{os.getpid()}.txt"
            lost.write_text("\n".join(self.harvester.lost) + "\n")
            self.harvester.lost.clear()

    def close(self) -> None:
        self.close_guests()
        if self.worker == "main":
            marker = Path(tempfile.gettempdir()) / f"kguest-{self.session_id}.setup-error"
            marker.unlink(missing_ok=True)


# --- scenario collection --------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".c":
        return _kunit_file(file_path, parent)
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


def _kunit_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A KUnit test module's source that [tool.kguest.kunit] declares."""
    root = config_mod.find_root(file_path.parent)
    if root is None:
        return None
    try:
        cfg = config_mod.load(root)
    except KguestError:
        return None  # reported by the scenario files' collection
    for ko in cfg.kunit.modules:
        if (cfg.root / ko).with_suffix(".c").resolve() == file_path.resolve():
            return KunitFile.from_parent(parent, path=file_path, ko=ko, kernels=cfg.kunit.kernels)
    return None


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
        n = self.config.option.kguest_repeat
        for c in cases:
            for i in range(1, n + 1):
                name = c.id if n == 1 else _repeat_id(c.id, i, n)
                item = ScenarioItem.from_parent(self, name=name, case=c)
                for tag in c.tags:
                    self.config.addinivalue_line("markers", f"{tag}: scenario tag")
                    item.add_marker(tag)
                if c.big:
                    item.add_marker("big")
                yield item


@dataclasses.dataclass(frozen=True)
class KunitRun:
    """One load of a KUnit test module: its cases' results."""

    found: dict[tuple[str, str], kunit.CaseResult]
    extra: list[str]  # "suite.case" the module reported that its source did not declare
    died: bool
    status: int  # modprobe's exit status
    annotate: Any  # the symbolizer of its guest


class KunitFile(pytest.File):
    """A KUnit test module's source: its suites, each case an item."""

    def __init__(self, *, ko: str, kernels: tuple[str, ...], **kw: Any) -> None:
        super().__init__(**kw)
        self.ko = ko
        self.kernels = kernels

    def collect(self) -> Iterator[pytest.Item]:
        try:
            suites = kunit.read_suites(self.path)
        except KguestError as e:
            raise self.CollectError(str(e)) from None
        for s in suites:
            for case in s.cases:
                for k in self.kernels:
                    name = f"{s.name}.{case.name}" + ("" if k == "default" else f"[{k}]")
                    yield KunitItem.from_parent(
                        self, name=name, suite=s, case=case, kernel=k, suites=suites
                    )


class KunitItem(pytest.Item):
    """One KUnit case: the module is loaded by the first of its items a worker runs."""

    def __init__(
        self,
        *,
        suite: kunit.Suite,
        case: kunit.Case,
        kernel: str,
        suites: list[kunit.Suite],
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.suite = suite
        self.case = case
        self.kernel = kernel
        self.suites = suites
        assert isinstance(self.parent, KunitFile)
        self.ko = self.parent.ko

    @property
    def request(self) -> GuestRequest:
        return GuestRequest(kernel=self.kernel, where=f"{self.path}")

    def setup(self) -> None:
        __tracebackhide__ = True
        session: KguestSession = self.config.stash[SESSION_KEY]
        try:
            kernel = session.prov.kernel(self.kernel)
        except KguestError as e:
            _setup_failed(session, self, e)
        if not kconfig.enabled(kernel, "KUNIT"):
            pytest.fail(
                f"KUnit module {self.ko}: kernel {kernel.name} ({kernel.version}) has no "
                "CONFIG_KUNIT\n  -> run KUnit items on a kernel with KUnit "
                "([tool.kguest.kunit] kernels)",
                pytrace=False,
            )
        _setup(session, self, self.request, isolated=False)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.name

    def runtest(self) -> None:
        session: KguestSession = self.config.stash[SESSION_KEY]
        first = not session.kunit_loaded(self.request, self.ko)
        res = session.kunit_run(self.request, self.ko, self.suites)
        if first:
            parent = self.nodeid.rsplit("::", 1)[0]
            for extra in res.extra:
                emit_report(
                    self,
                    f"{parent}::{extra}",
                    False,
                    f"{self.ko} reported the case {extra}, which {self.path} does not declare "
                    "(its kunit_suite arrays were read at collection)",
                    "",
                    0.0,
                    [],
                )
        got = res.found.get((self.suite.name, self.case.name))
        if got is None:
            why = (
                "not run: the guest died earlier in this module's run"
                if res.died
                else f"{self.ko} did not report this case (modprobe exit {res.status}); "
                "the source read at collection and the module disagree"
            )
            raise GuestTestFailure(f"KUnit {self.suite.name}.{self.case.name}: {why}")
        if got.log.strip():
            self.add_report_section("call", "log", got.log[-20000:])
        if got.status == "skip":
            raise GuestSkip(f"KUnit SKIP: {got.detail}")
        if got.status != "pass":
            raise GuestTestFailure(
                f"KUnit {self.suite.name}.{self.case.name}: {res.annotate(got.detail)}\n"
                f"--- kernel log of the case ---\n{res.annotate(got.log)[-8000:]}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (GuestTestFailure, KguestError, SetupError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


def _repeat_id(name: str, i: int, n: int) -> str:
    tag = f"{i}of{n}"
    return f"{name[:-1]}-{tag}]" if name.endswith("]") else f"{name}[{tag}]"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """--kguest-repeat N: every Python test N times (as pytest-repeat does)."""
    n = metafunc.config.option.kguest_repeat
    if n > 1:
        metafunc.fixturenames.append("kguest_repeat")
        metafunc.parametrize(
            "kguest_repeat", range(1, n + 1), ids=[f"{i}of{n}" for i in range(1, n + 1)]
        )


@pytest.fixture
def kguest_repeat(request: pytest.FixtureRequest) -> int:
    """Which of the --kguest-repeat runs this is (1 when not repeating)."""
    return int(getattr(request, "param", 1))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    words = set(_kernel_words(config))
    every = "all" in words
    declared = _declared_kernels(config) if every else []
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    copies: list[pytest.Function] = []
    for it in items:
        if isinstance(it, ScenarioItem):
            c = it.case
            if (c.big and not config.option.big) or (not every and c.kernel not in words):
                drop.append(it)
                continue
        elif isinstance(it, KunitItem):
            if not every and it.kernel not in words:
                drop.append(it)
                continue
        elif isinstance(it, pytest.Function) and any(f in it.fixturenames for f in GUEST_FIXTURES):
            pinned = _marker(it).get("kernel")
            if pinned is not None:
                if not every and pinned not in words:
                    drop.append(it)
                    continue
            else:
                extra = declared if every else [k for k in words if k != "default"]
                copies += [_kernel_copy(it, k) for k in extra if k != "default"]
                if not every and "default" not in words:
                    drop.append(it)
                    continue
        keep.append(it)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # One guest per worker: run each guest's items together, so that a worker
    # restarts when the guest changes, not at every item; Python tests first,
    # in their order, then their copies for other kernels.
    scen = sorted((it for it in keep if isinstance(it, ScenarioItem)), key=_guest_key)
    plain = [it for it in keep if not isinstance(it, ScenarioItem)]
    items[:] = [*plain, *sorted(copies, key=lambda it: it.stash[KERNEL_KEY]), *scen]


def _declared_kernels(config: pytest.Config) -> list[str]:
    root = config_mod.find_root(Path(str(config.rootpath)))
    if root is None:
        return ["default"]
    cfg = config_mod.load(root)
    return Registry(cfg.kernels, cfg.root).names()


def _kernel_copy(item: pytest.Function, kernel: str) -> pytest.Function:
    """``item`` again, for ``kernel``: named like a scenario item (the kernel first)."""
    name = item.name
    name = (
        f"{name[: name.index('[') + 1]}{kernel}-{name[name.index('[') + 1 :]}"
        if (name.endswith("]"))
        else f"{name}[{kernel}]"
    )
    copy = pytest.Function.from_parent(
        item.parent,
        name=name,
        callspec=getattr(item, "callspec", None),
        callobj=item.obj,
        keywords=item.keywords,
        fixtureinfo=item._fixtureinfo,
        originalname=item.originalname,
    )
    copy.stash[KERNEL_KEY] = kernel
    return copy


def _guest_key(item: ScenarioItem) -> tuple[bool, str, str, str]:
    c = item.case
    return c.kernel != "default", c.kernel, c.backend or "", repr((c.module_params, c.cmdline))


class GuestTestFailure(Exception):
    """A guest test failed; the message is the whole story."""


class GuestSkip(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A guest test reported itself not applicable (LTP TCONF, TAP SKIP)."""


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
        self._guest = _setup(session, self, GuestRequest.of_case(self.case), self._isolated)

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
        req = GuestRequest.of_case(c)
        opt = self.config.option
        tag = opt.kguest_sweep_tag
        if opt.kguest_fault_sweep and (tag is None or tag in c.tags):
            sweep(self, session, req, timeout)
            return
        guest, run = session.run_test(req, c.command, timeout, self.nodeid)
        finish(self, session, guest, run, c.command, c.expect.kind, c.expect.name, c.format)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (GuestTestFailure, KguestError, SetupError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    subs = item.stash.get(SUBREPORTS_KEY, None)
    if rep.when == "call" and subs:
        rep.user_properties.append((SUBREPORTS, json.dumps(subs)))
        item.stash[SUBREPORTS_KEY] = []
    if call.excinfo is not None and isinstance(call.excinfo.value, GuestSkip):
        # a guest's skip is the test's, not a line of kguest's own code
        path, line, _ = item.reportinfo()
        rep.longrepr = (str(path), (line or 0) + 1, f"Skipped: {call.excinfo.value.msg}")
    started = dict(item.user_properties).get("kguest_guest_start")
    if started and rep.when == "setup" and item.config.pluginmanager.hasplugin("html"):
        import pytest_html  # type: ignore[import-untyped]

        rep.extras = [
            *getattr(rep, "extras", []),
            pytest_html.extras.text(f"guest started by {started}", name="guest start"),
        ]


class HtmlColumns:
    """pytest-html: a column with how each test's guest started (boot, restore)."""

    @staticmethod
    def pytest_html_results_table_header(cells: list[str]) -> None:
        cells.insert(2, "<th>Guest start</th>")

    @staticmethod
    def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
        started = dict(report.user_properties).get("kguest_guest_start", "")
        cells.insert(2, f"<td>{started}</td>")


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
    """Turn a TestRun into pass / fail / skip, restarting the guest after trouble.

    The guest's output and kernel log become the test's captured stdout and log
    (shown on failure, and in JUnit with junit_logging); kernel trouble is shown
    once, in the failure, with the project's modules' frames as file:line."""
    __tracebackhide__ = True
    annotate = session.symbolizer(guest).annotate
    if run.result is not None:
        item.add_report_section("call", "stdout", f"$ {command}\n{run.result.output}")
    if run.kernel_log.strip() and not run.trouble.excerpts:
        item.add_report_section("call", "log", run.kernel_log[-20000:])
    tail = f"-> the guest is restarted for the next test; console log: {guest.log.path}"
    if run.died:
        session.pool.discard(guest)
        # the kernel's words once: its excerpts when it said something, else the console
        seen = (
            run.trouble.report(annotate)
            if run.trouble.excerpts
            else (f"{run.trouble.report(annotate)}\n" if run.trouble else "")
            + f"--- console (tail) ---\n{annotate(run.died)}"
        )
        raise GuestTestFailure(
            f"guest died or stopped answering during `{command}`\n{seen}\n{tail}"
        )
    if run.trouble:
        session.pool.discard(guest)
        raise GuestTestFailure(
            f"kernel trouble during `{command}`:\n{run.trouble.report(annotate)}\n"
            f"--- test output ---\n{run.result.output if run.result else ''}\n{tail}"
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
        raise GuestSkip(v.reason)
    if v.outcome is Outcome.FAIL:
        assert run.result is not None
        raise GuestTestFailure(
            f"`{command}`: {annotate(v.reason)}\n--- output ---\n{annotate(run.result.output)}"
        )


# --- the error-path sweep ------------------------------------------------------------------


def sub_id(nodeid: str, tag: str) -> str:
    """``file::name[a-b]`` -> ``file::name[a-b-TAG]`` (``name[TAG]`` without parameters)."""
    return f"{nodeid[:-1]}-{tag}]" if nodeid.endswith("]") else f"{nodeid}[{tag}]"


SUBREPORTS = "kguest_subreports"


def emit_report(
    item: pytest.Item,
    nodeid: str,
    passed: bool,
    text: str,
    stdout: str,
    duration: float,
    props: list[tuple[str, object]],
) -> None:
    """One more result next to ``item``'s, under its own node id (JUnit: one testcase).

    It travels with the item's own report (as a user property, so that xdist carries
    it to the controller, which allows one node id per report) and is reported there,
    right after the item's (:class:`SubReports`)."""
    sub = {
        "nodeid": nodeid,
        "passed": passed,
        "text": text,
        "stdout": stdout,
        "duration": duration,
        "props": [[k, v] for k, v in props],
    }
    subs: list[dict[str, object]] = item.stash.setdefault(SUBREPORTS_KEY, [])
    subs.append(sub)


SUBREPORTS_KEY = pytest.StashKey[list[dict[str, object]]]()


def sweep(item: ScenarioItem, session: KguestSession, req: GuestRequest, timeout: float) -> None:
    """The item once as usual (the count of its modules' injectable calls taken), then
    again per kind and N from a freshly restored guest, one report per N."""
    __tracebackhide__ = True
    c = item.case
    sw = session.prov.cfg.fault_sweep
    opt = item.config.option
    max_n = opt.kguest_sweep_max_n or sw.max_n
    budget = opt.kguest_sweep_seconds or sw.seconds
    guest = session.guest(req)
    kinds = faultsweep.kinds_of(guest.spec.kernel, sw.kinds)
    faultsweep.setup(guest, kinds)
    faultsweep.arm(guest, 0, False)
    guest, run = session.run_test(req, c.command, timeout, item.nodeid)
    counted = faultsweep.state(guest).count if run.ok_guest else 0
    finish(item, session, guest, run, c.command, c.expect.kind, c.expect.name, c.format)
    if run.ok_guest and counted == 0:
        # a sweep that counts nothing can never fail: say so rather than pass
        emit_report(
            item,
            sub_id(item.nodeid, "sweep-nothing"),
            False,
            "the sweep counted no fault-injectable call made with the project's modules on "
            "the stack, so nothing was swept; the test allocates nothing, or the helper "
            "cannot see the modules' frames on this kernel",
            "",
            0.0,
            [],
        )
        item.user_properties.append(("kguest_sweep_counted", "0"))
        return
    annotate = session.symbolizer(guest).annotate
    names = {m.name.split(".ko")[0].replace("-", "_") for m in faultsweep.targets(guest)}
    t0 = time.monotonic()
    for kind in kinds:
        n = 0
        while True:
            n += 1
            if n > max_n or time.monotonic() - t0 > budget:
                why = f"N > {max_n}" if n > max_n else f"{budget:.0f} s"
                emit_report(
                    item,
                    sub_id(item.nodeid, f"sweep-{kind}-capped"),
                    False,
                    f"the {kind} sweep stopped at its cap ({why}) before a run without "
                    f"injection; raise --kguest-sweep-max-n / --kguest-sweep-seconds "
                    f"([tool.kguest.fault_sweep] max_n, seconds) or sweep a smaller test",
                    "",
                    0.0,
                    [],
                )
                break
            if not sweep_one(item, session, req, timeout, kind, n, annotate, names):
                break
    item.user_properties.append(("kguest_sweep_counted", str(counted)))


def sweep_one(
    item: ScenarioItem,
    session: KguestSession,
    req: GuestRequest,
    timeout: float,
    kind: str,
    n: int,
    annotate: Any,
    names: set[str],
) -> bool:
    """Run ``item`` with the ``n``-th ``kind`` call failing; False once nothing was injected."""
    c = item.case
    sw = session.prov.cfg.fault_sweep
    kmemleak = sw.kmemleak and not item.config.option.kguest_sweep_no_kmemleak
    guest = session.guest(req, fresh=True)
    guest.check_leaks = False  # the sweep reads kmemleak itself, as a verdict of its own
    faultsweep.setup(guest, (kind,))
    faultsweep.arm(guest, n, kmemleak)
    t0 = time.monotonic()
    guest, run = session.run_test(req, c.command, timeout, f"{item.nodeid} sweep {kind} {n}")
    ended = time.monotonic()
    site, leak, stack = "?", "", ""
    try:
        if not run.died:
            inj = faultsweep.state(guest)
            if not inj.kind:
                session.pool.discard(guest)
                return False
            stack = annotate(inj.stack)
            found = faultsweep.call_site(inj.stack, names)
            if found is not None:
                mod, func, off = found
                at = session.symbolizer(guest).where(mod, func, off, caller=True)
                site = f"{at or f'{func}+{off:#x}'} ({func})"
            if kmemleak:
                leak = faultsweep.kmemleak_report(guest, ended)
            if sw.leak_check and not leak:
                r = guest.run(sw.leak_check, 120)
                if r.status != 0:
                    leak = f"leak_check exited {r.status}: {r.output.strip()[-2000:]}"
    except (GuestDied, CommandTimeout, KguestError) as e:
        run = dataclasses.replace(run, died=run.died or str(e))
    outcome = (
        verdict_for(run, c.expect.kind, c.expect.name, c.format).outcome
        if run.result is not None and not run.died
        else Outcome.FAIL
    )
    v = faultsweep.judge(run, outcome, sw.accept_errnos, leak)
    session.pool.discard(guest)
    out = run.result.output if run.result is not None else ""
    text = (
        f"fault sweep, {kind} call {n} failing at {site}: {v.what}: {v.detail}\n"
        + (f"--- kernel ---\n{run.trouble.report(annotate)}\n" if run.trouble else "")
        + (f"--- console ---\n{annotate(run.died)[-6000:]}\n" if run.died else "")
        + (f"--- leak ---\n{leak[-6000:]}\n" if leak else "")
        + f"--- the failed call's stack ---\n{stack}\n--- output ---\n{annotate(out)}"
    )
    row = faultsweep.Row(item.nodeid.split("::")[-1], kind, n, site, v.what, v.detail)
    emit_report(
        item,
        sub_id(item.nodeid, f"sweep-{kind}-{n}"),
        v.ok,
        text,
        f"$ {c.command}\n{out}",
        ended - t0,
        [("kguest_sweep", json.dumps(dataclasses.asdict(row)))],
    )
    return True


# --- fixtures for Python tests ----------------------------------------------------------


def _guest_for(request: pytest.FixtureRequest) -> tuple[KguestSession, GuestRequest, bool]:
    session: KguestSession = request.config.stash[SESSION_KEY]
    return (
        session,
        GuestRequest.of_node(request.node),
        session.isolated(_marker(request.node).get("isolation")),
    )


def _setup_failed(session: KguestSession, node: pytest.Item, e: KguestError) -> NoReturn:
    __tracebackhide__ = True
    try:
        session.setup_failed(node, e)
    except SetupError as err:
        message = str(err)
    pytest.fail(message, pytrace=False)


def _setup(session: KguestSession, node: pytest.Item, req: GuestRequest, isolated: bool) -> Guest:
    """A fixture's guest; a set-up error fails the test with kguest's message only."""
    __tracebackhide__ = True
    try:
        return session.setup_guest(node, req, isolated)
    except SetupError as e:
        message = str(e)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def kguest_guest(request: pytest.FixtureRequest) -> Iterator[Guest]:
    """A started guest of this worker (shared across tests; restarted when it dies).

    ``@pytest.mark.kguest(backend="vng", kernel="default")`` picks another one;
    ``isolation="test"`` a freshly restored one, thrown away after the test;
    ``module_params={...}``, ``cmdline=[...]`` one started with those.
    """
    session, req, isolated = _guest_for(request)
    g = _setup(session, request.node, req, isolated)
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
        self.session, self.req, _ = _guest_for(request)

    def __repr__(self) -> str:
        return f"<kguest_run: a guest of kernel {self.req.kernel!r}>"

    def __call__(
        self,
        command: str,
        timeout: float | None = None,
        expect: str = "pass",
        expect_name: str = "",
        fmt: str = "auto",
    ) -> TestRun:
        __tracebackhide__ = True
        t = timeout or _marker(self.request.node).get("timeout") or self.session.default_timeout()
        try:
            guest, run = self.session.run_test(
                self.req, command, float(t), self.request.node.nodeid
            )
        except KguestError as e:
            message = str(e)
        else:
            finish(self.request.node, self.session, guest, run, command, expect, expect_name, fmt)
            return run
        pytest.fail(message, pytrace=False)


@pytest.fixture
def kguest_run(request: pytest.FixtureRequest) -> Iterator[GuestRunner]:
    session, req, isolated = _guest_for(request)
    g = _setup(session, request.node, req, isolated)
    yield GuestRunner(request)
    if isolated:
        session.pool.discard(g)
