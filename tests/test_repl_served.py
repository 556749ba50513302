"""A served ``recipe eval`` of a Rust project (issue 15 point 6, engine/repl/ready.py): after a
first eval, the server's spare child starts the next submission's rustc (its source a FIFO) and
lld, and the next eval of that scope is compiled by them; another command, a changed scope and
``recipe server stop`` leave no compiler running and no temporary file behind. Real rustc, real
server, the native client."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import recipe_server, run_recipe, write_tree
from tests.test_server_client import environment, run
from tests.unit.test_rust_repl import DEBIAN, pytestmark  # noqa: F401 - rustc and the registry

FILES = {
    "plan.yaml": f"""
        kind: plan
        registry: {DEBIAN}
        projects: ["*/project.yaml"]
        targets: {{release: {{opt: release}}}}
        default_targets: [release]
    """,
    "jtotal/project.yaml": """
        kind: project
        name: jtotal
        version: 1.0.0
        language: rust
        sources: ["src/*.rs"]
        crates: {serde_json: "1"}
        outputs: [{name: jtotal, kind: static-library}]
        repl:
          scope: [jtotal::total, serde_json::Value]
    """,
    "jtotal/src/lib.rs": """
        /// The sum of the numbers of a JSON array.
        pub fn total(text: &str) -> f64 {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            value.as_array().map_or(0.0, |items| items.iter().filter_map(|v| v.as_f64()).sum())
        }
    """,
}
#: A submission that says where its runner was linked (the folder of the rustc that made it).
WHERE = 'println!("{} {}", total("[1, 2.5, {n}]"), std::env::current_exe().unwrap().display());'


@pytest.fixture(scope="module")
def client() -> Path:
    """The native client, compiled into the user's cache by ``recipe server client-dir``."""
    done = run_recipe("server", "client-dir", env=environment())
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()) / "recipe"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    """The project below ``tmp_path``, and a running server (stopped afterwards)."""
    root = write_tree(tmp_path / "src", FILES)
    with recipe_server(environment()):
        yield root


def evaluate(client: Path, root: Path, code: str, *extra: str,
             env: dict[str, str] | None = None) -> tuple[str, str, int, bool]:
    return run(client, ("eval", "plan.yaml", "-p", "jtotal", "--store", str(root.parent / "store"),
                        *extra, "-e", code), root, env)


def waiting(store: Path) -> dict[int, Path]:
    """The rustc processes of runners of ``store`` that wait for their source (a FIFO), by
    pid, with their runner's folder."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
        except (OSError, ValueError):
            continue
        if not argv or not argv[0].endswith("/rustc") or not argv[-1].startswith(str(store)):
            continue
        source = Path(argv[-1])
        try:
            if stat.S_ISFIFO(source.stat().st_mode):
                found[int(entry.name)] = source.parent
        except OSError:
            continue
    return found


def compilers(store: Path) -> list[str]:
    """Every rustc and lld that works for ``store``, waiting or not."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode()
        except (OSError, ValueError):
            continue
        if str(store) in argv and ("/rustc\0" in argv or "rust-lld\0" in argv):
            found.append(argv.replace("\0", " ")[:200])
    return found


