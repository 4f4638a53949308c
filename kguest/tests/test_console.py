"""The exit-marker protocol, against a local shell standing in for the guest's console."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pexpect
import pytest

from kguest.console import CappedText, Console, ConsoleLog
from kguest.errors import CommandTimeout, GuestDied


def shell(argv: list[str], echo: bool = True, **kw: object) -> Iterator[Console]:
    child = pexpect.spawn(
        argv[0], argv[1:], echo=echo, env={"PS1": "", "PATH": "/usr/bin:/bin"}, timeout=None
    )
    con = Console(child, ConsoleLog(None), **kw)  # type: ignore[arg-type]
    try:
        yield con
    finally:
        child.close(force=True)


@pytest.fixture
def con() -> Iterator[Console]:
    # tty echo stays on: the markers must not be matched in the echo of the command line
    yield from shell(["sh", "-i"], max_output=4096, interrupt_grace=3.0)


def test_output_and_status(con: Console) -> None:
    r = con.run("echo hi; echo err >&2; exit 3", 10)
    assert r.output == "hi\nerr\n"
    assert r.status == 3
    assert r.truncated == 0


def test_commands_are_isolated(con: Console) -> None:
    assert con.run("cd /; X=1; exit 0", 10).status == 0
    r = con.run('pwd; echo "[$X]"', 10)
    assert r.output.splitlines()[1] == "[]"
    assert r.output.splitlines()[0] != "/"


def test_quoting_and_multiline(con: Console) -> None:
    r = con.run("printf '%s\\n' \"it's\" '$HOME' KGEND-x-1\necho two", 10)
    assert r.output == "it's\n$HOME\nKGEND-x-1\ntwo\n"
    assert r.status == 0


def test_stdin_is_not_the_console(con: Console) -> None:
    r = con.run("cat; echo done", 5)
    assert r.output == "done\n"


def test_output_is_capped(con: Console) -> None:
    r = con.run("i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done", 30)
    assert r.truncated > 0
    assert r.output.startswith("line-0\n")
    assert r.output.rstrip().endswith("line-1999")
    assert "characters dropped" in r.output
    assert len(r.output) < 4096 + 200


def test_timeout_interrupts_and_recovers(con: Console) -> None:
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as ei:
        con.run("echo started; sleep 30", 1.5)
    assert ei.value.recovered
    assert "started" in ei.value.output
    assert time.monotonic() - t0 < 10
    assert con.run("echo after", 10).output == "after\n"


def test_unresponsive_console_is_reported() -> None:
    # a "guest" that neither runs commands nor reacts to ^C
    for c in shell(["sh", "-c", "stty -isig -echo; sleep 60"], interrupt_grace=1.0):
        with pytest.raises(CommandTimeout) as ei:
            c.run("true", 1.0)
        assert not ei.value.recovered


def test_death_is_reported(con: Console) -> None:
    con.run("echo boot-text", 5)
    with pytest.raises(GuestDied) as ei:
        con.run("echo dying; kill -9 $$", 10)
    assert "dying" in ei.value.console


def test_sync(con: Console) -> None:
    assert con.sync(5.0)


def test_capped_text() -> None:
    c = CappedText(100)
    c.add("a" * 40)
    c.add("b" * 40)
    c.add("c" * 100)
    assert c.dropped == 80
    assert c.text().startswith("a" * 40 + "b" * 10)
    assert c.text().endswith("c" * 50)
