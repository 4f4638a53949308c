"""sfork for Python: fork with one shared memory region, direction enforced by the kernel.

::

    import sfork

    pid, region = sfork.sfork(1 << 20, sfork.PARENT_TO_CHILD, alloc=sfork.LAZY)
    if pid == 0:                       # child: region is a read-only memoryview
        print(bytes(region[:5]))
        os._exit(0)
    region[:5] = b"hello"              # parent: region is writable
    os.waitpid(pid, 0)

``sfork(size, flags, alloc=None)`` returns ``(pid, region)`` like ``os.fork()``
returns a PID: the child's PID in the parent, 0 in the child.  ``region`` is a
``memoryview`` of format ``"B"`` over the region mapped at the same address in
both processes (``size`` rounded up to the page size, zero-filled).  It is
writable on a writing side — both in ``BIDIRECTIONAL``, the parent in
``PARENT_TO_CHILD``, the child in ``CHILD_TO_PARENT`` — and read-only on the
other: assigning into it raises ``TypeError``, and the kernel refuses every
other way to write (a store through the raw address is ``SIGSEGV``,
``mprotect`` to ``PROT_WRITE`` is ``EACCES``).  The rules are those of
``sfork(3)`` (``man/sfork.3``) and ``sfork(4)`` (the device).

Errors are ``OSError`` with the contract's errno, and leave nothing behind (no
child, no mapping, no file descriptor): ``EINVAL`` (``size == 0``, unknown flag
bits, not exactly one direction, both ``LAZY`` and ``EAGER``), ``ENOMEM``
(``size`` above the module's ``max_region_bytes`` or too large to round up; an
eager allocation that fails), ``ENOSYS`` (the module is not loaded:
``/dev/sfork`` is absent) and ``os.fork()``'s own (``EAGAIN``: ``BlockingIOError``).
``size`` and the flags must be integers (else ``TypeError``); values that do not
fit the ABI's fields (a negative ``size`` or flags, flags beyond 32 bits: ``EINVAL``;
``size`` beyond 64 bits: ``ENOMEM``) are refused before the device is opened.
Every other rule is the module's to apply, as in libsfork: without the module
every other call fails with ``ENOSYS``.

Also: :func:`region_fd` (``SFORK_IOC_EXPORT``: a descriptor for this side of a
region, to pass over a socket or across ``execve``), :func:`region_map`
(``SFORK_IOC_INFO`` + ``mmap``: map such a descriptor with its side's
permission), :func:`address` (a region's start, e.g. for ctypes) and
:func:`unmap`.  A region stays mapped until :func:`unmap`, ``execve`` or exit:
the memoryview does not own the mapping (it views the mapping the kernel made,
without a copy), so dropping it does not unmap anything.

How: pure Python over the module's ioctl ABI (``fcntl.ioctl``, ``os.fork``,
ctypes for the addresses), as libsfork does it in C: open ``/dev/sfork``, block
all signals, ``SFORK_IOC_CREATE`` (the kernel maps the region into this
process and writes its address to ``*addr_ptr``), close the descriptor,
``os.fork()``, ``munmap`` if the fork fails, restore the signal mask.  Not
ctypes over ``libsfork.so``: its ``fork()`` would bypass ``os.fork()``, so the
child's interpreter would skip its after-fork work (``os.register_at_fork``
handlers, the threading module's and the import lock's reset), and the binding
would need the C library built and found at run time.

Single definition: the flag values, the device name, the ioctl numbers and the
ioctl structures are read at import from the uapi header
``kmod/include/uapi/linux/sfork.h``, found in this order: ``$SFORK_UAPI_HEADER``,
the copy inside this package (``sfork/sfork.h``: in the source tree a link to
the kmod header, in a built wheel the header itself),
``/usr/local/include/linux/sfork.h`` and ``/usr/include/linux/sfork.h``
(``make install`` puts it at ``$PREFIX/include/linux/sfork.h``).  The ioctl numbers use the generic
``<asm-generic/ioctl.h>`` encoding (x86, arm64, riscv, s390).

Signals and threads: a signal handler that ran between the ioctl and the fork
and forked would give its child the child's side, hence the blocked signals.
A Python handler for a signal that arrived meanwhile runs when the mask is
restored, i.e. as ``sfork`` returns (in the parent the child exists by then).
``os.register_at_fork(before=...)`` handlers run inside the armed window and
must not fork.  Other threads may fork at any time: they get their own side.
"""

