"""Patterns and paths: expansion, negation, no escape by absolute path, '..' or symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.documents import DocumentError
from engine.documents.paths import Tree, check_relative, static_prefix
from engine.errors import Pos

POS = Pos(Path("doc.yaml"), 3, 5)


@pytest.fixture()
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("src/a.c", "src/b.c", "src/main.c", "src/deep/c.c", "src/.git/x.c",
                 "include/a.h", "README"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def expand(root: Path, *patterns: str, base: str = ".", **kwargs: bool) -> tuple[str, ...]:
    return Tree(root).expand([(p, POS) for p in patterns], root / base, **kwargs)


def error(function, *args, **kwargs) -> str:  # noqa: ANN001, ANN002, ANN003
    with pytest.raises(DocumentError) as caught:
        function(*args, **kwargs)
    return caught.value.render()


def test_patterns_expand_sorted_with_negation(root: Path) -> None:
    assert expand(root, "src/*.c", "!src/main.c") == ("src/a.c", "src/b.c")
    assert expand(root, "src/**/*.c") == ("src/a.c", "src/b.c", "src/deep/c.c", "src/main.c")
    assert expand(root, "*.h") == ("include/a.h",)  # no slash: at any depth
    assert expand(root, "./include/a.h") == ("include/a.h",)
    assert expand(root, "*.c", base="src") == ("a.c", "b.c", "deep/c.c", "main.c")


def test_dot_folders_are_skipped_unless_named(root: Path) -> None:
    assert "src/.git/x.c" not in expand(root, "**/*.c")
    assert expand(root, ".git/x.c", base="src") == (".git/x.c",)


def test_a_pattern_that_matches_nothing(root: Path) -> None:
    assert error(expand, root, "src/*.c", "lib/*.c") == \
        "doc.yaml:3:5: pattern 'lib/*.c' matches no file; fix the pattern (relative to the " \
        "current folder)"
    assert error(expand, root, "*.cc", base="src") == \
        "doc.yaml:3:5: pattern '*.cc' matches no file; fix the pattern (relative to src/)"
    assert expand(root, "lib/*.c", allow_empty=True) == ()


def test_absolute_and_parent_paths_are_rejected(root: Path) -> None:
    assert error(expand, root, "/etc/*.conf") == \
        "doc.yaml:3:5: pattern '/etc/*.conf' is absolute; write it relative to the document's " \
        "folder"
    assert error(expand, root, "!../x") == (
        "doc.yaml:3:5: pattern '!../x' leaves its folder with '..'; keep files inside the "
        "plan's folder and name them from there")
    assert error(check_relative, "src/../../x", POS) == (
        "doc.yaml:3:5: path 'src/../../x' leaves its folder with '..'; keep files inside the "
        "plan's folder and name them from there")
    assert error(check_relative, "~/x", POS).endswith("is absolute; write it relative to the "
                                                      "document's folder")


def test_a_symlink_that_escapes(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.c"
    outside.write_text("")
    (root / "src/evil.c").symlink_to(outside)
    assert error(expand, root, "src/*.c") == (
        "doc.yaml:3:5: 'src/evil.c' is a symlink that leaves the plan's folder; replace the "
        "symlink by the file itself, inside the plan's folder")
    assert "src/evil.c" not in expand(root, "src/*.c", "!src/evil.c")  # not selected: fine


def test_a_symlinked_folder_that_escapes(root: Path,
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "x.c").write_text("")
    (root / "vendor").symlink_to(outside)
    assert error(expand, root, "vendor/*.c") == (
        "doc.yaml:3:5: 'vendor' is a symlink that leaves the plan's folder; replace the "
        "symlink by the file itself, inside the plan's folder")


def test_symlink_loops(root: Path) -> None:
    (root / "src/x.c").symlink_to("y.c")
    (root / "src/y.c").symlink_to("x.c")
    assert error(expand, root, "src/*.c") == (
        "doc.yaml:3:5: 'src/x.c' is a symlink loop; replace the symlink by the file itself, "
        "inside the plan's folder")


def test_a_folder_symlink_to_an_ancestor_is_not_walked(root: Path) -> None:
    (root / "src/deep/up").symlink_to("..")
    assert expand(root, "src/**/*.c") == ("src/a.c", "src/b.c", "src/deep/c.c", "src/main.c")
    assert error(expand, root, "src/deep/*") == (
        "doc.yaml:3:5: 'src/deep/up' is a symlink loop; replace the symlink by the file "
        "itself, inside the plan's folder")


def test_symlinks_inside_the_plan_are_followed(root: Path) -> None:
    (root / "lib").symlink_to("src")
    (root / "include/b.h").symlink_to("a.h")
    assert expand(root, "lib/*.c", "include/*") == \
        ("include/a.h", "include/b.h", "lib/a.c", "lib/b.c", "lib/main.c")


def test_skipped_folders(root: Path) -> None:
    assert Tree(root, skip=[root / "src"]).expand([("**/*", POS)], root) == \
        ("README", "include/a.h")


def test_each_folder_is_scanned_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[str] = []
    real_scandir = os.scandir

    def counting(path: str):  # noqa: ANN202
        scanned.append(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting)
    tree = Tree(root)
    tree.expand([("src/*.c", POS), ("**/*.h", POS)], root)
    tree.expand([("*.c", POS)], root / "src")
    assert scanned and len(scanned) == len(set(scanned))


def test_literal_paths(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    tree = Tree(root)
    assert tree.check_path("./src//a.c", root, POS) == "src/a.c"
    assert tree.check_path("include/", root, POS, what="folder") == "include"
    assert tree.check_path("missing.out", root, POS, must_exist=False) == "missing.out"
    assert error(tree.check_path, "src/z.c", root, POS) == \
        "doc.yaml:3:5: file 'src/z.c' does not exist; create it or fix the path (relative to " \
        "the current folder)"
    assert error(tree.check_path, "src", root, POS) == \
        "doc.yaml:3:5: 'src' is not a file; name a file here"
    outside = tmp_path_factory.mktemp("outside") / "in.txt"
    outside.write_text("")
    (root / "in.txt").symlink_to(outside)
    assert error(tree.check_path, "in.txt", root, POS) == (
        "doc.yaml:3:5: 'in.txt' leaves the plan's folder through a symlink; replace the "
        "symlink by the file itself, inside the plan's folder")
    (root / "loop").symlink_to("loop")
    assert error(tree.check_path, "loop", root, POS, must_exist=False) == (
        "doc.yaml:3:5: 'loop' is a symlink loop; replace the symlink by the file itself, "
        "inside the plan's folder")


def test_static_prefix() -> None:
    assert static_prefix("src/**/*.c") == ("src",)
    assert static_prefix("src/a/b.c") == ("src", "a")
    assert static_prefix("*.c") == ()
    assert static_prefix("include/") == ()
    assert static_prefix("a/*/b/c.h") == ("a",)
