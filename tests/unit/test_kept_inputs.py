"""The declared inputs a build staged, kept for the next build of its label
(engine/build/kept_inputs.py), with the real gcc: what the next build takes of them is exactly
what a fresh staging would put there."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB


def realise(src: Path, store: Path) -> list[Path]:
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    return [Path(line) for line in done.stdout.splitlines()]


def kept(store: Path, label: str = "greet-1.0.0-release", part: str = "w") -> Path:
    """The kept inputs (``w``) or objects (``o``) of ``label``; ``part=""``: the whole folder."""
    return store / ".recipe" / "inputs" / label / part


def edit(src: Path, value: int) -> None:
    twice = src / "greet/src/twice.c"
    twice.write_text(twice.read_text().replace("2 * x", f"{value} * x"))


def test_a_build_keeps_its_inputs_and_the_next_takes_the_unchanged_ones(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    folder = kept(store)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) \
        == ["include/greet.h", "src/greet.c", "src/internal.h", "src/twice.c"]
    header = os.stat(folder / "src/internal.h")
    sub = os.stat(folder / "src")
    edit(src, 3)
    greet, hello = realise(src, store)
    # The same folder came back (taken, not staged anew), the unchanged header in it...
    assert os.stat(kept(store) / "src").st_ino == sub.st_ino
    assert os.stat(kept(store) / "src/internal.h").st_ino == header.st_ino
    # ...and the edited source is its new content.
    assert "3 * x" in (kept(store) / "src/twice.c").read_text()
    out = subprocess.run([hello / "bin/hello", "x"], capture_output=True, text=True)
    assert out.stdout == "hello 6 1\n"
    # What it built is what a new store builds from the same sources.
    fresh = realise(src, tmp_path / "fresh")
    assert [p.name for p in fresh] == [greet.name, hello.name]
    assert (greet / "lib/libgreet.a").read_bytes() == \
        (fresh[0] / "lib/libgreet.a").read_bytes()


def test_an_input_no_longer_declared_is_gone_from_the_kept_folder(tmp_path):
    """Hermetic staging: the header the last build had is not there for the next build once
    the project stops declaring it; nor is a file put in the kept folder by hand."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    (kept(store) / "include/extra.h").write_text("#define EXTRA 1\n")
    project = src / "greet/project.yaml"
    project.write_text(project.read_text().replace('"include/*.h", "src/*.h"', '"include/*.h"'))
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 1
    assert done.stderr.rstrip().splitlines()[-1] == (
        "recipe: greet: src/greet.c includes 'internal.h', which the project does not declare "
        "(src/internal.h is not in headers:); add src/internal.h to headers: in project.yaml")
    assert not (kept(store) / "src/internal.h").exists()
    assert not (kept(store) / "include/extra.h").exists()


def test_a_file_replaced_in_the_kept_folder_is_not_compiled(tmp_path):
    """A kept file is taken only when it is its blob itself, marked and untouched: one put in
    its place (another inode) goes, and the declared content is staged."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    internal = kept(store) / "src/internal.h"
    internal.unlink()
    internal.write_text('#define GREETING "tampered"\n')
    greet_c = src / "greet/src/greet.c"  # compiled again: it includes internal.h
    greet_c.write_text(greet_c.read_text().replace("GREETING;", "GREETING; /* again */"))
    greet, hello = realise(src, store)
    out = subprocess.run([hello / "bin/hello", "x"], capture_output=True, text=True)
    assert out.stdout == "hello 4 1\n"
    assert "tampered" not in (kept(store) / "src/internal.h").read_text()
    fresh = realise(src, tmp_path / "fresh")
    assert (greet / "lib/libgreet.a").read_bytes() == \
        (fresh[0] / "lib/libgreet.a").read_bytes()


def test_store_gc_drops_the_kept_folders(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    assert kept(store).is_dir()
    done = run_recipe("store", "gc", "--store", store)
    assert done.returncode == 0, done.stderr
    assert not any((store / ".recipe" / "inputs").iterdir())
    assert realise(src, store)  # and the next build stages as a new store's does


@pytest.mark.parametrize("part", ["", "w"])
def test_a_link_in_place_of_the_kept_folder_is_removed_never_walked(tmp_path, part):
    """Sorting a kept folder out deletes what a fresh staging would not put there: a link in
    its place (or in its inputs' place), to a folder elsewhere, must not be walked (its files
    would be deleted)."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    elsewhere = write_tree(tmp_path / "elsewhere", {"notes.txt": "mine\n", "sub/more.txt": "x\n"})
    shutil.rmtree(kept(store, part=part))
    kept(store, part=part).symlink_to(elsewhere, target_is_directory=True)
    edit(src, 7)
    greet, hello = realise(src, store)
    assert (elsewhere / "notes.txt").read_text() == "mine\n"
    assert (elsewhere / "sub/more.txt").read_text() == "x\n"
    out = subprocess.run([hello / "bin/hello", "x"], capture_output=True, text=True)
    assert out.stdout == "hello 14 1\n"
    assert kept(store).is_dir() and not kept(store).is_symlink()


