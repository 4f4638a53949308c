"""The guests of one process (an xdist worker, or the ``kguest`` command): at most
``max_running`` at once, started on first use and again after they die.

The pool starts and stops every guest it holds; its watchers (e.g. the coverage
collector) are told when a guest has started and before one is stopped or thrown
away, so that they can read the guest while it still answers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .backends import GuestSpec
from .guest import Guest
from .provision import Provisioner


class GuestWatcher(Protocol):
    def started(self, guest: Guest) -> None: ...

    def stopping(self, guest: Guest) -> None: ...


class GuestPool:
    def __init__(
        self, prov: Provisioner, max_running: int = 1, watchers: Sequence[GuestWatcher] = ()
    ) -> None:
        self.prov = prov
        self.max_running = max_running
        self.watchers = tuple(watchers)
        self._guests: dict[GuestSpec, Guest] = {}
        self._n = 0
        self.restarts = 0

    @property
    def started(self) -> int:
        """How many guests this pool has started (booted or restored)."""
        return self._n

    def get(self, spec: GuestSpec) -> Guest:
        """The running guest of ``spec``, started if there is none (another spec's
        guest is powered off first when ``max_running`` are up)."""
        g = self._guests.get(spec)
        if g is not None and g.alive:
            return g
        if g is not None:
            self.restarts += 1
            g.close()
            del self._guests[spec]
        while len(self._guests) >= self.max_running:
            _, old = self._guests.popitem()
            self._stopping(old)
            old.close()
        self._n += 1
        g = self.prov.new_guest(spec)
        self._guests[spec] = g  # before boot: a boot that fails half-way is closed with the pool
        g.boot()
        for w in self.watchers:
            w.started(g)
        return g

    def _stopping(self, guest: Guest) -> None:
        if guest.alive:
            for w in self.watchers:
                w.stopping(guest)

    def fresh(self, spec: GuestSpec) -> Guest:
        """A guest that has run no test since it started (restored or booted for it)."""
        g = self._guests.get(spec)
        if g is not None and g.alive and g.tests_run > 0:
            self.discard(g)
        return self.get(spec)

    def discard(self, guest: Guest) -> None:
        """Throw a guest away (after a death or kernel trouble); the next get() restarts it."""
        self._stopping(guest)
        guest.kill()

    def close(self) -> None:
        for g in self._guests.values():
            self._stopping(g)
            g.close()
        self._guests.clear()