from __future__ import annotations

import ast
import ctypes
import dataclasses
import errno
import fcntl
import mmap
import operator
import os
import re
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, SupportsIndex

__all__ = [
    "ALLOC_MASK",
    "BIDIRECTIONAL",
    "CHILD_TO_PARENT",
    "DEVICE",
    "DIRECTION_MASK",
    "EAGER",
    "HEADER",
    "HEADER_ENV",
    "IOC_CREATE",
    "IOC_EXPORT",
    "IOC_INFO",
    "LAZY",
    "PARENT_TO_CHILD",
    "VALID_FLAGS",
    "Header",
    "address",
    "find_header",
    "flag_names",
    "parse_header",
    "region_fd",
    "region_map",
    "sfork",
    "unmap",
    "writable",
]

HEADER_ENV: Final = "SFORK_UAPI_HEADER"

# --- the uapi header -------------------------------------------------------------------

# <linux/types.h> fixed-size types as ctypes types.
_CTYPES: Final[Mapping[str, Any]] = {
    "__u8": ctypes.c_uint8,
    "__u16": ctypes.c_uint16,
    "__u32": ctypes.c_uint32,
    "__u64": ctypes.c_uint64,
    "__s8": ctypes.c_int8,
    "__s16": ctypes.c_int16,
    "__s32": ctypes.c_int32,
    "__s64": ctypes.c_int64,
}

