"""kguest's user cache: where it is, content keys, entries made once while other
processes wait, incomplete entries made again."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path

import pytest

from kguest import cache
from kguest.cache import Cache
from kguest.files import file_digest
from kguest.progress import Say


def test_where_the_cache_is() -> None:
    assert cache.cache_root({"KGUEST_CACHE_DIR": "/srv/kg", "XDG_CACHE_HOME": "/x"}) == Path(
        "/srv/kg")
    assert cache.cache_root({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/kguest")
    # a relative XDG_CACHE_HOME is invalid by the spec: ignored
    assert cache.cache_root({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path("/h/.cache/kguest")
    assert cache.cache_root({"HOME": "/h"}) == Path("/h/.cache/kguest")


def test_keys_are_content() -> None:
    assert cache.key("a", "bc") == cache.key("a", b"bc")
    assert cache.key("a", "bc") != cache.key("ab", "c")  # parts are length-prefixed
    assert len(cache.key("x")) == 16


def test_digest_is_remembered_until_the_file_changes(tmp_path: Path) -> None:
    c = Cache(tmp_path / "c")
    f = tmp_path / "big.tar"
    f.write_bytes(b"one")
    d1 = c.digest(f)
    assert d1 == file_digest(f) and len(list((tmp_path / "c/digests").iterdir())) == 1
    assert c.digest(f) == d1
    time.sleep(0.01)
    f.write_bytes(b"two")
    assert c.digest(f) != d1


def _make_slowly(root: str, rel: str, out: str, seconds: float = 1.5) -> None:
    def make(d: Path, progress: Say) -> dict[str, object]:
        with open(out, "a") as f:
            f.write("made\n")
        progress("kguest: making it")
        time.sleep(seconds)
        (d / "result").write_text("ok")
        return {"n": 1}

    d, meta = Cache(Path(root)).entry(rel, "the thing", make, lambda _: None)
    assert (d / "result").read_text() == "ok" and meta == {"n": 1}


def test_two_processes_make_an_entry_once(tmp_path: Path) -> None:
    out = tmp_path / "made.txt"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_make_slowly, args=(str(tmp_path / "c"), "kernels/k", str(out)))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert out.read_text() == "made\n"  # one make; the others waited and reused it
    assert json.loads((tmp_path / "c/kernels/k" / cache.MARKER).read_text()) == {"n": 1}


def test_waiters_say_what_the_maker_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "WAIT_NOTE_SECONDS", 0.3)
    monkeypatch.setattr(cache, "POLL_SECONDS", 0.1)
    ctx = multiprocessing.get_context("fork")
    maker = ctx.Process(target=_make_slowly,
                        args=(str(tmp_path / "c"), "e", str(tmp_path / "o"), 4.0))
    maker.start()
    deadline = time.monotonic() + 30
    while not (tmp_path / "o").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the maker holds the lock
    heard: list[str] = []
    Cache(tmp_path / "c").entry("e", "the thing", lambda d, p: {}, heard.append)
    maker.join(30)
    assert heard[0].startswith("kguest: the thing: another process is making it")
    assert any("still waiting" in h and "making it" in h for h in heard[1:])


def test_a_failed_make_leaves_an_incomplete_entry_made_again(tmp_path: Path) -> None:
    c = Cache(tmp_path)

    def fail(d: Path, progress: Say) -> dict[str, object]:
        (d / "half").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        c.entry("e", "it", fail, print)
    assert (tmp_path / "e/half").exists() and c.complete(tmp_path / "e") is None
    heard: list[str] = []
    d, _ = c.entry("e", "it", lambda d, p: {"ok": True}, heard.append)
    assert not (d / "half").exists() and c.complete(d) == {"ok": True}
    assert any("incomplete earlier attempt" in h for h in heard)
