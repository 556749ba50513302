"""The HTML reporter: the outcomes of a run as one self-contained page a person looks at.

The page needs nothing but itself: inline CSS, no script, no font, no image, and a
Content-Security-Policy that forbids loading anything, so it opens the same from a CI artefact
on a machine with no network. Every text that comes from a case (names, outputs, tracebacks)
goes through ``visible`` (control characters and invalid UTF-8 escaped) and then
``html.escape``; the policy also forbids scripts, so even a missed escape could not run one.

It reads what every reporter reads, an ``Outcome``: diffs are found in ``detail`` (unified diffs
as ``engine.verify.compare`` writes them) and coloured line by line; a function case's failing
rows come from its ``source`` table and ``rows``. Filtering needs no script: a checkbox and
CSS ``:has()``. A new outcome kind needs one line in ``_LOOK``; until then it shows in neutral
grey.
"""

from __future__ import annotations

import html
import re
import shlex
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.verify.diffs import visible
from engine.verify.outcome import STATUSES, Outcome
from engine.verify.report import replace_file
from engine.verify.table import more_rows, row_label, show

# How an outcome kind looks: its colour class (ok green, bad red, warn amber, other grey) and
# whether its case opens on its own.
_LOOK: dict[str, tuple[str, bool]] = {
    "passed": ("ok", False),
    "failed": ("bad", True),
    "error": ("bad", True),
    "xfailed": ("warn", False),
    "xpassed": ("bad", True),
    "skipped": ("other", False),
}
_NEUTRAL = ("other", True)
_EXIT = re.compile(r"^(exit code|ended): expected (.+), got (.+)$")
_CUT = re.compile(r"^\.\.\. \d+ more lines cut$")
_DIFF_BODY = (" ", "-", "+", "@@", "\\")

_CSS = """
:root{--ok:#1a7f37;--bad:#cf222e;--other:#6e7781;--line:#d0d7de;--soft:#f6f8fa;
--add:#dafbe1;--del:#ffebe9;--hunk:#ddf4ff}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328}
header{padding:16px 24px;border-bottom:1px solid var(--line);border-top:6px solid var(--ok)}
header.bad{border-top-color:var(--bad)}
h1{margin:0 0 8px;font-size:20px}
h1 .verdict{font-weight:normal;color:#57606a}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:10px 0 0}
dt{color:#57606a}dd{margin:0}
main{padding:8px 24px 32px}
h2{font-size:15px;margin:22px 0 6px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h2 small{font-weight:normal;color:#57606a;margin-left:8px}
.badge{display:inline-block;min-width:58px;padding:0 8px;border-radius:10px;color:#fff;
font-size:12px;font-weight:600;text-align:center;background:var(--other)}
.badge.ok{background:var(--ok)}.badge.bad{background:var(--bad)}.badge.warn{background:#9a6700}
.counts .badge{font-size:13px;padding:2px 10px;margin-right:4px}
nav{padding:10px 24px;background:var(--soft);border-bottom:1px solid var(--line)}
nav a{color:var(--bad);margin-right:14px}
.filter{display:block;margin:12px 0 0;color:#57606a}
details.case{border:1px solid var(--line);border-radius:6px;margin:6px 0}
details.case>summary{padding:5px 10px;cursor:pointer;display:flex;gap:10px;
align-items:baseline}
details.case[open]>summary{border-bottom:1px solid var(--line);background:var(--soft)}
.name{font-weight:600;overflow-wrap:anywhere}.msg{color:#57606a;flex:1}
.time{color:#57606a;font-variant-numeric:tabular-nums;white-space:nowrap}
.body{padding:8px 12px}
pre{margin:6px 0;padding:6px 0;background:var(--soft);border:1px solid var(--line);
border-radius:4px;overflow-x:auto;font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre span{display:block;padding:0 10px;white-space:pre}
pre .add{background:var(--add);color:#116329}pre .del{background:var(--del);color:#a40e26}
pre .hunk{background:var(--hunk);color:#0550ae}pre .hd{font-weight:600}
pre .note{color:#6e7781;font-style:italic}
table.rows{border-collapse:collapse;margin:6px 0;font-size:13px}
.rows th,.rows td{border:1px solid var(--line);padding:2px 8px;text-align:left;
font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.rows th{background:var(--soft);font-family:inherit}
.rows .want{background:var(--add)}.rows .got{background:var(--del)}
.repro{color:#57606a;margin:6px 0 0}
.repro code{color:#1f2328;background:var(--soft);padding:1px 6px;border-radius:4px;
font:12px ui-monospace,"DejaVu Sans Mono",monospace;overflow-wrap:anywhere}
@media print{*{print-color-adjust:exact;-webkit-print-color-adjust:exact}.filter{display:none}}
body:has(#only-failing:checked) details.ok{display:none}
body:has(#only-failing:checked) section:not(:has(details:not(.ok))){display:none}
"""