# <asm-generic/ioctl.h>: 8 bits number, 8 bits type, 14 bits size, 2 bits direction.
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
_IOC_DIRS: Final = {
    "_IO": _IOC_NONE,
    "_IOW": _IOC_WRITE,
    "_IOR": _IOC_READ,
    "_IOWR": _IOC_READ | _IOC_WRITE,
}

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(?![\w(])[ \t]*(.*?)[ \t]*$", re.M)
_STRUCT = re.compile(r"\bstruct\s+(\w+)\s*\{([^{}]*)\}\s*;")
_FIELD = re.compile(r"\s*(\w+)\s+(\w+)\s*")
_INT_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]+\b")
_BINOPS: Final[Mapping[type[ast.operator], Callable[[int, int], int]]] = {
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


@dataclasses.dataclass(frozen=True)
class Header:
    """What the uapi header defines: object-like macros and the ioctl structures."""

    path: Path
    defines: Mapping[str, int | str]
    structs: Mapping[str, type[ctypes.Structure]]
    unreadable: Mapping[str, str] = dataclasses.field(default_factory=dict)  # macro -> why

    def integer(self, name: str) -> int:
        """The integer value of macro ``name``; ImportError naming the header if absent."""
        v = self.defines.get(name)
        if not isinstance(v, int):
            raise ImportError(self.unreadable.get(name, f"{self.path}: no integer #define {name}"))
        return v

    def string(self, name: str) -> str:
        v = self.defines.get(name)
        if not isinstance(v, str):
            raise ImportError(self.unreadable.get(name, f"{self.path}: no string #define {name}"))
        return v

    def struct(self, name: str) -> type[ctypes.Structure]:
        if name not in self.structs:
            raise ImportError(f"{self.path}: no struct {name}")
        return self.structs[name]


def find_header() -> Path:
    """The uapi header: ``$SFORK_UAPI_HEADER``, else the package's copy, else installed ones."""
    env = os.environ.get(HEADER_ENV)
    if env:
        if not Path(env).is_file():
            raise ImportError(f"${HEADER_ENV}={env}: no such file (the sfork uapi header)")
        return Path(env)
    candidates = [
        Path(__file__).resolve().parent / "sfork.h",
        Path("/usr/local/include/linux/sfork.h"),
        Path("/usr/include/linux/sfork.h"),
    ]
    for c in candidates:
        if c.is_file():
            return c
    raise ImportError(
        "the sfork uapi header (linux/sfork.h) was not found in "
        + ", ".join(str(c) for c in candidates)
        + f": run `make install`, or set ${HEADER_ENV} to its path"
    )


def parse_header(path: Path) -> Header:
    """Read the object-like ``#define``s and the ``struct``s of a uapi header.

    Integer macros may use literals (with ``U``/``L`` suffixes), other macros,
    ``| & ^ << >> + - *``, parentheses and ``_IO``/``_IOR``/``_IOW``/``_IOWR``
    with a ``struct`` of the same header; struct members are ``__u8``..``__s64``
    scalars, laid out by ctypes as the C compiler does.  Anything else in a
    macro or struct that is used raises ImportError naming the header.
    """
    text = _COMMENT.sub(" ", path.read_text().replace("\\\n", " "))
    structs: dict[str, type[ctypes.Structure]] = {}
    for m in _STRUCT.finditer(text):
        fields: list[tuple[str, Any]] = []
        for decl in m.group(2).split(";"):
            if not decl.strip():
                continue
            f = _FIELD.fullmatch(decl)
            if f is None or f.group(1) not in _CTYPES:
                raise ImportError(
                    f"{path}: struct {m.group(1)}: cannot read member {decl.strip()!r}"
                )
            fields.append((f.group(2), _CTYPES[f.group(1)]))
        structs[m.group(1)] = type(m.group(1), (ctypes.Structure,), {"_fields_": fields})

    raw = {m.group(1): m.group(2) for m in _DEFINE.finditer(text) if m.group(2)}
    values: dict[str, int | str] = {}

    def value(name: str, seen: tuple[str, ...] = ()) -> int | str:
        if name in values:
            return values[name]
        if name not in raw or name in seen:
            raise ImportError(f"{path}: {name} is not defined (or defined in a loop)")
        src = raw[name].strip()
        if re.fullmatch(r'"[^"\\]*"', src):
            v: int | str = src[1:-1]
        else:
            expr = _INT_SUFFIX.sub(r"\1", src)
            expr = re.sub(r"\bstruct\s+(\w+)", r"sizeof(\1)", expr)
            try:
                tree = ast.parse(expr, mode="eval")
            except SyntaxError:
                raise ImportError(f"{path}: #define {name} {src}: not an expression") from None
            v = evaluate(tree.body, name, (*seen, name))
        values[name] = v
        return v

    def evaluate(node: ast.expr, name: str, seen: tuple[str, ...]) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            v = value(node.id, seen)
            if isinstance(v, int):
                return v
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](
                evaluate(node.left, name, seen), evaluate(node.right, name, seen)
            )
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fn, args = node.func.id, node.args
            if fn == "sizeof" and len(args) == 1 and isinstance(args[0], ast.Name):
                if args[0].id in structs:
                    return ctypes.sizeof(structs[args[0].id])
            elif fn in _IOC_DIRS and len(args) == (2 if fn == "_IO" else 3):
                size = evaluate(args[2], name, seen) if fn != "_IO" else 0
                kind, nr = evaluate(args[0], name, seen), evaluate(args[1], name, seen)
                if kind < 1 << 8 and nr < 1 << 8 and size < 1 << 14:
                    return _IOC_DIRS[fn] << 30 | size << 16 | kind << 8 | nr
        raise ImportError(f"{path}: #define {name}: cannot evaluate {ast.unparse(node)!r}")

    unreadable: dict[str, str] = {}
    for n in raw:
        try:
            value(n)
        except ImportError as e:  # only the names the binding uses must be readable
            unreadable[n] = str(e)
    return Header(
        path, {n: v for n, v in values.items() if n not in unreadable}, structs, unreadable
    )


_H: Final = parse_header(find_header())

#: The header the constants below come from.
HEADER: Final[Path] = _H.path
BIDIRECTIONAL: Final[int] = _H.integer("SFORK_BIDIRECTIONAL")
PARENT_TO_CHILD: Final[int] = _H.integer("SFORK_PARENT_TO_CHILD")
CHILD_TO_PARENT: Final[int] = _H.integer("SFORK_CHILD_TO_PARENT")
LAZY: Final[int] = _H.integer("SFORK_LAZY")
EAGER: Final[int] = _H.integer("SFORK_EAGER")
DIRECTION_MASK: Final[int] = _H.integer("SFORK_DIRECTION_MASK")
ALLOC_MASK: Final[int] = _H.integer("SFORK_ALLOC_MASK")
VALID_FLAGS: Final[int] = _H.integer("SFORK_VALID_FLAGS")
IOC_CREATE: Final[int] = _H.integer("SFORK_IOC_CREATE")
IOC_EXPORT: Final[int] = _H.integer("SFORK_IOC_EXPORT")
IOC_INFO: Final[int] = _H.integer("SFORK_IOC_INFO")
#: The device; a module global (not Final) so that tests can point it elsewhere.
DEVICE: str = _H.string("SFORK_DEVICE")