def test_only_a_marked_untouched_blob_of_the_declared_digest_is_kept(tmp_path):
    """engine/build/kept_inputs.py sort_out, on a real store: a file that is its blob, marked as
    hashed and untouched since, stays; the same inode with another mtime (written since, or a
    mark no longer true) goes, as does a blob of another digest at a declared input's place."""
    from engine.build import kept_inputs
    from engine.store import Store, marks

    store = Store.open(tmp_path / "store")
    old = 1_600_000_000  # marks are written only for blobs older than a racy moment
    digests = {}
    for name, text in (("a.h", "int a;\n"), ("b.h", "int b;\n"), ("c.h", "int c;\n")):
        source = tmp_path / name
        source.write_text(text)
        digests[name] = store.put_file(source)
        blob = str(store._cas.blob_path(digests[name]))
        os.utime(blob, (old, old))
        marks.mark(blob, digests[name])
    w = tmp_path / "w"
    (w / "inc").mkdir(parents=True)
    for name in ("a.h", "b.h", "c.h"):
        store.link_blob(digests[name], str(w / "inc" / name))
    os.utime(w / "inc/b.h", (old + 5, old + 5))  # the inode touched since it was marked
    inputs = {"inc/a.h": digests["a.h"], "inc/b.h": digests["b.h"], "inc/c.h": digests["a.h"]}
    found, folders = kept_inputs.sort_out(store, str(w), inputs)
    assert found == {"inc/a.h"}
    assert sorted(p.name for p in (w / "inc").iterdir()) == ["a.h"]
    assert folders == {str(w), f"{w}/inc"}
    store.close()


def left(store: Path) -> list[str]:
    """What a finished command left in the store's temporary and build folders."""
    return sorted(p.name for folder in ("tmp", "build")
                  for p in (store / ".recipe" / folder).iterdir())


def test_a_registered_build_keeps_its_objects_for_the_next_to_remove(tmp_path):
    """The objects of a build that registered its path are kept with its inputs, links of their
    blobs (removing them made the command's answer wait ~1.5 ms for a hundred unlinks); nothing
    else of its folder is left. The next build of the label removes them and keeps its own."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    assert sorted(os.listdir(kept(store, part=""))) == ["o", "w"]
    objects = {p.relative_to(kept(store, part="o")).as_posix(): os.stat(p)
               for p in kept(store, part="o").rglob("*.o")}
    assert sorted(objects) == ["src/greet.c.o", "src/twice.c.o"]
    assert all(st.st_nlink >= 2 and not st.st_mode & 0o222 for st in objects.values())
    assert left(store) == []
    edit(src, 5)
    realise(src, store)
    again = {p.relative_to(kept(store, part="o")).as_posix(): os.stat(p)
             for p in kept(store, part="o").rglob("*.o")}
    assert again["src/greet.c.o"].st_ino == objects["src/greet.c.o"].st_ino  # the same blob
    assert again["src/twice.c.o"].st_ino != objects["src/twice.c.o"].st_ino  # compiled anew
    assert left(store) == []  # the old objects went, none left behind


def test_a_failed_build_keeps_its_inputs_not_its_objects(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src, store)
    twice = src / "greet/src/twice.c"
    twice.write_text(twice.read_text() + "\nint broken(void) { return missing; }\n")
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 1, done.stderr
    assert sorted(os.listdir(kept(store, part=""))) == ["w"]
    assert left(store) == []