def render_html(outcomes: Sequence[Outcome], *, command: Sequence[str] = ("recipe", "verify"),
                seconds: float | None = None, written: float | None = None) -> str:
    """The page. ``command`` is the verify command line a case is reproduced with (``-t`` and
    ``-k`` are added per case); ``seconds`` the run's wall time; ``written`` a Unix time."""
    counts = _counts(outcomes)
    bad = sum(not o.ok for o in outcomes)
    verdict = f"{bad} of {len(outcomes)} cases did not pass" if bad else \
        f"all {len(outcomes)} cases passed" if outcomes and all(o.passed for o in outcomes) \
        else _count_words(counts) if outcomes else "no cases"
    parts = ["<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
             "style-src 'unsafe-inline'\">\n",
             '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
             f"<title>recipe verify: {_e(_count_words(counts))}</title>\n",
             f"<style>{_CSS}</style>\n</head>\n<body>\n",
             _header(outcomes, counts, verdict, command, seconds, written)]
    failing = [(i, o) for i, o in enumerate(outcomes) if not o.ok]
    if failing:
        links = "".join(f'<a href="#c{i}">{_e(o.project)}/{_e(o.target)}: {_e(o.case)}</a>'
                        for i, o in failing)
        parts.append(f"<nav><strong>Did not pass:</strong> {links}</nav>\n")
    parts.append("<main>\n<label class=\"filter\"><input type=\"checkbox\" id=\"only-failing\">"
                 " show only the cases that did not pass</label>\n")
    groups: dict[tuple[str, str], list[int]] = {}
    for i, o in enumerate(outcomes):
        groups.setdefault((o.project, o.target), []).append(i)
    for (project, target), members in groups.items():
        group = [outcomes[i] for i in members]
        parts.append(f"<section>\n<h2>{_e(project)} / {_e(target)}"
                     f"<small>{_e(_count_words(_counts(group)))}</small></h2>\n")
        parts.extend(_case(i, outcomes[i], command) for i in members)
        parts.append("</section>\n")
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


def write_html(outcomes: Sequence[Outcome], path: Path, *,
               command: Sequence[str] = ("recipe", "verify"), seconds: float | None = None,
               written: float | None = None) -> None:
    """Write the page to ``path`` (through a temporary file beside it and a rename)."""
    text = render_html(outcomes, command=command, seconds=seconds, written=written)
    replace_file(Path(path), text.encode("utf-8", "backslashreplace"))


def repro_command(command: Sequence[str], outcome: Outcome) -> str:
    """The shell command that runs this one case again."""
    words = [*command, "-t", outcome.target, "-k", f"{outcome.project}/{outcome.case}"]
    return " ".join(shlex.quote(w) for w in words)


def _header(outcomes: Sequence[Outcome], counts: dict[str, int], verdict: str,
            command: Sequence[str], seconds: float | None, written: float | None) -> str:
    badges = "".join(f'<span class="badge {_look(s)[0]}">{n} {_e(s)}</span>'
                     for s, n in counts.items())
    cached = sum(o.cached for o in outcomes)
    if cached:
        badges += f' <span class="verdict">({cached} from the outcome cache)</span>'
    facts = [("targets", ", ".join(_unique(o.target for o in outcomes)) or "none"),
             ("projects", ", ".join(_unique(o.project for o in outcomes)) or "none"),
             ("command", " ".join(shlex.quote(w) for w in command))]
    summed = sum(o.seconds for o in outcomes)
    took = f"cases {summed:.2f} s summed"
    if seconds is not None:
        took = f"{seconds:.2f} s in all (build included), {took}"
    facts.append(("time", took))
    if written is not None:
        facts.append(("written", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(written))))
    rows = "".join(f"<dt>{name}</dt><dd>{_e(value)}</dd>" for name, value in facts)
    look = "bad" if any(not o.ok for o in outcomes) else "ok"
    return (f'<header class="{look}">\n<h1>recipe verify <span class="verdict">— '
            f'{_e(verdict)}</span></h1>\n<div class="counts">{badges}</div>\n'
            f"<dl>{rows}</dl>\n</header>\n")


def _case(index: int, o: Outcome, command: Sequence[str]) -> str:
    look, opened = _look(o.status)
    body = []
    detail = o.detail
    table = _rows_table(o)
    if table:
        body.append(table)
        detail = "".join(line for line in detail.splitlines(keepends=True)
                         if not line.startswith(("row ", "... and ")))
    body.extend(_blocks(detail))
    if o.cached:
        body.append('<p class="repro">from the outcome cache: the run recorded for the same '
                    "inputs (--no-cache runs it again)</p>")
    body.append(f'<p class="repro">reproduce: <code>{_e(repro_command(command, o))}</code></p>')
    return (f'<details class="case {look}" id="c{index}"{" open" if opened else ""}>'
            f'<summary><span class="badge {look}">{_e(o.label)}</span>'
            f'<span class="name">{_e(o.case)}</span><span class="msg">{_e(o.message)}</span>'
            f'<span class="time">{o.seconds:.2f} s</span></summary>\n'
            f'<div class="body">{"".join(body)}</div></details>\n')


