"""`recipe verify --html FILE`: one self-contained page, checked as a person sees it — rendered
by a real headless Chromium (its DOM, its printed text, its screenshot's colours, its console).

Chromium and pdftotext (poppler-utils) come from Debian; ``.ci/run`` installs both. Without
them the browser test is skipped on a developer's machine and fails on CI.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.verify.html_report import render_html, repro_command
from engine.verify.outcome import Outcome
from tests.conftest import run_recipe, write_tree

SAY_C = r"""
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "html") == 0) {
        puts("<script>alert(1)</script>");
        fputs("bad byte \xff here\n", stdout);
        fputs("warning: <b>bold</b>\n", stderr);
        return 3;
    }
    puts("hello");
    return 0;
}
"""

TREE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "shout/project.yaml": """
        kind: project
        name: shout
        version: "1.0"
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        include_dirs: [include]
        outputs:
          - {name: shout, kind: static-library}
          - {name: say, kind: executable, sources: [say.c]}
        cases: [cases.yaml]
    """,
    "shout/include/shout.h": "int add(int a, int b);\nint crash(int x);\n",
    "shout/src/shout.c": """
        #include "shout.h"
        int add(int a, int b) { return a + b + (a == 2); }
        int crash(int x) { if (x == 0) { volatile int *p = 0; return *p; } return x; }
    """,
    "shout/say.c": SAY_C,
    "shout/cases.yaml": r"""
        kind: cases
        cases:
          - {name: says hello, run: say, expect: {stdout: "hello\n"}}
          - name: "escapes <img src=x onerror=alert(2)> & \"quotes\""
            run: say
            args: [html]
            expect: {stdout: "plain text\nbad byte here\n", stderr: "", exit: 0}
          - name: adds
            function: int add(int a, int b)
            table: [[1, 2, 3], [2, 2, 4], [0, 0, 0]]
          - name: crashes
            function: int crash(int)
            table: [[0, 0], [5, 5]]
    """,
}
ADD = (0xDA, 0xFB, 0xE1)  # the background of an added line (--add in the page's CSS)
DEL = (0xFF, 0xEB, 0xE9)  # of a removed line (--del)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):  # .ci/run installs it: missing there is a broken CI, not a skip
            pytest.fail(f"{name} is not installed; .ci/run should have installed it")
        pytest.skip(f"{name} is not installed (Debian: apt-get install chromium poppler-utils)")
    return found


def _chromium(tmp_path: Path, page: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless on ``page``, offline, with its console on stderr."""
    profile = tmp_path / "chromium-profile"
    done = subprocess.run(
        [_tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage",  # a container's /dev/shm is often 64 MiB
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *mode, page.as_uri()],
        capture_output=True, text=True, errors="replace", timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _console(stderr: str) -> list[str]:
    """What the page wrote to the browser console (errors included)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


class _Elements(HTMLParser):
    """The elements of a page as (tag, attributes), and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


def _pixels(png: bytes) -> list[tuple[int, int, int]]:
    """The RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, data, header = 8, b"", b""
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        data += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0
    size = 4 if colour == 6 else 3
    raw, stride, out = zlib.decompress(data), width * size, []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            a = line[x - size] if x >= size else 0
            b, c = previous[x], previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out.extend(tuple(line[i:i + 3]) for i in range(0, stride, size))
        previous = line
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A real plan verified with --html: one case passes, a process case and two function
    cases fail. Returns (the page, a scratch folder, verify's stdout)."""
    tmp = tmp_path_factory.mktemp("html")
    root = write_tree(tmp / "src", TREE)
    page = tmp / "report.html"
    done = run_recipe("verify", "plan.yaml", "--store", tmp / "store", "--html", page, cwd=root)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1] == "1 passed, 3 failed"
    return page, tmp, done.stdout


