"""Function cases on foreign targets (issue 14, point 4): the rows are called by a table harness
built for the target with zig, linked against the project's library, and run under the target's
runner (qemu-aarch64, wine64, wasmtime). Real zig, real runners, real processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_tree
from tests.test_cross import outcomes, verify, zig_cache  # noqa: F401 - the shared zig cache

pytestmark = pytest.mark.slow

TREE = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
          arm64: {triple: aarch64-linux-musl, toolchain: zig}
          windows: {triple: x86_64-windows-gnu, toolchain: zig}
          wasi: {triple: wasm32-wasi, toolchain: zig}
        default_targets: [release]
    """,
    "calc/project.yaml": """
        kind: project
        name: calc
        version: 1.0.0
        language: c
        standard: c17
        sources: ["src/*.c"]
        outputs:
          - {name: calc, kind: executable}
        cases: ["cases/*.yaml"]
    """,
    "calc/src/calc.c": r"""
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        int add(int a, int b) { return a + b; }
        int crash(int x) {
            if (x == 0) {
        #ifdef __wasm__
                __builtin_trap();  /* address 0 is readable in wasm's linear memory */
        #endif
                volatile int *p = 0;
                return *p;
            }
            return x * 10;
        }
        double scale(double x, double by) { return x * by / 3.0 * 3.0; }
        long long pointer_bits(void) { return (long long)sizeof(void *) * 8; }
        const char *shout(const char *word) {
            static char out[64];
            size_t i = 0;
            if (!word) return NULL;
            for (; word[i] && i < 62; i++) out[i] = word[i] >= 'a' && word[i] <= 'z'
                ? word[i] - 32 : word[i];
            out[i++] = '!';
            out[i] = 0;
            return out;
        }
        char *reverse(const char *word) {
            size_t n = strlen(word);
            char *out = malloc(n + 1);
            for (size_t i = 0; i < n; i++) out[i] = word[n - 1 - i];
            out[n] = 0;
            return out;
        }
        void release(char *p) { free(p); }
        size_t length(const char *s) { return strlen(s); }  /* 32 bits on WASI */
        const char *echo(const char *json) { return json; }
        int spin(int x) { while (x == 7) {} return x; }
    """,
    "calc/src/main.c": """
        #include <stdio.h>
        int add(int a, int b);
        int main(void) { printf("%d\\n", add(2, 3)); return 0; }
    """,
    "calc/cases/tables.yaml": """
        kind: cases
        cases:
          - name: adds
            function: int add(int a, int b)
            table:
              - [1, 2, 3]
              - [-5, 5, 0]
              - [2147483647, 1, -2147483648]
          - name: adds wrongly
            function: int add(int a, int b)
            table:
              - [1, 2, 3]
              - [2, 2, 5]
          - name: crashes alone
            function: int crash(int x)
            table:
              - [1, 10]
              - [0, 0]
              - [2, 20]
              - [3, 30]
          - name: scales
            function: double scale(double x, double by)
            tolerance: 1e-9
            table:
              - [1.5, 2, 3.0]
              - [0.1, 0.2, 0.02]
          - name: shouts
            function: const char *shout(const char *word)
            table:
              - [hey, "HEY!"]
              - ["", "!"]
              - [null, null]
              - [ünï, "üNï!"]
          - name: reverses
            function: const char *reverse(const char *word)
            free: release
            table:
              - [abc, cba]
              - [x, x]
          - name: measures
            function: size_t length(const char *s)
            table:
              - [abc, 3]
              - ["", 0]
          - name: hangs alone
            function: int spin(int x)
            timeout: 0.3
            table: [[1, 1], [7, 7], [8, 8]]
          - name: echoes json
            function: json echo(json value)
            table:
              - [{a: [1, 2.5], b: null}, {b: null, a: [1.0, 2.5]}]
          - name: knows its pointers
            function: long long pointer_bits()
            table:
              - [64]
    """,
}


def test_function_cases_run_on_aarch64_under_qemu(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64", "-k", "calc/")
    assert code == 1, (err, data)  # the wrong expectation
    seen = outcomes(data)
    assert {o["runner"] for o in seen.values()} == {"qemu-aarch64"}
    status = {case: o["status"] for (_, case), o in seen.items()}
    assert status == {"adds": "passed", "adds wrongly": "failed", "crashes alone": "failed",
                      "scales": "passed", "shouts": "passed", "reverses": "passed",
                      "measures": "passed", "echoes json": "passed",
                      "hangs alone": "failed", "knows its pointers": "passed"}, seen
    # the row past its timeout (0.3 s, times qemu's factor) fails alone, ended by the watchdog
    assert "row 2: spin(7) timed out after 0.3 s; expected 7" in \
        seen[("calc", "hangs alone")]["detail"]
    wrong = seen[("calc", "adds wrongly")]
    assert wrong["message"] == "1 of 2 rows failed"
    assert "row 2: add(2, 2) returned 4, expected 5" in wrong["detail"]
    crashed = seen[("calc", "crashes alone")]
    assert crashed["message"] == "1 of 4 rows failed", crashed
    assert "row 2: crash(0) crashed: SIGSEGV; expected 0" in crashed["detail"]
    # a second run calls nothing: the rows' results come from the cache (but those of a run
    # in which a row timed out, which is never cached)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64", "-k", "calc/")
    assert {o["case"] for o in data["outcomes"] if not o["cached"]} == {"hangs alone"}, data


@pytest.mark.parametrize("target, runner, bits, crash", [
    ("windows", "wine64", 64, "ended the harness with exit code 5 (an access violation)"),
    ("wasi", "wasmtime", 32, "crashed: SIGABRT")])
def test_function_cases_run_on_windows_and_wasi(tmp_path: Path, target: str, runner: str,
                                                bits: int, crash: str) -> None:
    tree = {**TREE, "calc/cases/tables.yaml": TREE["calc/cases/tables.yaml"].replace(
        "- [64]", f"- [{bits}]")}
    src = write_tree(tmp_path / "src", tree)
    # (a hung row under WASI: wasmtime's epochs, bumped by the runner's watchdog, stop it)
    code, data, err = verify(src, tmp_path / "store", "-t", target, "-k", "calc/",
                             "-k", "!wrongly")
    seen = outcomes(data)
    assert {o["runner"] for o in seen.values()} == {runner}, (err, data)
    status = {case: o["status"] for (_, case), o in seen.items()}
    assert status == {"adds": "passed", "crashes alone": "failed", "scales": "passed",
                      "shouts": "passed", "reverses": "passed", "measures": "passed",
                      "echoes json": "passed", "knows its pointers": "passed",
                      "hangs alone": "failed"}, seen
    hung = seen[("calc", "hangs alone")]
    assert "row 2: spin(7) timed out after 0.3 s; expected 7" in hung["detail"], hung
    assert hung["message"] == "1 of 3 rows failed", hung
    crashed = seen[("calc", "crashes alone")]
    assert crashed["message"] == "1 of 4 rows failed", crashed
    assert f"row 2: crash(0) {crash}; expected 0" in crashed["detail"]


def test_the_bundled_function_case_runs_on_arm64(tmp_path: Path) -> None:
    plan = Path(__file__).resolve().parents[1] / "recipes" / "plan.yaml"
    code, data, err = verify(plan.parent, tmp_path / "store", "-t", "arm64", "-p", "wordcount",
                             "-k", "wordcount/counts the words")
    assert code == 0, (err, data)
    [outcome] = data["outcomes"]
    assert outcome["status"] == "passed" and outcome["runner"] == "qemu-aarch64", outcome
    assert outcome["message"] == "5 rows"
