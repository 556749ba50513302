"""The docs a newcomer follows: every `recipe …` command line in README.md and docs/*.md parses
with recipe's own argument parser, and every relative link points to a file that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from engine.cli.main import _build
from tests.conftest import run_recipe

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Blocks whose every line is a command (``recipe …`` or ``$ recipe …``); in the others (console
#: and plain blocks, which mix commands with their output) only ``$ recipe …`` lines are commands.
SHELL = {"sh", "bash", "shell"}
#: Lines that show a command's shape rather than a command: placeholders argparse cannot read.
#: Kept few and explicit; the Commands table, not these lines, is the map of the syntax.
PLACEHOLDERS = ("…",)


def command_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(``file:line``, the words after ``recipe``) of each recipe command in a fenced block."""
    found: list[tuple[str, list[str]]] = []
    lines = path.read_text().splitlines()
    fences = [n for n, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) % 2 == 0, f"{path.relative_to(ROOT)}: a fenced block is never closed"
    for start, end in zip(fences[::2], fences[1::2], strict=True):
        block = lines[start + 1:end]
        # a block that shows a prompt mixes commands with their output: only prompted lines count
        prompted = lines[start][3:].strip() not in SHELL or any(b.startswith("$ ") for b in block)
        for number, line in enumerate(block, start + 2):
            text = line.strip()
            if text.startswith("$ "):
                text = text[2:]
            elif prompted:
                continue
            if not re.search(r"(^|&&|;|\|)\s*recipe\s", text):
                continue  # output, or a command that is not recipe's (jq, reprotest, ...)
            for words in commands(text):
                if words[0] == "recipe":
                    found.append((f"{path.relative_to(ROOT)}:{number}", words[1:]))
    return found


def commands(text: str) -> list[list[str]]:
    """The simple commands of a shell line (``cd hello && recipe init …``), as words."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    result: list[list[str]] = [[]]
    for token in lex:
        if token in {"&&", "||", ";", "|"}:
            result.append([])
        else:
            result[-1].append(token)
    return [words for words in result if words]


COMMANDS = [found for path in DOCS for found in command_lines(path)]


def test_the_docs_hold_commands():
    # the collector finds something: a change of fences must not make the parse test vacuous
    assert len(COMMANDS) >= 15, COMMANDS


@pytest.mark.parametrize("where, words", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_every_recipe_command_in_the_docs_parses(where, words):
    line = shlex.join(["recipe", *words])
    if any(mark in word for word in words for mark in PLACEHOLDERS):
        pytest.skip(f"a placeholder: {line}")
    parser = _build(None)
    try:
        parser.parse_args(words)
    except SystemExit as stop:
        if stop.code != 0:  # --help and --version exit 0
            pytest.fail(f"{where}: `{line}` does not parse (exit {stop.code})")


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_points_to_a_file(path):
    broken = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or a heading of the same page
            file, _, heading = target.partition("#")
            if not (path.parent / file).exists():
                broken.append(f"{path.relative_to(ROOT)}:{number}: {target}")
            elif heading and file.endswith(".md") and heading not in anchors(path.parent / file):
                broken.append(f"{path.relative_to(ROOT)}:{number}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page (outside fenced blocks)."""
    found, fence = set(), False
    for line in page.read_text().splitlines():
        fence ^= line.startswith("```")
        if not fence and re.match(r"#+ ", line):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def example_blocks() -> list[tuple[str, list[str]]]:
    """The fenced blocks of README's "An example" section: (language, lines)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## An example\n", 1)[1].split("\n## ", 1)[0]
    return [(lang, body.splitlines())
            for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", section, re.S | re.M)]


def test_the_readme_example_verifies_as_shown(tmp_path):
    # the files: a yaml block of documents each headed '# PATH', a c block headed '// PATH'
    files: dict[str, list[str]] = {}
    shown: list[str] = []
    for lang, lines in example_blocks():
        for line in lines:
            head = re.fullmatch(r"(?:# |// )(\S+\.(?:yaml|c))", line)
            if lang in {"yaml", "c"} and head:
                current = files.setdefault(head.group(1), [])
            elif lang in {"yaml", "c"}:
                current.append(line)
            elif lang == "console":
                shown.append(line)
    assert set(files) == {"plan.yaml", "greet/project.yaml", "greet/cases/basic.yaml",
                          "greet/src/greet.c"}
    for name, lines in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    assert shown[0] == "$ recipe verify plan.yaml"
    done = run_recipe("verify", "plan.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    # what README shows: stderr's line naming the store path built, then stdout; times vary
    times = re.compile(r"\d+\.\d+s$")
    assert [times.sub("", line) for line in done.stdout.splitlines()] == \
        [times.sub("", line) for line in shown[2:]]
    # the store path's hash names this machine's compiler too
    store_hash = re.compile(r"\b[0-9a-z]{32}-")
    assert [store_hash.sub("HASH-", line) for line in done.stderr.splitlines()] == \
        [store_hash.sub("HASH-", shown[1])]
