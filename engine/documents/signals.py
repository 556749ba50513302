"""Signals by name and number, as cases spell them and as observations report them.

A module of its own (``engine.documents.cases`` re-exports it): comparing an outcome that
ended by a signal needs these, not the document loader that cases.py brings.
"""

from __future__ import annotations

import signal as signals

# Every signal name this system knows (aliases such as SIGIOT included) -> its number.
SIGNALS = {name: int(sig) for name, sig in signals.Signals.__members__.items()}


def signal_name(number: int) -> str:
    """The usual name of a signal number (as a process's observation names it)."""
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def signal_number(name: str) -> int | None:
    """The number of a signal as an observation names it (``SIGSEGV`` or ``signal 40``)."""
    if name.startswith("signal ") and name[7:].isdigit():
        return int(name[7:])
    return SIGNALS.get(name)
