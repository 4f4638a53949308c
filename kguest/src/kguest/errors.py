"""Exceptions raised by kguest.  Each one says what went wrong *and* what to do next."""

from __future__ import annotations


class KguestError(Exception):
    """Base class.  ``hint`` is the next step for the user."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  -> {self.hint}"
        return self.message


class ConfigError(KguestError):
    """The [tool.kguest] table or a command-line option is wrong."""


class KernelError(KguestError):
    """A guest kernel or its headers cannot be found, installed or do not match."""


class BuildError(KguestError):
    """The project build (``make build``) failed; ``log`` holds its output."""

    def __init__(self, message: str, hint: str = "", log: str = "") -> None:
        super().__init__(message, hint)
        self.log = log


class ImageError(KguestError):
    """A guest image could not be assembled."""


class BootError(KguestError):
    """The guest did not reach its ready marker."""

    def __init__(self, message: str, hint: str = "", console: str = "") -> None:
        super().__init__(message, hint)
        self.console = console


class GuestDied(KguestError):
    """The guest exited (panic, reboot, QEMU crash) while a command ran."""

    def __init__(self, message: str, hint: str = "", console: str = "") -> None:
        super().__init__(message, hint)
        self.console = console


class CommandTimeout(KguestError):
    """A command did not finish in time.  ``recovered`` tells whether ^C got the shell back."""

    def __init__(
        self, message: str, hint: str = "", output: str = "", recovered: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.output = output
        self.recovered = recovered


class ScenarioError(KguestError):
    """A scenario YAML file is invalid: points at file:line and lists what is allowed."""

    def __init__(self, path: str, line: int, message: str, hint: str = "") -> None:
        super().__init__(f"{path}:{line}: {message}", hint)
        self.path = path
        self.line = line
