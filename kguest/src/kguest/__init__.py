"""kguest: boot a kernel guest, load the project's module, run tests in it from pytest."""

from __future__ import annotations

from .api import boot
from .backends import GuestSpec
from .console import CommandResult
from .errors import KguestError
from .guest import Guest, TestRun
from .plugin import GuestRunner

__all__ = ["CommandResult", "Guest", "GuestRunner", "GuestSpec", "KguestError", "TestRun", "boot"]
__version__ = "0.2.0"
