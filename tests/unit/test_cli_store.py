"""``recipe store``: through ``main()`` and, for exit codes and stderr, a real process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.store import Store


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECIPE_STORE", raising=False)


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, str, str]:
    """A store with a library and an app that refers to it; the app is rooted."""
    root = tmp_path / "store"
    store = Store.open(root)
    names: list[str] = []
    for label in ("lib", "app"):
        name = store.make_name(label, label)
        tree = store.temp_dir(label)
        (tree / "bin").mkdir()
        (tree / "bin" / label).write_bytes(label.encode())
        store.register(name, tree, "{}", names, f"log of {label}\n".encode())  # app -> lib
        names.append(name)
    store.add_root("release", names[1])
    store.close()
    return root, names[0], names[1]


def _recipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *args],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})


def test_ls(filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, lib, app = filled
    assert main(["store", "ls", "--store", str(root)]) == 0
    out = capsys.readouterr().out
    assert "references" in out
    app_line = next(line for line in out.splitlines() if line.startswith(app))
    assert app_line.split()[-1] == "1"
    assert main(["store", "--json", "--store", str(root), "ls"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == sorted([lib, app])
    assert next(p for p in listed if p["name"] == app)["references"] == [lib]


def test_path_and_plan_sibling(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "recipes" / "plan.yaml"
    (tmp_path / "recipes/app").mkdir(parents=True)
    plan.write_text("kind: plan\n")
    (tmp_path / "recipes/app/project.yaml").write_text(
        "kind: project\nname: app\nversion: '1'\nlanguage: c\n"
        "outputs: [{name: app, kind: executable, sources: [a.c]}]\n")
    (tmp_path / "recipes/app/a.c").write_text("int main(void) { return 0; }\n")
    assert main(["store", "path", "--plan", str(plan)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "recipes" / "store")
    # The plan's own store: comes before the folder beside it.
    plan.write_text("kind: plan\nstore: ../elsewhere\n")
    assert main(["store", "path", "--plan", str(plan)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "elsewhere")
    monkeypatch.setenv("RECIPE_STORE", str(tmp_path / "env"))
    assert main(["store", "--plan", str(plan), "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "env")
    assert main(["store", "path", "--store", str(tmp_path / "flag")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "flag")


def test_verify(filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, lib, _app = filled
    assert main(["store", "verify", "--store", str(root)]) == 0
    assert capsys.readouterr().out == "store is valid (2 paths)\n"
    damaged = root / lib / "bin" / "lib"
    damaged.chmod(0o644)
    damaged.write_bytes(b"tampered")
    assert main(["store", "verify", "--store", str(root)]) == 1
    assert capsys.readouterr().out == f"{lib}/bin/lib: modified\n"
    assert main(["store", "verify", "--store", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["damage"][0]["file"] == "bin/lib"


def test_gc(filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, lib, app = filled
    assert main(["store", "gc", "--store", str(root)]) == 0
    assert capsys.readouterr().out == ("deleted 0 paths, freed 0 bytes; 0 action results and "
                                       "0 blobs, freed 0 bytes\n")
    store = Store.open(root)
    store.remove_root("release")
    store.close()
    assert main(["store", "gc", "--dry-run", "--store", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [str(root / app), str(root / lib)]
    assert out[2].startswith("would delete 2 paths, freeing ")
    assert (root / lib).exists()
    assert main(["store", "gc", "--store", str(root)]) == 0
    assert capsys.readouterr().out.splitlines()[2].startswith("deleted 2 paths, freed ")
    assert not (root / lib).exists()


def test_log_by_name_and_by_path(filled: tuple[Path, str, str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    root, lib, _app = filled
    assert main(["store", "log", lib, "--store", str(root)]) == 0
    assert capsys.readouterr().out == "log of lib\n"
    assert main(["store", "log", str(root / lib / "bin" / "lib"), "--store", str(root)]) == 0
    assert capsys.readouterr().out == "log of lib\n"


def test_roots(filled: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, _lib, app = filled
    assert main(["store", "roots", "--store", str(root)]) == 0
    assert any(line.split() == ["release", app] for line in capsys.readouterr().out.splitlines())
    assert main(["store", "roots", "--store", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"release": app}


def test_exit_codes_and_messages_of_a_real_process(filled: tuple[Path, str, str],
                                                   tmp_path: Path) -> None:
    root, lib, _app = filled
    ok = _recipe("store", "verify", "--store", str(root))
    assert (ok.returncode, ok.stdout) == (0, "store is valid (2 paths)\n")
    with Store.open(root) as store:
        invalid = store.make_name("x", "x")
    (root / lib / "bin" / "lib").unlink()
    damaged = _recipe("store", "verify", "--store", str(root))
    assert (damaged.returncode, damaged.stdout) == (1, f"{lib}/bin/lib: missing\n")
    for args, message in [
        (("store", "ls"), "no store given"),
        (("store", "ls", "--store", str(tmp_path / "none")), "there is no store"),
        (("store", "log", "nope", "--store", str(root)), "is not a store path name"),
        (("store", "log", "/etc/passwd", "--store", str(root)), "is not inside the store"),
        (("store", "log", str(root / invalid), "--store", str(root)), "is not a valid store path"),
    ]:
        result = _recipe(*args)
        assert result.returncode == 2, args
        assert result.stderr.startswith("recipe: ") and message in result.stderr
        assert "Traceback" not in result.stderr
