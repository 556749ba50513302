"""Judge an observation against a case's expectation; the differences are rendered as diffs by
``engine.verify.diffs``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine import watch
from engine.documents.models import Case
from engine.documents.signals import signal_name, signal_number
from engine.verify.diffs import escaped, format_size, unified_diff
from engine.verify.outcome import Observed, Status
from engine.verify.patterns import PatternTooSlow, matches, normalize, redactions

WRITES_NOTE = ("a case may write only into its working folder and $TMPDIR; a write anywhere "
               "else fails with EACCES (Permission denied)")


@dataclass(frozen=True)
class Expected:
    """The bytes a case expects; None means unchecked. ``missing`` names absent golden files."""

    stdout: bytes | None
    stderr: bytes | None
    exit: int
    signal: int | None = None  # the process must die by this signal (``exit`` is then unused)
    missing: tuple[str, ...] = ()  # golden files that do not exist
    missing_streams: tuple[str, ...] = ()  # the streams they stand for: always a mismatch


def expected(case: Case) -> Expected:
    """Read the expectation, following ``stdout_file`` / ``stderr_file`` beside the cases file."""
    missing: list[str] = []

    def stream(inline: bytes | None, file: str | None) -> bytes | None:
        if inline is not None or file is None:
            return inline
        watch.seen(case.folder / file)  # a remembered verify depends on its golden files
        try:
            return (case.folder / file).read_bytes()
        except FileNotFoundError:
            missing.append(file)
            return b""

    e = case.expect
    # DESIGN 1.2: stdout is always compared (absent means empty); stderr only when given.
    out = stream(e.stdout, e.stdout_file)
    if out is None:
        out = b""
    err = stream(e.stderr, e.stderr_file)
    return Expected(out, err, e.exit, e.signal, tuple(missing),
                    tuple(n for n, f in (("stdout", e.stdout_file), ("stderr", e.stderr_file))
                          if f in missing))


def with_newlines(case: Case, observed: Observed) -> Observed:
    """What is compared (and re-recorded): with ``newlines: lf``, ``\r\n`` printed is ``\n``."""
    if case.newlines != "lf":
        return observed
    return dataclasses.replace(observed, stdout=observed.stdout.replace(b"\r\n", b"\n"),
                               stderr=observed.stderr.replace(b"\r\n", b"\n"))


def compare(case: Case, observed: Observed, cap: int) -> tuple[Status, str, str]:
    """``(status, one-line message, detail)`` of an observation against the case's expectation.
    A redaction that backtracks without end makes it an ``error``: the case cannot be judged."""
    try:
        return _compare(case, observed, cap)
    except PatternTooSlow as error:
        return "error", error.render(), ""


def _compare(case: Case, observed: Observed, cap: int) -> tuple[Status, str, str]:
    observed = with_newlines(case, observed)
    want = expected(case)
    marks = redactions(case, observed)
    differs: list[str] = []
    details: list[str] = [f"{m} does not exist (re-record with --update)\n" for m in want.missing]
    for name, exp, got in (("stdout", want.stdout, observed.stdout),
                           ("stderr", want.stderr, observed.stderr)):
        if exp is not None and (not matches(exp, got, marks) or name in want.missing_streams):
            differs.append(name)
            # Lines a pattern still matches show as the pattern: only real changes differ.
            details.append(unified_diff(exp, normalize(got, exp, marks, substitute=False),
                                        name))
    if case.expect.files or case.expect.tree:
        from engine.verify import files_expect  # not at the top: it loads ruamel.yaml

        more, more_details = files_expect.compare(case, observed, marks)
        differs += more
        details += more_details
    exit_differs = want.signal is None and observed.exit is not None and \
        observed.exit != want.exit
    if exit_differs:
        differs.append("exit code")
        details.append(f"exit code: expected {want.exit}, got {observed.exit}\n")
    ending = _ending(want, observed)
    if ending:
        details.append(f"ended: expected {_said(want.exit, want.signal)}, got "
                       f"{_said(observed.exit, signal_number(observed.signal or ''))}\n")

    if observed.timed_out:
        message = f"timed out after {case.timeout:g}s"
    elif observed.capped:
        message = f"{observed.capped} exceeded {format_size(cap)}"
    elif observed.scratch_full:
        message = (f"its scratch folder exceeded {format_size(case.scratch_limit)} "
                   "(scratch_limit)")
    elif observed.wrote:
        more = f" (and {len(observed.wrote) - 1} more)" if len(observed.wrote) > 1 else ""
        if observed.wrote_alone:
            message = f"wrote into read-only {observed.wrote[0]}{more}"
        else:
            message = (f"read-only {observed.wrote[0]}{more} changed while it ran, by this case "
                       "or one running beside it")
    elif ending:
        message = ending + (f"; {_join(differs)} {'differs' if len(differs) == 1 else 'differ'}"
                            if differs and want.signal is not None else "")
    elif differs:
        verb = "differs" if len(differs) == 1 else "differ"
        message = f"{_join(differs)} {verb}"
        if exit_differs:
            message += f" (exit {observed.exit}, expected {want.exit})"
    else:
        return "passed", "", ""
    if observed.wrote:
        details.insert(0, "".join(f"changed: {p}\n" for p in observed.wrote[:20]))
    if want.stderr is None and observed.stderr:  # unchecked, but it likely says what went wrong
        details.append("stderr (unchecked):\n" + escaped(observed.stderr, 20))
    if b"Permission denied" in observed.stderr:  # likely a write the sandbox refused
        details.append(f"note: {WRITES_NOTE}\n")
    return "failed", message, "".join(details)


def _ending(want: Expected, observed: Observed) -> str:
    """Why the process did not end as expected, in words ("" when it did). An exit code and a
    signal are never mistaken for each other: a shell's 139 is not SIGSEGV."""
    got = signal_number(observed.signal) if observed.signal else None
    if want.signal is None:
        return f"killed by {observed.signal}" if observed.signal else ""
    if observed.signal is None:
        return f"exited with {observed.exit}, expected to be killed by {signal_name(want.signal)}"
    if got != want.signal:
        return f"killed by {observed.signal}, expected {signal_name(want.signal)}"
    return ""


def _said(exit: int | None, signal: int | None) -> str:
    if signal is None:
        return f"exit code {exit}"
    name = signal_name(signal)
    return name if name.startswith("signal ") else f"signal {name}"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