_Create: Final = _H.struct("sfork_create")
_Export: Final = _H.struct("sfork_export")
_Info: Final = _H.struct("sfork_info")

_U32: Final = 1 << 32
_U64: Final = 1 << 64

# --- helpers ---------------------------------------------------------------------------

# The ioctl, as a module global so that the host tests can stand in for the kernel.
_ioctl: Callable[[int, int, Any], Any] = fcntl.ioctl


class _Libc:
    """The few libc calls Python has no wrapper for (mmap/munmap at a given address)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.munmap = libc.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


_libc_cache: list[_Libc] = []


def _libc() -> _Libc:
    if not _libc_cache:
        _libc_cache.append(_Libc())
    return _libc_cache[0]


def _munmap(addr: int, size: int) -> None:
    if _libc().munmap(addr, size):
        e = ctypes.get_errno()
        raise OSError(e, f"munmap({addr:#x}, {size}): {os.strerror(e)}")


def flag_names(flags: int) -> str:
    """``flags`` in the header's words, e.g. ``"PARENT_TO_CHILD|LAZY"`` (unknown bits in hex)."""
    names = []
    for name, bit in (
        ("BIDIRECTIONAL", BIDIRECTIONAL),
        ("PARENT_TO_CHILD", PARENT_TO_CHILD),
        ("CHILD_TO_PARENT", CHILD_TO_PARENT),
        ("LAZY", LAZY),
        ("EAGER", EAGER),
    ):
        if flags & bit:
            names.append(name)
            flags &= ~bit
    if flags:
        names.append(hex(flags))
    return "|".join(names) or "0"


def writable(flags: int, *, child: bool) -> bool:
    """Whether the parent's (``child=False``) or the child's side of a region created with
    ``flags`` may write: both in BIDIRECTIONAL, the parent in PARENT_TO_CHILD, the child in
    CHILD_TO_PARENT."""
    if flags & BIDIRECTIONAL:
        return True
    return bool(flags & (CHILD_TO_PARENT if child else PARENT_TO_CHILD))


def _integer(what: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, SupportsIndex):
        raise TypeError(f"sfork: {what} must be an int, not {type(v).__name__}")
    return operator.index(v)


