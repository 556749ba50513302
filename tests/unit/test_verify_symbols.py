"""Before a function case runs, verify checks that its library exports the function: an ELF
shared object's dynamic symbols are read in-process, anything else (a static archive) with
``nm``, whose answer is remembered by the library's and nm's stat data (engine.verify.symbols),
so a verify with every outcome cached runs no nm at all (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_tree

TREE = {
    "plan.yaml": "kind: plan\n",
    "mathx/project.yaml": """
        kind: project
        name: mathx
        version: 1.0.0
        language: c
        outputs:
          - {name: mathx, kind: static-library, sources: [mathx.c]}
        cases: [cases.yaml]
    """,
    "mathx/mathx.c": "int add(int a, int b) { return a + b; }\n"
                     "int twice(int a) { return 2 * a; }\n",
    "mathx/cases.yaml": """
        kind: cases
        cases:
          - name: adds
            function: int add(int a, int b)
            table: [[1, 2, 3]]
          - name: twice
            function: int twice(int a)
            table: [[2, 4]]
    """,
}

# recipe's command line in this process, counting the nm programs it starts
COUNTING = """
import atexit, sys
runs = []
def hook(event, args):
    if event == "subprocess.Popen" and str(args[1][0]).rsplit("/", 1)[-1] == "nm":
        runs.append(args[1])
sys.addaudithook(hook)
atexit.register(lambda: sys.stderr.write("nm runs: %d\\n" % len(runs)))
from engine.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def verify(root: Path, xdg: Path, *extra: str) -> tuple[int, str]:
    """``recipe verify``'s exit code and how many times it ran nm."""
    done = subprocess.run([sys.executable, "-c", COUNTING, "verify", "plan.yaml", "--store",
                           str(root.parent / "store"), *extra], cwd=root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(xdg)})
    runs = [line for line in done.stderr.splitlines() if line.startswith("nm runs: ")]
    assert runs, done.stderr
    return done.returncode, runs[-1].removeprefix("nm runs: ")


def test_a_cached_verify_runs_no_nm(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", TREE)
    xdg = tmp_path / "xdg"
    assert verify(root, xdg) == (0, "2")  # the library was just built: not remembered yet
    time.sleep(2.1)  # past the racily-clean window
    assert verify(root, xdg) == (0, "2")
    assert verify(root, xdg) == (0, "0")
    # a name never asked about is asked of nm, and its answer is an error as before
    (root / "mathx" / "cases.yaml").write_text(
        "kind: cases\ncases:\n  - {name: halves, function: int half(int a), table: [[2, 1]]}\n")
    done = subprocess.run([sys.executable, "-c", COUNTING, "verify", "plan.yaml", "--store",
                           str(tmp_path / "store")], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(xdg)}, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "has no function 'half'" in done.stderr and "nm runs: 1" in done.stderr
    cache = json.loads((xdg / "recipe" / "nm-symbols.json").read_text())
    (entry,) = cache["entries"].values()
    assert entry["missing"] == {"add": False, "twice": False, "half": True}


def test_a_changed_library_is_asked_again(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "src", TREE)
    xdg = tmp_path / "xdg"
    assert verify(root, xdg)[0] == 0
    time.sleep(2.1)
    assert verify(root, xdg) == (0, "2")
    # the same path, another library: its stat data differ, so nm is asked again
    cache = json.loads((xdg / "recipe" / "nm-symbols.json").read_text())
    (library,) = cache["entries"]
    os.chmod(Path(library).parent, 0o755)
    other = tmp_path / "other.a"
    (tmp_path / "other.c").write_text("int add(int a, int b) { return a + b; }\n")
    subprocess.run(["gcc", "-c", "-o", str(tmp_path / "other.o"), str(tmp_path / "other.c")],
                   check=True)
    subprocess.run(["ar", "rcs", str(other), str(tmp_path / "other.o")], check=True)
    os.replace(other, library)
    from engine.verify.symbols import missing_symbol

    os.environ["XDG_CACHE_HOME"] = str(xdg)
    try:
        assert missing_symbol(Path(library), "twice") is True
        assert missing_symbol(Path(library), "add") is False
    finally:
        del os.environ["XDG_CACHE_HOME"]


def test_an_elf_library_is_read_without_nm(tmp_path: Path) -> None:
    """A shared object's exports, read from its .dynsym, are nm's (without symbol versions);
    what is not an ELF file is left to nm."""
    from engine.verify.symbols import _run_nm, elf_exports, missing_symbol

    (tmp_path / "m.c").write_text("extern int puts(const char *);\n"
                                  "int add(int a, int b) { return a + b; }\n"
                                  "static int hidden(void) { return 1; }\n"
                                  "int uses(void) { return hidden() + puts(\"x\"); }\n")
    library = tmp_path / "libm1.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(tmp_path / "m.c")],
                   check=True)
    for elf in (library, Path("/usr/lib/x86_64-linux-gnu/libz.so.1")):
        if elf.exists():
            nm = _run_nm(elf)
            assert nm is not None
            assert elf_exports(elf) == {name.split("@")[0] for name in nm}
    exported = elf_exports(library)
    assert exported is not None and {"add", "uses"} <= exported
    assert "hidden" not in exported and "puts" not in exported  # static; undefined
    assert missing_symbol(library, "add") is False
    assert missing_symbol(library, "hidden") is True
    (tmp_path / "not-elf.so").write_text("not a library\n")
    assert elf_exports(tmp_path / "not-elf.so") is None
    assert elf_exports(tmp_path / "absent.so") is None
