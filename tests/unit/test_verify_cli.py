"""`recipe verify` end to end: a real plan, the real gcc, the real store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli.main import main
from tests.conftest import write_tree

TREE = {
    "plan.yaml": "kind: plan\n",
    "greet/project.yaml": """
        kind: project
        name: greet
        version: "1.0"
        language: c
        outputs:
          - {name: hi, kind: executable, sources: [hi.c]}
          - {name: no, kind: executable, sources: [no.c]}
        cases: [cases.yaml]
    """,
    "greet/hi.c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
    "greet/no.c": '#include <stdio.h>\nint main(void) { puts("no"); return 2; }\n',
    "greet/cases.yaml": """
        kind: cases
        cases:
          - {name: says hi, run: hi, expect: {stdout: "hi\\n"}}
          - {name: says no, run: no, expect: {stdout: "nope\\n"}}
          - {name: in scope, eval: 'x;', expect: {stdout: ""}}
    """,
}


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store_arg=str(tmp_path / "store"))


def test_report_and_exit_code(plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "plan.yaml", "--store", plan.store_arg, "-j", "2"]) == 1
    out = capsys.readouterr().out
    assert "=== FAILED greet/release: says no: stdout and exit code differ" in out
    assert "=== ERROR greet/release: in scope: greet/project.yaml:2:7: project 'greet' has no " \
        "REPL scope" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed, 1 error"
    # The second run comes from the outcome cache.
    assert main(["verify", "plan.yaml", "--store", plan.store_arg, "-k", "hi"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed (1 cached)"


def test_json_and_junit(plan: SimpleNamespace, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    code = main(["verify", "plan.yaml", "--store", plan.store_arg, "--json", "--no-cache",
                 "--junit", str(junit), "-t", "release", "-p", "greet"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["failed"] == 1 and data["summary"]["error"] == 1
    assert [o["status"] for o in data["outcomes"]] == ["passed", "failed", "error"]
    root = ET.parse(junit).getroot()
    assert (root.get("failures"), root.get("errors")) == ("1", "1")


def test_update_records_and_still_fails_on_an_error(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "plan.yaml", "--store", plan.store_arg, "--update"]) == 1
    out = capsys.readouterr().out
    assert "cases.yaml: says no: stdout, exit\n" in out
    assert "not updated " in out and "in scope: greet/project.yaml:2:7: project 'greet' has no " \
        "REPL scope" in out
    text = (plan.dir / "greet" / "cases.yaml").read_text()
    assert '{name: says no, run: no, expect: {stdout: "no\\n", exit: 2}}' in text
    # Without the case in error, an update run ends with everything matching: exit 0.
    assert main(["verify", "plan.yaml", "--store", plan.store_arg, "--update",
                 "-k", "says"]) == 0
    capsys.readouterr()


def test_a_pattern_that_matches_nothing_is_a_usage_error(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "plan.yaml", "--store", plan.store_arg, "-k", "nothing"]) == 2
    assert "no case matches -k 'nothing'" in capsys.readouterr().err


def test_a_verify_from_the_cache_loads_no_documents_nor_their_writers(
        plan: SimpleNamespace) -> None:
    # A case killed by a signal too: comparing its cached outcome names the signal, which
    # once imported the whole document loader. Neither that, nor ruamel (--update's), nor
    # tabulate (whose import reads every installed distribution's metadata) is needed here.
    (plan.dir / "greet/die.c").write_text("#include <signal.h>\n"
                                          "int main(void) { raise(SIGABRT); return 0; }\n")
    project = plan.dir / "greet/project.yaml"
    project.write_text(project.read_text().replace(
        "cases:", "  - {name: die, kind: executable, sources: [die.c]}\ncases:"))
    (plan.dir / "greet/cases.yaml").write_text(
        "kind: cases\ncases:\n  - {name: says hi, run: hi, expect: {stdout: \"hi\\n\"}}\n"
        "  - {name: dies, run: die, expect: {signal: SIGABRT}}\n")
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"code = main(['verify', 'plan.yaml', '--store', {plan.store_arg!r}])\n"
            "print('imported:', *sorted(m for m in sys.modules if m.startswith(("
            "'engine.documents.cases', 'engine.documents.load', 'ruamel', 'tabulate'))),"
            " file=sys.stderr)\nsys.exit(code)")
    runs = []
    for _ in range(3):  # built, then cached twice
        # Apart by more than the racily-clean window: the plan's cache is written by a run
        # that finds its documents (and the folder the first run added .recipe/ to) settled.
        time.sleep(2.2)
        runs.append(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, cwd=plan.dir))
    assert [r.returncode for r in runs] == [0, 0, 0], runs[0].stderr
    assert "(2 cached)" in runs[2].stdout
    assert runs[2].stderr.splitlines()[-1] == "imported:"
