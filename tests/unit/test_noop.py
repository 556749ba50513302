"""A realise with nothing to do, answered from memory (engine.memo): it loads nothing,
derives nothing, says exactly what a full run says, and gives way to a full run whenever
anything it relied on (documents, sources, the store, the roots, the request) changed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from engine import memo
from engine.store import db, peek
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

SETTLE = memo.RACY_NS / 1e9 + 0.2  # until freshly written files are no longer racily clean
# Imported only by a realise that derives and builds.
FULL_RUN = ("engine.documents.cached", "engine.derive.derivation", "engine.build.realise")


def realise(plan: Path, store: Path, *args: str) -> tuple[str, set[str]]:
    """stdout of ``recipe realise``, and which of FULL_RUN it imported."""
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"code = main(['realise', {str(plan)!r}, '--store', {str(store)!r}, *{args!r}])\n"
            f"print('imported:', *[m for m in {FULL_RUN!r} if m in sys.modules], "
            "file=sys.stderr)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout, set(done.stderr.splitlines()[-1].split()[1:])


def remembered(plan: Path, store: Path, *args: str) -> str:
    """Realise twice, SETTLE apart, so that a record is written (by the second run, or by the
    first when everything it read was old enough already); the output of a full run."""
    out, _ = realise(plan, store, *args)
    time.sleep(SETTLE)
    assert realise(plan, store, *args)[0] == out
    assert list((plan.parent / ".recipe/cache").glob("noop-*.marshal"))
    return out


def test_a_no_op_is_answered_without_loading_or_deriving(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    full = remembered(plan, store)
    out, imported = realise(plan, store)
    assert (out, imported) == (full, set())
    # --json says the same as a full run's --json after nothing was built.
    full_json = remembered(plan, store, "--json")
    out, imported = realise(plan, store, "--json")
    assert (out, imported) == (full_json, set()) and '"built": false' in out
    assert len(list((src / ".recipe/cache").glob("noop-*.marshal"))) == 2


def test_an_edit_or_a_new_file_is_a_full_run_with_the_new_answer(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    first = remembered(plan, store)
    source = src / "greet/src/twice.c"
    source.write_text(source.read_text().replace("2 * x", "3 * x"))  # same size, right away
    out, imported = realise(plan, store)
    assert imported and out.splitlines()[0] != first.splitlines()[0]

    second = remembered(plan, store)
    (src / "greet/src/more.c").write_text("int more(void) { return 1; }\n")
    out, imported = realise(plan, store)
    assert imported and out != second


def test_the_store_is_checked_every_time(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    full = remembered(plan, store)
    # Roots removed: a full run puts them back.
    assert run_recipe("store", "roots", "--remove", f"realise:{plan}", "--store",
                      store).returncode == 0
    out, imported = realise(plan, store)
    assert imported and out == full
    roots = run_recipe("store", "roots", "--store", store).stdout
    assert f"realise:{plan}/greet/release" in roots
    # Paths collected: a full run builds them again.
    time.sleep(SETTLE)
    realise(plan, store)
    run_recipe("store", "roots", "--remove", f"realise:{plan}", "--store", store)
    assert run_recipe("store", "gc", "--store", store).returncode == 0
    out, imported = realise(plan, store)
    assert imported and out == full
    assert all(Path(line).is_dir() for line in out.splitlines())


def test_another_request_is_another_record(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    remembered(plan, store)
    out, imported = realise(plan, store, "-t", "debug")
    assert imported and "-debug" in out
    out, imported = realise(plan, store, "-p", "greet")
    assert imported and len(out.splitlines()) == 1


def test_a_damaged_record_is_a_full_run(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    full = remembered(plan, store)
    for record in (src / ".recipe/cache").glob("noop-*.marshal"):
        record.write_bytes(b"\x00garbage")
    out, imported = realise(plan, store)
    assert imported and out == full


def test_peek_holds_temporary_roots_before_it_answers(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    out = run_recipe("realise", plan, "--store", store).stdout.split()
    names = [Path(p).name for p in out]
    roots = {f"realise:{plan}/{p}/release": n for p, n in zip(("greet", "hello"), names,
                                                               strict=True)}
    assert peek.hold_valid(store, names, roots)
    held = (store / ".recipe/tmp" / f"{os.getpid()}.roots").read_text().split("\n")
    assert {f"path {n}" for n in names} <= set(held)
    assert not peek.hold_valid(store, [*names, "0" * 32 + "-gone"], roots)
    assert not peek.hold_valid(store, names, {**roots, "other": names[0]})
    assert not peek.hold_valid(tmp_path / "nowhere", names, roots)


def test_db_peek_refuses_another_schema(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    assert run_recipe("realise", src / "plan.yaml", "--store", store).returncode == 0
    file = store / ".recipe/db.sqlite"
    assert db.peek(file, [], {})
    import sqlite3

    with sqlite3.connect(file) as conn:
        conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    assert not db.peek(file, [], {})
    assert not db.peek(tmp_path / "missing.sqlite", [], {})
    assert not (tmp_path / "missing.sqlite").exists()


# What only Rust, registry crates, zig or a remote cache need (and 40 M instructions of a
# one-unit edit when imported anyway): a C plan's full run loads none of it.
NOT_FOR_C = ("engine.crates", "engine.derive.crate", "engine.derive.rust", "engine.toolchain.rust",
             "engine.toolchain.zig", "engine.remote", "engine.executors",
             "engine.build.build_script", "tomllib", "netrc", "difflib")


def test_a_c_plans_full_run_imports_nothing_of_rust_zig_or_the_remote_cache(
        tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"code = main(['realise', {str(plan)!r}, '--store', {str(store)!r}])\n"
            f"print('imported:', *sorted(m for m in sys.modules if m.startswith({NOT_FOR_C!r})),"
            " file=sys.stderr)\nsys.exit(code)")
    edited = src / "greet" / "src" / "greet.c"
    # The cold build loads the documents; the first edit loads them again (the cold build made
    # .recipe/ in the plan's folder, racily) and caches them; the second reads that cache.
    for run in ("cold", "first edit", "second edit"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        if run == "second edit":
            assert done.stderr.splitlines()[-1] == "imported:"
        time.sleep(SETTLE)
        edited.write_text(edited.read_text() + f"\nint greet_{run[0]}(void) {{ return 1; }}\n")


def test_a_no_op_is_answered_before_argparse_and_other_spellings_still_work(
        tmp_path: Path) -> None:
    # Parsing was half of a no-op's instructions: the record is found from the words. A
    # spelling only argparse reads (-j2) is a record of its own, found after it.
    src = write_tree(tmp_path / "src", GREET_LIB)
    plan, store = src / "plan.yaml", tmp_path / "store"
    full = remembered(plan, store, "-j", "2")
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"code = main(['realise', {str(plan)!r}, '--store', {str(store)!r}, '-j', '2'])\n"
            "print('argparse' in sys.modules, file=sys.stderr)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr.split()[-1]) == (0, full, "False")
    other = ["-j2"]
    assert remembered(plan, store, *other) == full
    out, imported = realise(plan, store, *other)
    assert (out, imported) == (full, set())
    # A word realise does not take is argparse's to refuse, remembered or not.
    done = run_recipe("realise", plan, "--store", store, "-j", "2", "--no-such")
    assert done.returncode == 2 and "unrecognized arguments: --no-such" in done.stderr
