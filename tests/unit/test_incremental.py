"""Incremental builds: exactly the units that read a changed file compile again (per-unit
header tracking from gcc's depfiles, as ccache's direct mode), counted through wrapper compilers."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from engine.build.actions import depfile_names
from tests.conftest import run_recipe, write_tree
from tests.toolchains import WrapperToolchain, make_toolchain


def corpus(tc: WrapperToolchain) -> dict[str, str]:
    """One library of four units: a.c and b.c include shared.h, c.c includes only
    other.h, d.c includes nothing of the project; and an executable using it."""
    files = {
        "plan.yaml": f"""
            kind: plan
            projects: ["*/project.yaml"]
            targets: {{release: {{opt: release, toolchain: {tc.spec_yaml()}}}}}
        """,
        "lib/project.yaml": """
            kind: project
            name: lib
            version: 1.0.0
            language: c
            sources: ["src/*.c"]
            headers: ["include/*.h"]
            public_headers: ["include/shared.h"]
            include_dirs: [include]
            outputs: [{name: lib, kind: static-library}]
        """,
        "lib/include/shared.h": "#define SHARED 1\nint a(void); int b(void);\n",
        "lib/include/other.h": "#define OTHER 2\n",
        "lib/src/a.c": '#include "shared.h"\nint a(void) { return SHARED; }\n',
        "lib/src/b.c": '#include "shared.h"\nint b(void) { return SHARED + 1; }\n',
        "lib/src/c.c": '#include "other.h"\nint c(void) { return OTHER; }\n',
        "lib/src/d.c": "int d(void) { return 4; }\n",
        "app/project.yaml": """
            kind: project
            name: app
            version: 1.0.0
            language: c
            sources: ["main.c"]
            depends: [lib]
            outputs: [{name: app, kind: executable}]
        """,
        "app/main.c": '#include <stdio.h>\n#include "shared.h"\n'
                      'int main(void) { printf("%d\\n", a() + b()); return 0; }\n',
    }
    return files


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, WrapperToolchain]:
    tc = make_toolchain(tmp_path / "tc")
    src = write_tree(tmp_path / "src", corpus(tc))
    store = tmp_path / "store"
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    assert sum(tc.compiles().values()) == 5
    tc.clear_log()
    return src, store, tc


def rebuild(src: Path, store: Path, tc: WrapperToolchain) -> Counter[str]:
    """What a realise compiled and linked: ``project:source`` and ``link:project`` counts."""
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    ran = Counter(f"{p}:{f}" for (p, _t, f), n in tc.compiles().items() for _ in range(n))
    ran.update(f"link:{p}" for (p, _t, _f), n in tc.links().items() for _ in range(n))
    tc.clear_log()
    return ran


def test_editing_a_header_compiles_exactly_the_units_that_read_it(setup) -> None:
    src, store, tc = setup
    (src / "lib/include/shared.h").write_text("#define SHARED 10\nint a(void); int b(void);\n")
    assert rebuild(src, store, tc) == Counter(["lib:src/a.c", "lib:src/b.c", "app:main.c",
                                               "link:app"])
    (src / "lib/include/other.h").write_text("#define OTHER 20\n")
    assert rebuild(src, store, tc) == Counter(["lib:src/c.c", "link:app"])  # app: relinked


def test_editing_a_unit_compiles_exactly_that_unit_and_relinks(setup) -> None:
    src, store, tc = setup
    (src / "lib/src/d.c").write_text("int d(void) { return 40; }\n")
    assert rebuild(src, store, tc) == Counter(["lib:src/d.c", "link:app"])


def test_going_back_to_an_earlier_header_is_a_hit(setup) -> None:
    src, store, tc = setup
    header = src / "lib/include/shared.h"
    original = header.read_text()
    header.write_text(original.replace("SHARED 1", "SHARED 5"))
    assert len(rebuild(src, store, tc)) == 4
    # Back to the first header, with another unit changed so that lib is a new derivation:
    # the units that read the header find its first version in their manifests.
    header.write_text(original)
    (src / "lib/src/d.c").write_text("int d(void) { return 40; }\n")
    assert rebuild(src, store, tc) == Counter(["lib:src/d.c", "link:app"])


def test_a_copy_at_another_path_builds_nothing(setup, tmp_path: Path) -> None:
    src, store, tc = setup
    copy = tmp_path / "elsewhere/checkout"
    shutil.copytree(src, copy)
    done = run_recipe("realise", copy / "plan.yaml", "--store", store, "--json")
    assert done.returncode == 0 and '"built": true' not in done.stdout
    assert tc.invocations() == []


def test_a_build_whose_actions_are_all_cached_reads_no_source(setup) -> None:
    """Another target with the same spec: other derivations, the same compiles. Nothing is
    compiled; the library is not even staged, only its output tree is copied out of the CAS.
    (The executable links again: a link's key names its dependencies' store paths, which an
    rpath may carry into the output.)"""
    src, store, tc = setup
    plan = src / "plan.yaml"
    plan.write_text(plan.read_text().replace("targets: {release: {opt: release",
                                             "targets: {again: {opt: release, toolchain: "
                                             f"{tc.spec_yaml()}}}, release: {{opt: release"))
    done = run_recipe("realise", plan, "-t", "again", "--store", store)
    assert done.returncode == 0, done.stderr
    assert not tc.compiles() and list(tc.links()) == [("app", "again", "out/bin/app")]
    lib, app = (Path(p) for p in done.stdout.split())
    log = run_recipe("store", "log", lib.name, "--store", store).stdout
    assert "# staged" not in log and "$ " not in log and "# cached src/a.c" in log
    assert (lib / "include/shared.h").read_text() == "#define SHARED 1\nint a(void); int b(void);\n"
    assert run_recipe("store", "verify", "--store", store).returncode == 0
    assert subprocess.run([app / "bin/app"], capture_output=True, text=True).stdout == "3\n"
    # A unit edited then: it compiles, and the link copies out the other, cached objects.
    (src / "lib/src/d.c").write_text("int d(void) { return 5; }\n")
    done = run_recipe("realise", plan, "-t", "again", "--store", store)
    assert done.returncode == 0, done.stderr
    assert sum(tc.compiles().values()) == 1
    log = run_recipe("store", "log", Path(done.stdout.split()[0]).name, "--store", store).stdout
    assert "# staged 6 declared inputs" in log


def test_a_damaged_candidate_is_a_miss_never_a_wrong_hit(setup) -> None:
    """A compile's result is a candidate in its manifest: one whose key, digests or outputs
    are not what recipe writes (a damaged file, a hostile shared cache) is a miss."""
    src, store, tc = setup
    found = {p: json.loads(p.read_text()) for p in (store / ".recipe/ac").glob("*/*.json")}
    manifests = sorted(p for p, m in found.items() if "candidates" in m)
    assert len(manifests) == 5  # a, b, c, d and main: one entry a compile
    damage = [{"key": "two\nlines"}, {"key": 7}, {"headers": ["x.h"]},
              {"outputs": {"o/src/a.c.o": "not a digest"}}]
    for path, change in zip(manifests, damage, strict=False):  # the fifth stays as it was
        manifest = found[path]
        candidate = manifest["candidates"][0]
        if "outputs" in change:  # every output's digest, whatever the unit
            change = {"outputs": dict.fromkeys(candidate["outputs"], "not a digest")}
        manifest["candidates"][0] = {**candidate, **change}
        path.chmod(0o644)
        path.write_text(json.dumps(manifest))
    plan = src / "plan.yaml"  # another target, the same compiles (see the test above)
    plan.write_text(plan.read_text().replace("targets: {release: {opt: release",
                                             "targets: {again: {opt: release, toolchain: "
                                             f"{tc.spec_yaml()}}}, release: {{opt: release"))
    done = run_recipe("realise", plan, "-t", "again", "--store", store)
    assert done.returncode == 0, done.stderr
    assert sum(tc.compiles().values()) == 4
    app = Path(done.stdout.split()[1])
    assert subprocess.run([app / "bin/app"], capture_output=True, text=True).stdout == "3\n"


def test_depfile_names_unescape_spaces_and_dollars() -> None:
    text = "../o/src/a b.c.o: src/a\\ b.c include/x.h \\\n /usr/include/stdio.h cost$$.h\n"
    assert depfile_names(text) == ["src/a b.c", "include/x.h", "/usr/include/stdio.h",
                                   "cost$.h"]
