"""Turn a test's output and exit status into pass / fail / skip with a reason.

Understands LTP (``TPASS``/``TFAIL``/``TBROK``/``TCONF``/``TWARN`` lines and the
exit bitmask: 0 pass, 32 only TCONF, else OR of 1 FAIL, 2 BROK, 4 WARN) and
KTAP/TAP (``ok``/``not ok`` with ``# SKIP``/``# TODO`` directives).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import re
import signal

LTP_FAIL, LTP_BROK, LTP_WARN, LTP_CONF = 1, 2, 4, 32

_LTP_RX = re.compile(r"^(?:\S+:\d+: )?(TPASS|TFAIL|TBROK|TCONF|TWARN|TINFO|TDEBUG): ?(.*)$")
_TAP_RX = re.compile(r"^\s*(not ok|ok)\b(?:\s+(\d+))?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(.*))?$")
_TAP_PLAN_RX = re.compile(r"^\s*1\.\.(\d+)")


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


@dataclasses.dataclass(frozen=True)
class LtpLine:
    kind: str
    message: str


@dataclasses.dataclass(frozen=True)
class TapLine:
    ok: bool
    number: int | None
    description: str
    directive: str  # "", "SKIP ...", "TODO ..."

    @property
    def skipped(self) -> bool:
        return self.directive.upper().startswith("SKIP")

    @property
    def todo(self) -> bool:
        return self.directive.upper().startswith("TODO")


def parse_ltp(text: str) -> list[LtpLine]:
    out = []
    for line in text.splitlines():
        m = _LTP_RX.match(line.strip())
        if m:
            out.append(LtpLine(m.group(1), m.group(2)))
    return out


def parse_tap(text: str) -> list[TapLine]:
    """TAP 13/14 and KTAP result lines (nested KTAP lines are indented: included)."""
    out = []
    for line in text.splitlines():
        m = _TAP_RX.match(line)
        if m:
            out.append(
                TapLine(
                    ok=m.group(1) == "ok",
                    number=int(m.group(2)) if m.group(2) else None,
                    description=m.group(3).strip(),
                    directive=(m.group(4) or "").strip(),
                )
            )
    return out


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str


def describe_status(status: int) -> str:
    if status == 127:
        return "exit status 127: command not found in the guest (is it built into a bin_dirs dir?)"
    if status == 126:
        return "exit status 126: not executable in the guest (dynamically linked? use -static)"
    if status < 0:
        return "interrupted (timeout)"
    if status > 128 and status - 128 < 65:
        try:
            return f"killed by {signal.Signals(status - 128).name} (status {status})"
        except ValueError:
            pass
    return f"exit status {status}"


def ltp_verdict(text: str, status: int) -> Verdict:
    """The LTP rules, applied to exit status and result lines together."""
    lines = parse_ltp(text)
    kinds = {ln.kind for ln in lines}
    bad = [ln for ln in lines if ln.kind in ("TFAIL", "TBROK", "TWARN")]
    known = LTP_FAIL | LTP_BROK | LTP_WARN | LTP_CONF
    if status > 128 or status in (126, 127) or status < 0 or status & ~known:
        first = f": {bad[0].kind}: {bad[0].message}" if bad else ""
        return Verdict(Outcome.FAIL, f"{describe_status(status)}{first}")
    if status & (LTP_FAIL | LTP_BROK | LTP_WARN) or bad:
        names = [
            n
            for b, n in ((LTP_FAIL, "TFAIL"), (LTP_BROK, "TBROK"), (LTP_WARN, "TWARN"))
            if status & b
        ]
        detail = "; ".join(f"{b.kind}: {b.message}" for b in bad[:5])
        return Verdict(Outcome.FAIL, f"{'|'.join(names) or 'exit 0 but'} {detail}".strip())
    if status == LTP_CONF or (kinds and kinds <= {"TCONF", "TINFO", "TDEBUG"} and "TCONF" in kinds):
        conf = [ln.message for ln in lines if ln.kind == "TCONF"]
        return Verdict(Outcome.SKIP, "TCONF: " + ("; ".join(conf[:3]) or "test not applicable"))
    if status == 0 and "TPASS" not in kinds and "TCONF" in kinds:
        conf = [ln.message for ln in lines if ln.kind == "TCONF"]
        return Verdict(Outcome.SKIP, "TCONF: " + "; ".join(conf[:3]))
    return Verdict(Outcome.PASS, f"{sum(1 for ln in lines if ln.kind == 'TPASS')} TPASS")


def tap_verdict(text: str, status: int) -> Verdict:
    tap = parse_tap(text)
    failed = [t for t in tap if not t.ok and not t.todo and not t.skipped]
    if failed:
        return Verdict(
            Outcome.FAIL,
            "; ".join(f"not ok {t.number or ''} {t.description}".strip() for t in failed[:5]),
        )
    if status != 0:
        return Verdict(Outcome.FAIL, describe_status(status))
    if tap and all(t.skipped for t in tap):
        return Verdict(Outcome.SKIP, tap[0].directive)
    plans = [m for ln in text.splitlines() if (m := _TAP_PLAN_RX.match(ln))]
    plan = int(plans[0].group(1)) if plans else None
    if plan is not None and plan != len([t for t in tap if t.number is not None]) and plan > 0:
        top = [t for t in tap if t.number is not None]
        if len(top) < plan:
            return Verdict(Outcome.FAIL, f"TAP plan 1..{plan} but {len(top)} results")
    return Verdict(Outcome.PASS, f"{sum(t.ok for t in tap)} ok")


def plain_verdict(status: int) -> Verdict:
    if status == 0:
        return Verdict(Outcome.PASS, "exit status 0")
    return Verdict(Outcome.FAIL, describe_status(status))


def auto_verdict(text: str, status: int) -> Verdict:
    """LTP when LTP lines are present, else TAP when TAP lines are, else the exit status."""
    if parse_ltp(text):
        return ltp_verdict(text, status)
    if parse_tap(text):
        return tap_verdict(text, status)
    return plain_verdict(status)


# --- expected outcomes other than "pass" ----------------------------------------


def signal_number(name: str) -> int:
    n = name.upper()
    if not n.startswith("SIG"):
        n = "SIG" + n
    return int(signal.Signals[n])


def errno_number(name: str) -> int:
    v = getattr(errno, name.upper(), None)
    if not isinstance(v, int):
        raise KeyError(name)
    return v


def expect_signal(status: int, name: str) -> Verdict:
    want = signal_number(name)
    if status == 128 + want:
        return Verdict(Outcome.PASS, f"killed by {name} as expected")
    return Verdict(Outcome.FAIL, f"expected death by {name}, got {describe_status(status)}")


def expect_errno(text: str, status: int, name: str) -> Verdict:
    """Pass when the command failed with errno NAME.

    Either the exit status is the errno number, or the command failed (non-zero,
    not a signal) and its output names the errno the way LTP and strerror do
    (``EINVAL`` or ``EINVAL (22)``).
    """
    num = errno_number(name)
    named = re.search(rf"\b{re.escape(name.upper())}\b", text) is not None
    if status == num or (status != 0 and status <= 128 and named):
        return Verdict(Outcome.PASS, f"failed with {name.upper()} as expected")
    return Verdict(
        Outcome.FAIL, f"expected failure with {name.upper()} ({num}), got {describe_status(status)}"
    )
