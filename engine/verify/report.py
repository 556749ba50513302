"""Reporters: the same outcomes rendered as a table with details, as JUnit XML, or as JSON.

Unsupported cases count as not passed everywhere: in JUnit they are failures, not ``<skipped/>``,
so that CI never shows green for a case nobody ran. A case its document marks ``skip`` is
``<skipped message="reason"/>``, one marked ``xfail`` that failed is ``<skipped message="xfail:
reason"/>`` (as pytest writes it), and one that passed nevertheless (xpassed) a failure.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.verify.diffs import visible
from engine.verify.outcome import STATUSES, Outcome

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

# Characters XML 1.0 cannot hold at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def summary(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """Outcomes per status; a case ``--update`` re-recorded counts as ``updated``, not as what
    it was before."""
    # "not run" is counted only where a target has no runner: host-only reports keep their keys
    counts = {status: 0 for status in STATUSES if status != "not run"}
    for outcome in outcomes:
        if not outcome.updated:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
    counts["updated"] = sum(o.updated for o in outcomes)
    counts["cached"] = sum(o.cached for o in outcomes)
    counts["total"] = len(outcomes)
    return counts


def summary_line(outcomes: Sequence[Outcome]) -> str:
    """E.g. ``12 passed, 1 failed, 2 error (5 cached)``; after ``--update``, ``3 updated``."""
    counts = summary(outcomes)
    parts = [f"{counts[s]} {s}" for s in (*STATUSES, "updated") if counts.get(s)]
    line = ", ".join(parts) or "no cases"
    return f"{line} ({counts['cached']} cached)" if counts["cached"] else line


HEADERS = ("project", "target", "case", "outcome", "time")


def render_table(outcomes: Sequence[Outcome]) -> str:
    rows = [(o.project, f"{o.target} ({o.runner})" if o.runner else o.target, visible(o.case),
             o.label, f"{o.seconds:.2f}s") for o in outcomes]
    if all(cell.isascii() and cell.isprintable() for row in rows for cell in row):
        return simple_table(rows, HEADERS)
    # Line breaks and wide characters: tabulate's rules for them (and wcwidth's, if installed).
    from tabulate import tabulate

    return tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True)


def simple_table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """What ``tabulate(rows, headers, tablefmt="simple", disable_numparse=True)`` prints for
    cells of printable ASCII (tests/unit/test_verify_report.py compares the two), without
    importing tabulate: its import asks importlib.metadata for its own version, which reads
    the metadata of every installed distribution (144 M instructions, a sixth of a verify
    whose outcomes are all cached)."""
    cells = [[cell.strip() for cell in row] for row in rows]
    widths = [max([len(h) + 2, *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths),
                      *(line(row) for row in cells)])


def render_details(outcomes: Sequence[Outcome]) -> str:
    """Every outcome that did not pass: a header line with its message, then its detail."""
    blocks = []
    for o in outcomes:
        if o.passed:
            continue
        if o.ignored:
            continue  # listed in the table; runner: none says why
        block = visible(f"=== {o.label.split()[0].upper()} {o.ident}: {o.message}") + "\n"
        if o.detail and not o.ok:  # an expected failure's diff is known: its line is enough
            block += visible(o.detail if o.detail.endswith("\n") else o.detail + "\n")
        blocks.append(block)
    return "\n".join(blocks)


def render_text(outcomes: Sequence[Outcome], notes: Sequence[str] = ()) -> str:
    """The whole human report: the table, the details of what did not pass, ``notes`` (lines
    such as what ``--update`` did), the summary line."""
    if not outcomes:
        return "".join(f"{n}\n" for n in notes) + summary_line(outcomes) + "\n"
    parts = [render_table(outcomes) + "\n"]
    details = render_details(outcomes)
    if details:
        parts.append(details)
    if notes:
        parts.append("".join(f"{visible(n)}\n" for n in notes))
    parts.append(summary_line(outcomes) + "\n")
    return "\n".join(parts)


def to_json(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    return {"outcomes": [o.as_json() for o in outcomes], "summary": summary(outcomes)}


def junit_xml(outcomes: Sequence[Outcome]) -> ET.ElementTree:
    import xml.etree.ElementTree as ET  # only a JUnit report needs it
    """``testsuites`` > one ``testsuite`` per project/target > ``testcase``; not passed is a
    ``failure`` (``error`` when the runner itself could not run the case)."""
    suites: dict[tuple[str, str], list[Outcome]] = {}
    for o in outcomes:
        suites.setdefault((o.project, o.target), []).append(o)
    root = ET.Element("testsuites", name="recipe verify")
    _counts(root, outcomes)
    for (project, target), members in suites.items():
        suite = ET.SubElement(root, "testsuite", name=f"{project}/{target}")
        _counts(suite, members)
        for o in members:
            case = ET.SubElement(suite, "testcase", classname=f"{project}.{target}",
                                 name=_xml_text(o.case), time=f"{o.seconds:.3f}")
            if o.passed or o.updated:
                continue
            if o.ignored:  # the target says runner: none
                ET.SubElement(case, "skipped", message=_xml_text(o.message))
                continue
            if o.status in ("skipped", "xfailed"):
                said = o.reason if o.status == "skipped" else f"xfail: {o.reason}"
                node = ET.SubElement(case, "skipped", message=_xml_text(said or ""))
                node.text = _xml_text(o.message) if o.status == "xfailed" else None
                continue
            tag = "error" if o.status == "error" else "failure"
            node = ET.SubElement(case, tag, message=_xml_text(o.message), type=o.status)
            node.text = _xml_text(o.detail)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(outcomes: Sequence[Outcome], path: Path) -> None:
    """Write the JUnit XML to ``path`` through a temporary file beside it and a rename."""
    buffer = io.BytesIO()
    junit_xml(outcomes).write(buffer, encoding="utf-8", xml_declaration=True)
    replace_file(Path(path), buffer.getvalue() + b"\n")


def replace_file(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` whole or not at all: a temporary file beside it, then a rename
    (a reader never sees half a report, a failed write leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp made it private; a report is for everyone
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _counts(node: ET.Element, outcomes: Sequence[Outcome]) -> None:
    counts = summary(outcomes)
    node.set("tests", str(counts["total"]))
    # an updated case matches now: no failure (``summary`` counts it as updated)
    node.set("failures", str(counts["failed"] + counts["xpassed"] + sum(
        o.status == "not run" and not o.ignored for o in outcomes)))
    node.set("errors", str(counts["error"]))
    node.set("skipped", str(counts["skipped"] + counts["xfailed"]
                            + sum(o.ignored for o in outcomes)))
    node.set("time", f"{sum(o.seconds for o in outcomes):.3f}")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
