"""Guest kernels: a registry of named kernels and the providers that make them.

A name resolves to a :class:`Kernel`: the vmlinuz to boot, the headers directory
to build modules against, the version (``uname -r``), the kernel's own modules
and a command prefix for module builds (a chroot for a kernel whose headers need
another toolchain).  Built in: ``default`` (the host's Debian kernel).  The
project declares the others as data in ``[tool.kguest.kernels.NAME]``
(config.KernelEntry): a Debian kernel package of any suite (:mod:`.debian`), a
kernel built from source with config fragments (:mod:`.source`), a vmlinuz and
headers on disk, or a command that provisions one (:mod:`.provision`).
``--kernel PATH --kdir DIR`` selects an arbitrary pair.
"""

from .host import apt_install, find_debian
from .kernel import (
    Kernel,
    check_match,
    config_value,
    headers_version,
    vmlinuz_banner,
    vmlinuz_version,
)
from .registry import ALL, DEFAULT, Registry, names, select

__all__ = [
    "ALL",
    "DEFAULT",
    "Kernel",
    "Registry",
    "apt_install",
    "check_match",
    "config_value",
    "find_debian",
    "headers_version",
    "names",
    "select",
    "vmlinuz_banner",
    "vmlinuz_version",
]