def test_the_page_in_chromium_shows_counts_and_the_coloured_diff(
        report: tuple[Path, Path, str], tmp_path: Path) -> None:
    page, _, _ = report
    _tool("pdftotext")
    raw = page.read_text(encoding="utf-8")
    # Self-contained: nothing to load — no script, no link, no image, no url() in the CSS.
    refs = re.findall(r'\b(?:src|href)="([^"]*)"', raw)
    assert all(re.fullmatch(r"#c\d+", ref) for ref in refs), refs
    assert "url(" not in raw and "<script" not in raw and "<link" not in raw

    # The DOM after rendering: nothing a case printed became an element.
    dom = _chromium(tmp_path, page, "--dump-dom")
    parsed = _parse(dom.stdout)
    tags = {tag for tag, _ in parsed.elements}
    assert not tags & {"script", "img", "b", "iframe"}, tags
    text = "".join(parsed.text)
    assert "+<script>alert(1)</script>" in text
    assert "+bad byte \\xff here" in text  # invalid UTF-8 shown as an escape
    assert 'escapes <img src=x onerror=alert(2)> & "quotes"' in text
    assert _console(dom.stderr) == []

    # What a person sees: the printed page holds only what is rendered (closed parts are not).
    pdf = tmp_path / "report.pdf"
    _chromium(tmp_path, page, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    seen = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    words = " ".join(seen.split())
    assert "3 of 4 cases did not pass" in words and "1 passed 3 failed" in words
    for line in ("--- expected stdout", "-plain text", "+<script>alert(1)</script>",
                 "+warning: <b>bold</b>", "-0", "+3"):
        assert line in seen, line
    assert "int add(int a, int b): 1 of 3 rows failed" in words
    assert "2 2 4 5" in words  # the failing row: arguments, expected, got
    assert "crashed: SIGSEGV" in words
    assert "reproduce: recipe verify plan.yaml --store" in words
    assert "-t release -k shout/adds" in words
    # The passing case is listed, with its time, but closed: its command is not shown.
    assert "says hello" in words and "-k 'shout/says hello'" not in words

    # Its screenshot: the diff's lines coloured red and green.
    shot = tmp_path / "report.png"
    _chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,900")
    colours = _pixels(shot.read_bytes())
    assert len(colours) == 1200 * 900
    assert colours.count(ADD) > 5000 and colours.count(DEL) > 5000


def test_the_console_check_sees_an_error(tmp_path: Path) -> None:
    """The console check above can fail: a page whose script throws is caught by it."""
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>throw new Error('boom')</script>\n")
    assert any("Uncaught Error: boom" in line
               for line in _console(_chromium(tmp_path, broken, "--dump-dom").stderr))


def test_a_report_destination_is_refused_before_any_case_runs(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    (tmp_path / "out").mkdir()
    for where, said in ((tmp_path / "out", "is a folder; name a file"),
                        (tmp_path / "nowhere" / "r.html", "its folder does not exist"),
                        (Path("/proc/r.html"), "cannot write in /proc")):
        done = run_recipe("verify", "plan.yaml", "--store", store, "--html", where, cwd=root)
        assert done.returncode == 2, done.stderr
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith(f"recipe: --html {where}: {said}"), done.stderr
    assert not store.exists()  # refused before the store was opened: nothing built, nothing run


def test_the_page_escapes_and_a_new_outcome_kind_slots_in(tmp_path: Path) -> None:
    outcomes = [
        Outcome("p", "t", "a </summary><script>x()</script>", "failed", 0.5,
                message="stdout differs \x1b[31m",
                detail="--- expected stdout\n+++ observed stdout\n@@ -1 +1 @@\n-a\n+\udcff\ud800"
                       "</pre><script>y()</script>\nexit code: expected 0, got 1\nTraceback\x07\n"),
        Outcome("p", "t", "later", "xfailed", 0.0, message="known bug"),  # e.g. issue 13 point 4
    ]
    page = render_html(outcomes, command=["recipe", "verify", "my plan.yaml"])
    page.encode("utf-8")  # no lone surrogate left: the page is valid UTF-8
    parsed = _parse(page)
    assert [tag for tag, _ in parsed.elements if tag in ("script", "img")] == []
    text = "".join(parsed.text)
    assert "+\\xff\\ud800</pre><script>y()</script>" in text
    assert "stdout differs \\x1b[31m" in text and "Traceback\\x07" in text
    assert "1 failed, 1 xfailed" in text
    classes = [attrs.get("class") for tag, attrs in parsed.elements if tag == "span"]
    assert "badge warn" in classes and classes.count("add") >= 2 and "del" in classes
    assert repro_command(["recipe", "verify", "my plan.yaml"], outcomes[0]) == \
        "recipe verify 'my plan.yaml' -t t -k 'p/a </summary><script>x()</script>'"