def _open_device() -> int:
    """/dev/sfork, read-write and close-on-exec; absent (or its module gone) is ENOSYS."""
    try:
        return os.open(DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise OSError(
                errno.ENOSYS,
                f"{os.strerror(errno.ENOSYS)}: the sfork module is not loaded "
                f"({e.strerror}; modprobe sfork)",
                DEVICE,
            ) from None
        raise


def _view(addr: int, size: int, can_write: bool) -> memoryview:
    """A memoryview (format "B") over ``size`` bytes of an existing mapping at ``addr``."""
    arr = (ctypes.c_ubyte * size).from_address(addr)
    view = memoryview(arr).cast("B")
    return view if can_write else view.toreadonly()


def _block_all() -> set[int | signal.Signals]:
    """Block every signal; returns the previous mask."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, ())
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
    except BaseException:
        # a pending handler raised once the mask had already changed
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        raise
    return old


# --- the API ---------------------------------------------------------------------------


def sfork(size: int, flags: int, alloc: int | None = None) -> tuple[int, memoryview]:
    """Create a region of ``size`` bytes shared with a new child process, and fork.

    ``flags``: exactly one of BIDIRECTIONAL, PARENT_TO_CHILD, CHILD_TO_PARENT, optionally
    OR'ed with LAZY or EAGER; ``alloc`` (LAZY, EAGER or None: the module chooses by size)
    is OR'ed in.  Returns ``(pid, region)``: the child's PID in the parent and 0 in the
    child, and a memoryview (format "B", ``size`` rounded up to the page size, zero-filled)
    over the region, at the same address in both; writable on a writing side, read-only
    (``TypeError`` on assignment) on the other.

    Raises OSError with the contract's errno (module docstring); nothing is left behind.
    """
    length = _integer("size", size)
    bits = _integer("flags", flags)
    if alloc is not None:
        bits |= _integer("alloc", alloc)
    where = f"sfork(size={length}, flags={flag_names(bits) if bits >= 0 else bits})"
    if length < 0 or bits < 0 or bits >= _U32:
        raise OSError(errno.EINVAL, f"{os.strerror(errno.EINVAL)}: {where}")
    if length >= _U64:
        raise OSError(errno.ENOMEM, f"{os.strerror(errno.ENOMEM)}: {where}")

    out_addr = ctypes.c_void_p(0)  # the caller's ``void *``: the kernel writes the start here
    req = _Create(len=length, flags=bits, addr_ptr=ctypes.addressof(out_addr))
    created = False
    old = _block_all()
    try:
        fd = _open_device()
        try:
            _ioctl(fd, IOC_CREATE, req)
            created = True
        except OSError as e:
            raise OSError(e.errno, f"{os.strerror(e.errno or 0)}: {where}") from None
        finally:
            os.close(fd)  # the mapping, not the descriptor, keeps the region alive
        addr = out_addr.value
        if not addr or addr != req.addr:
            raise OSError(errno.EPROTO, f"{where}: the module returned no address")
        pid = os.fork()
    except BaseException:
        if created:
            _munmap(req.addr, req.size)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid, _view(addr, req.size, writable(req.out_flags, child=pid == 0))


def _array(region: memoryview) -> ctypes.Array[ctypes.c_ubyte]:
    obj = region.obj
    if not isinstance(obj, ctypes.Array):
        raise TypeError(
            "sfork: not a view of a region (pass the memoryview sfork() or region_map() returned)"
        )
    return obj


def address(region: memoryview) -> int:
    """The start address of the region that ``region`` (from sfork() or region_map(), or a
    view of it) views; TypeError for a memoryview over anything else."""
    return ctypes.addressof(_array(region))


def unmap(region: memoryview) -> None:
    """Release ``region`` and unmap the whole region it views from this process.

    Other views of the same region must not be used afterwards (that is a SIGSEGV).
    ``BufferError`` if ``region`` is still exported (nothing is unmapped then).
    """
    arr = _array(region)
    addr, size = ctypes.addressof(arr), ctypes.sizeof(arr)
    region.release()
    _munmap(addr, size)


def region_fd(region: memoryview, *, inheritable: bool = False) -> int:
    """A new descriptor for this process's side of ``region`` (``SFORK_IOC_EXPORT``).

    It carries the side: mapped anywhere (region_map(), after ``execve`` or in another
    process that received it over a socket) it gives that side's permission, and a
    read-only side's descriptor never maps writable.  Non-inheritable (``O_CLOEXEC``) unless
    ``inheritable``.  OSError: EINVAL (not a region), ENOSYS (no module).
    """
    req = _Export(addr=address(region), fd_flags=0 if inheritable else os.O_CLOEXEC)
    fd = _open_device()
    try:
        _ioctl(fd, IOC_EXPORT, req)
    except OSError as e:
        raise OSError(e.errno, f"{os.strerror(e.errno or 0)}: sfork region_fd") from None
    finally:
        os.close(fd)
    return int(req.fd)


def region_map(fd: int) -> memoryview:
    """Map the whole region behind ``fd`` (from region_fd()) with that side's permission.

    Returns a memoryview like sfork()'s (read-only unless the side may write); the
    mapping outlives ``fd``, which the caller closes.  OSError: EINVAL (not such a
    descriptor), or mmap's.
    """
    info = _Info()
    try:
        _ioctl(fd, IOC_INFO, info)
    except OSError as e:
        code = errno.EINVAL if e.errno == errno.ENOTTY else e.errno
        raise OSError(code, f"{os.strerror(code or 0)}: sfork region_map(fd={fd})") from None
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if info.writable else 0)
    addr = _libc().mmap(None, info.size, prot, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, f"{os.strerror(err)}: sfork region_map: mmap(fd={fd})")
    return _view(addr, info.size, bool(info.writable))
