"""Fault injection for crash-safety tests; disabled unless a test sets the variable.

``RECIPE_TEST_FAULT=<point>`` makes this process kill itself with SIGKILL when it reaches
``point`` — the one way to hit "between rename and database commit" deterministically. No
user-facing behaviour depends on it, and with the variable unset each point is one lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "RECIPE_TEST_FAULT"


def point(name: str) -> None:
    """Die here, as a power cut or ``kill -9`` would, when the test asked for ``name``."""
    if os.environ.get(VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
