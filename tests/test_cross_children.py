"""A foreign program that starts another program of its target (a shell-out to another output)
runs it too: each qemu case gets a binfmt_misc of its own (a user and mount namespace, qemu
registered with the F flag), where the kernel allows it (Linux 6.7 and later). Real zig, qemu,
namespaces and Landlock."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree

pytestmark = pytest.mark.slow

TREE = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
          arm64: {triple: aarch64-linux-musl, toolchain: zig}
        default_targets: [release]
    """,
    "pair/project.yaml": """
        kind: project
        name: pair
        version: 1.0.0
        language: c
        sources: ["src/*.c", "!src/parent.c", "!src/child.c"]
        outputs:
          - {name: parent, kind: executable, sources: [src/parent.c]}
          - {name: child, kind: executable, sources: [src/child.c]}
        cases: ["cases/*.yaml"]
    """,
    "pair/src/parent.c": """
        #include <stdio.h>
        #include <sys/wait.h>
        #include <unistd.h>
        int main(void) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                execlp("child", "child", "from the parent", (char *)0);
                perror("exec child");
                _exit(126);
            }
            int status = 0;
            waitpid(pid, &status, 0);
            FILE *out = fopen("written", "w");  /* the scratch folder is writable */
            if (out != NULL) fclose(out);
            printf("child exited %d\\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            FILE *escape = fopen("/tmp/recipe-escaped-binfmt", "w");  /* Landlock: refused */
            printf("escaped: %s\\n", escape != NULL ? "yes" : "no");
            return 0;
        }
    """,
    "pair/src/common.c": "int pair_common = 1;\n",
    "pair/src/child.c": """
        #include <stdio.h>
        int main(int argc, char **argv) {
            printf("child: %s\\n", argc > 1 ? argv[1] : "");
            return 7;
        }
    """,
    "pair/cases/shell-out.yaml": """
        kind: cases
        cases:
          - name: starts the child
            run: parent
            expect:
              stdout: "child: from the parent\\nchild exited 7\\nescaped: no\\n"
              stderr: ""   # nothing of the namespace's wrapper
              files: {written: ""}
    """,
}


def _namespace_binfmt_works() -> str:
    """'' when this kernel lets an unprivileged user namespace mount binfmt_misc, else why not
    (asked of the kernel with util-linux's unshare, not of the code under test)."""
    done = subprocess.run(["unshare", "-Urm", "sh", "-c",
                           "mount -t binfmt_misc none /proc/sys/fs/binfmt_misc"],
                          capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stderr.strip()


def test_a_program_starting_another_of_its_target_runs_both_under_qemu(tmp_path: Path) -> None:
    pytest.importorskip("ziglang", reason="zig is in the test extra: pip install -e '.[test]'")
    os.environ.setdefault(
        "RECIPE_ZIG_CACHE", str(Path(tempfile.gettempdir()) / f"recipe-zig-cache-{os.getuid()}"))
    why = _namespace_binfmt_works()
    if why:
        pytest.skip(f"this kernel gives no private binfmt_misc: {why}")
    Path("/tmp/recipe-escaped-binfmt").unlink(missing_ok=True)
    src = write_tree(tmp_path / "src", TREE)
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store", "-t", "arm64",
                      "--json")
    data = json.loads(done.stdout or "{}")
    assert done.returncode == 0, (done.stderr, data)
    (outcome,) = data["outcomes"]
    assert outcome["status"] == "passed" and outcome["runner"] == "qemu-aarch64"
    assert not Path("/tmp/recipe-escaped-binfmt").exists()
    # The machine's own binfmt_misc is untouched: nothing of ours is registered there.
    assert not any(Path("/proc/sys/fs/binfmt_misc").glob("recipe-*"))


def test_the_registration_line_matches_aarch64_executables() -> None:
    from engine.verify.binfmt import registration

    line = registration("recipe-aarch64", "/usr/bin/qemu-aarch64", "aarch64")
    name, kind, offset, magic, mask, interpreter, flags = line[1:].split(":")
    assert (name, kind, offset, interpreter, flags) == \
        ("recipe-aarch64", "M", "", "/usr/bin/qemu-aarch64", "F")
    assert magic.startswith("\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01")  # ELF, 64-bit, little endian
    assert magic.endswith("\\x02\\x00\\xb7\\x00")  # e_type 2 (masked to 2 or 3), EM_AARCH64
    assert mask.endswith("\\xfe\\xff\\xff\\xff")