def _blocks(detail: str) -> list[str]:
    """``detail`` as ``<pre>`` blocks: each unified diff coloured, the rest as plain text."""
    lines = detail.splitlines()
    blocks: list[str] = []
    text: list[str] = []

    def flush_text() -> None:
        if any(line.strip() for line in text):
            blocks.append(_pre([("", line) for line in text]))
        text.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        exit_line = _EXIT.match(line)
        if line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            flush_text()
            diff = [("hd del", line), ("hd add", lines[i + 1])]
            i += 2
            while i < len(lines) and (lines[i].startswith(_DIFF_BODY) or _CUT.match(lines[i])):
                if lines[i].startswith("--- ") and i + 1 < len(lines) and \
                        lines[i + 1].startswith("+++ "):
                    break  # the next stream's diff
                diff.append((_diff_class(lines[i]), lines[i]))
                i += 1
            blocks.append(_pre(diff))
            continue
        if exit_line:
            flush_text()
            what, want, got = exit_line.groups()
            what = "exit code" if what == "exit code" else "ending"
            blocks.append(_pre([("hd del", f"--- expected {what}"),
                                ("hd add", f"+++ observed {what}"),
                                ("del", f"-{want}"), ("add", f"+{got}")]))
        else:
            text.append(line)
        i += 1
    flush_text()
    return blocks


def _diff_class(line: str) -> str:
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "note" if line.startswith(("\\", "...")) else ""


def _pre(lines: list[tuple[str, str]]) -> str:
    spans = "".join(f'<span class="{cls}">{_e(line) or " "}</span>' if cls
                    else f"<span>{_e(line) or ' '}</span>" for cls, line in lines)
    return f"<pre>{spans}</pre>"


def _rows_table(o: Outcome) -> str:
    """A function case's failing rows: arguments, expected, got (or why there is nothing)."""
    case = o.source
    if case is None or case.signature is None or not (o.rows or o.crashed):
        return ""
    sig = case.signature
    failing = sorted(set(o.rows) | set(o.crashed))
    head = "".join(f"<th>arg {n} <small>({_e(p.spelling)})</small></th>"
                   for n, p in enumerate(sig.params, 1))
    body = []
    shown = failing[:max(o.rows_shown, 0)]
    for i in shown:
        if i >= len(case.table):
            continue
        row = case.table[i]
        got = show(o.rows[i]) if i in o.rows else _problem(o.detail, case, i, row[:-1])
        cells = "".join(f"<td>{_e(show(v))}</td>" for v in row[:-1])
        where = row_label(case, i).removeprefix("row ")
        body.append(f'<tr><td>{_e(where)}</td>{cells}<td class="want">{_e(show(row[-1]))}'
                    f'</td><td class="got">{_e(got)}</td></tr>')
    more = f"<p>{_e(more_rows(len(failing) - len(shown)))}</p>" \
        if len(failing) > len(shown) else ""
    return (f"<p><code>{_e(sig.text)}</code>: {len(failing)} of {len(case.table)} rows "
            f'failed</p><table class="rows"><tr><th>row</th>{head}<th>expected</th>'
            f"<th>got</th></tr>{''.join(body)}</table>{more}")


def _problem(detail: str, case: Any, index: int, args: Sequence[object]) -> str:
    """Why row ``index`` has no result, as its line of ``detail`` says (``table.judge`` writes
    ``row N: f(args) crashed: SIGSEGV; expected 3``)."""
    prefix = f"{row_label(case, index)}: {case.signature.name}" \
        f"({', '.join(show(v) for v in args)}) "
    for line in detail.splitlines():
        if line.startswith(prefix):
            return line.removeprefix(prefix).rsplit("; expected ", 1)[0]
    return "no result (crashed or hung)"


def _counts(outcomes: Sequence[Outcome]) -> dict[str, int]:
    """Outcomes per status, known statuses first, only those that occur."""
    found: dict[str, int] = {}
    for o in outcomes:
        found[o.status] = found.get(o.status, 0) + 1
    order = [s for s in STATUSES if s in found] + sorted(s for s in found if s not in STATUSES)
    return {s: found[s] for s in order}


def _count_words(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "no cases"


def _look(status: str) -> tuple[str, bool]:
    return _LOOK.get(status, _NEUTRAL)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _e(text: str) -> str:
    """Text for the page: control characters and invalid UTF-8 escaped, then HTML-escaped."""
    return html.escape(visible(str(text)), quote=True)