def until(condition, what: str, seconds: float = 60):  # noqa: ANN001, ANN201
    """``condition()`` once it is true (polled): no test here depends on how long anything
    takes, only on what it eventually is."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_a_served_eval_is_compiled_by_the_rustc_the_server_started_ahead(
        served: Path, client: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out, err, code, by_server = evaluate(client, served, WHERE.replace("{n}", "0"))
    assert (code, by_server) == (0, True), err
    assert out.startswith("3.5 ")
    # The spare child now holds a rustc for this scope, waiting on its FIFO.
    ahead = until(lambda: waiting(store), "a rustc started ahead")
    assert len(ahead) == 1
    pid, folder = next(iter(ahead.items()))
    out, err, code, by_server = evaluate(client, served, WHERE.replace("{n}", "1"))
    assert (code, by_server, err) == (0, True, "")
    total, exe = out.split()
    # linked by the rustc that waited
    assert total == "4.5" and Path(exe).resolve().parent == folder.resolve()
    until(lambda: not Path(f"/proc/{pid}").exists(), "the used rustc ended")
    # A new submission, served through the rustc started ahead and in-process (which starts
    # nothing ahead) into another store, compiled there the plain way: the same answer.
    until(lambda: waiting(store), "the next rustc started ahead")
    code_text = 'let v: Value = serde_json::from_str("[2, 3]").unwrap(); ' \
        'println!("{} {}", total("[4]"), v[1]); eprintln!("to stderr"); std::process::exit(4);'
    here = evaluate(client, served, code_text)
    local = run(client, ("eval", "plan.yaml", "-p", "jtotal", "--store", "../local-store",
                         "-e", code_text), served, environment(RECIPE_SERVER="off"))
    assert here[:3] == local[:3] == ("4 3\n", "to stderr\n", 4)
    assert here[3] and not local[3]
    # Cached, though written after the answer: a command at once finds it (it waits for the
    # entry the served one promised), in-process too.
    at_once = run(client, ("eval", "plan.yaml", "-p", "jtotal", "--store", str(store), "--json",
                           "-e", code_text), served, environment(RECIPE_SERVER="off"))
    assert '"cached": true' in at_once[0] and at_once[2] == 4
    # The same submission again is not compiled: the runner comes from the action cache.
    again = evaluate(client, served, code_text, "--json")
    assert '"cached": true' in again[0] and again[2] == 4
    # A submission that does not compile, given to the rustc waiting as the command starts
    # (the same words as the last eval's but the submission): rustc's words, exit 1; the
    # next one compiles.
    until(lambda: waiting(store), "the next rustc started ahead")
    out, err, code, by_server = evaluate(client, served, 'println!("{}", nope);')
    assert (out, code, by_server) == ("", 1, True) and "error[E0425]" in err, err
    assert evaluate(client, served, WHERE.replace("{n}", "2"))[0].startswith("5.5 ")


def test_another_command_a_changed_scope_and_stop_leave_nothing_running(
        served: Path, client: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert evaluate(client, served, WHERE.replace("{n}", "0"))[2:] == (0, True)
    first = until(lambda: waiting(store), "a rustc started ahead")
    # Another command: the rustc its spare started is stopped; the next spare starts one.
    shown = run(client, ("show", "plan.yaml", "--store", str(store)), served)
    assert shown[2:] == (0, True), shown[1]
    until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in first),
          "the rustc of a spare that ran another command ended")
    second = until(lambda: waiting(store), "the next spare's rustc")
    assert not set(second) & set(first)
    # A changed scope (a new rlib): the rustc started for the old one is not used, but ended.
    lib = served / "jtotal/src/lib.rs"
    lib.write_text(lib.read_text() + "pub fn twice(x: f64) -> f64 { 2.0 * x }\n")
    out, err, code, by_server = evaluate(
        client, served, 'println!("{} {}", jtotal::twice(total("[1]")), '
        'std::env::current_exe().unwrap().display());')
    assert (code, by_server) == (0, True), err
    assert out.startswith("2 ") and Path(out.split()[1]).parent not in second.values()
    until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in second),
          "the rustc of the old scope ended")
    third = until(lambda: waiting(store), "a rustc for the new scope")
    assert not set(third) & set(second)
    # recipe server stop: nothing is left running, nothing in the store's temporary folder.
    stopped = run_recipe("server", "stop", env=environment())
    assert stopped.returncode == 0, stopped.stderr
    until(lambda: not compilers(store), "no rustc or lld left after server stop")
    until(lambda: not list((store / ".recipe" / "tmp").iterdir()),
          "nothing left in the store's temporary folder")


def test_in_process_eval_starts_nothing_ahead(tmp_path: Path) -> None:
    """No server, no spare: an eval compiles the plain way and leaves no compiler waiting."""
    root = write_tree(tmp_path / "src", FILES)
    store = tmp_path / "store"
    for n in (7, 8):
        done = run_recipe("eval", root / "plan.yaml", "-p", "jtotal", "--store", store, "-e",
                          f'println!("{{}}", total("[{n}]"));')
        assert (done.returncode, done.stdout) == (0, f"{n}\n"), done.stderr
        assert not compilers(store)
