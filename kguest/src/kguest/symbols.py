"""The project's modules in a kernel stack, as ``file.c:LINE``.

A frame such as ``hello_ioctl+0xd4/0x1a0 [hello]`` (a call trace, or ``RIP:``)
is looked up in the module's own debug info: the symbol's section and value
from ``readelf``, then ``addr2line`` at the symbol plus the offset (less one
for a return address, so that the line is the call's, not the next one's).
Frames of other modules and of the kernel itself are left as they are.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

FRAME_RX = re.compile(
    r"(?P<func>[A-Za-z_][A-Za-z0-9_.]*)\+0x(?P<off>[0-9a-f]+)/0x[0-9a-f]+ "
    r"\[(?P<mod>[A-Za-z0-9_-]+)\]"
)


class Symbolizer:
    def __init__(self, modules: Iterable[Path], root: Path | None = None) -> None:
        self.modules = {m.name.split(".ko")[0].replace("-", "_"): m for m in modules}
        self.root = root  # paths under it are shown relative to it
        self._symbols: dict[Path, dict[str, tuple[str, int]]] = {}
        self._lines: dict[tuple[str, str, int, bool], str] = {}

    def _table(self, ko: Path) -> dict[str, tuple[str, int]]:
        """function name -> (section name, value) of a module's defined symbols."""
        if ko not in self._symbols:
            table: dict[str, tuple[str, int]] = {}
            try:
                sections = _readelf(ko, "-SW")
                symbols = _readelf(ko, "-sW")
            except (OSError, subprocess.CalledProcessError):
                self._symbols[ko] = table
                return table
            names = {}
            for m in re.finditer(r"^\s*\[\s*(\d+)\]\s+(\S+)", sections, re.M):
                names[m.group(1)] = m.group(2)
            for line in symbols.splitlines():
                f = line.split()
                # Num: Value Size Type Bind Vis Ndx Name
                if len(f) >= 8 and f[3] == "FUNC" and f[6] in names:
                    table[f[7]] = (names[f[6]], int(f[1], 16))
            self._symbols[ko] = table
        return self._symbols[ko]

    def where(
        self, module: str, func: str, offset: int, returns: bool = True, caller: bool = False
    ) -> str:
        """``file.c:LINE`` of ``func+offset`` in ``module`` ("" when unknown).  ``caller``:
        the project's own line when the address is in code inlined from elsewhere (a
        kmalloc() inlined from slab.h shows as the module's line that calls it)."""
        key = (module, func, offset, caller)
        if key in self._lines:
            return self._lines[key]
        found = ""
        ko = self.modules.get(module.replace("-", "_"))
        sym = self._table(ko).get(func) if ko is not None else None
        if ko is not None and sym is not None:
            section, value = sym
            addr = value + offset - (1 if returns and offset else 0)
            inline = ["-i"] if caller else []
            try:
                out = (
                    subprocess.run(
                        ["addr2line", *inline, "-e", str(ko), "-j", section, hex(addr)],
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=30,
                    )
                    .stdout.strip()
                    .splitlines()
                )
            except (OSError, subprocess.SubprocessError):
                out = []
            if out and not out[0].startswith("??"):
                lines = [ln.split(" (discriminator")[0] for ln in out]
                if caller:
                    # the innermost of the inlined frames that is the project's own source
                    own = [
                        ln
                        for ln in lines
                        if self.root is not None and ln.startswith(f"{self.root}{os.sep}")
                    ]
                    lines = own or lines[-1:]
                found = self._short(lines[0])
        self._lines[key] = found
        return found

    def _short(self, where: str) -> str:
        path, _, line = where.rpartition(":")
        if self.root is not None and path.startswith(f"{self.root}{os.sep}"):
            path = os.path.relpath(path, self.root)
        return f"{path}:{line}"

    def annotate(self, text: str) -> str:
        """``text`` with `` (file.c:LINE)`` after every frame of the project's modules: the
        project's own line where the address is in code inlined from elsewhere."""
        if not self.modules:
            return text
        out = []
        for line in text.splitlines():
            m = FRAME_RX.search(line)
            if m and m.group("mod").replace("-", "_") in self.modules:
                at = self.where(
                    m.group("mod"),
                    m.group("func"),
                    int(m.group("off"), 16),
                    returns="RIP:" not in line,
                    caller=True,  # kmalloc() inlined from slab.h: the module's line calling it
                )
                if at:
                    line = f"{line[: m.end()]} ({at}){line[m.end() :]}"
            out.append(line)
        return "\n".join(out)


def _readelf(ko: Path, flag: str) -> str:
    return subprocess.run(
        ["readelf", flag, str(ko)], capture_output=True, text=True, check=True, timeout=30
    ).stdout
