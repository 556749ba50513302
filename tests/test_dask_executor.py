"""Distributed execution on a real Dask cluster on 127.0.0.1 (``dask scheduler`` and ``dask
worker`` processes) with a real nginx as the shared cache: the paths and their NAR hashes are the
local ones; a worker killed mid-build, or the scheduler lost, changes no byte; a worker whose
compiler differs never serves an action; a bad executor is one line, exit 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_recipe
from tests.remote import checkout, executed_on, realise, trees, warnings
from tests.servers import NGINX, DaskCluster, Nginx
from tests.toolchains import WrapperToolchain, make_toolchain

pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(NGINX) and not os.environ.get("CI"),
                                 reason="needs Debian's nginx (apt-get install nginx)")]
ACTIONS = 5  # greet: two compiles and an archive; hello: a compile and a link


@pytest.fixture
def local(tmp_path: Path, tc: WrapperToolchain) -> dict:
    """The same plan realised here, without cache or cluster: the reference."""
    done = realise(checkout(tmp_path / "local", tc), tmp_path / "store-local")
    assert done.returncode == 0, done.stderr
    tc.clear_log()
    return trees(tmp_path / "store-local", done.stdout)


def test_d_a_realise_on_the_cluster_gives_the_local_paths_and_hashes(
        tmp_path: Path, tc: WrapperToolchain, server: Nginx, local: dict,
        cluster: DaskCluster) -> None:
    addresses = set(cluster.worker_addresses().values())
    done = realise(checkout(tmp_path / "a", tc), tmp_path / "store-a", "--remote-cache",
                   server.url, "--executor", cluster.url, "-j", "2")
    assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
    assert trees(tmp_path / "store-a", done.stdout) == local  # same names, NAR hashes, bytes
    workers = executed_on(tmp_path / "store-a", done.stdout)
    assert len(workers) == ACTIONS and set(workers) <= addresses
    # another checkout, another store: everything from the shared cache, nothing runs
    tc.clear_log()
    again = realise(checkout(tmp_path / "b", tc), tmp_path / "store-b", "--remote-cache",
                    server.url)
    assert again.returncode == 0 and tc.invocations() == [], again.stderr
    assert trees(tmp_path / "store-b", again.stdout) == local


def _holder(cluster: DaskCluster, drv_dir: str) -> str:
    """The worker whose store holds the held compile's working folder."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd.endswith(f"/.recipe/build/{drv_dir}/w") and cwd.startswith(str(cluster.root)):
            return Path(cwd).relative_to(cluster.root).parts[0].removeprefix("store-")
    raise AssertionError("no worker holds the compile")


def test_e_a_worker_killed_mid_build(tmp_path: Path, tc: WrapperToolchain, server: Nginx,
                                     local: dict, cluster: DaskCluster) -> None:
    hold = tc.hold("compile", "greet", "src/twice.c")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "realise",
                             str(checkout(tmp_path / "a", tc)), "--store",
                             str(tmp_path / "store-a"), "--remote-cache", server.url,
                             "--executor", cluster.url, "-j", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held = hold.wait(alive=proc)
        victim = _holder(cluster, held)
        survivor = cluster.worker_addresses()["w2" if victim == "w1" else "w1"]
        cluster.kill(victim)  # kill -9, mid-compile
        hold.go()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert trees(tmp_path / "store-a", out) == local
    greet = next(p for p in out.split() if "-greet-" in p)
    log = run_recipe("store", "log", greet, "--store", tmp_path / "store-a").stdout
    twice = log.split("-c src/twice.c")[0].rsplit("# executed on ", 1)[1].split()[0]
    assert twice == survivor  # the compile the victim held was run again by the other worker


def test_f_a_worker_with_another_compiler_never_serves(tmp_path: Path, tc: WrapperToolchain,
                                                      server: Nginx, local: dict) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a worker with its own mount namespace")
    other = make_toolchain(tmp_path / "other")  # other wrapper scripts: another identity
    # This worker sees `other` at the toolchain's path: the same path, another compiler.
    odd = ["unshare", "--mount", "sh", "-c",
           'mount --bind "$0" "$1" && shift && exec "$@"', str(other.folder),
           str(tc.folder)]
    with DaskCluster(tmp_path / "dask", workers=0) as cluster:
        cluster.add_worker("odd", wrap=odd)
        # only the odd worker: it refuses everything, and everything runs here
        done = realise(checkout(tmp_path / "a", tc), tmp_path / "store-a", "--remote-cache",
                       server.url, "--executor", cluster.url, "-j", "2")
        assert done.returncode == 0, done.stderr
        assert executed_on(tmp_path / "store-a", done.stdout) == []
        assert "Refused" in (cluster.root / "odd.log").read_text()  # it was asked, and refused
        assert trees(tmp_path / "store-a", done.stdout) == local
        cluster.add_worker("good")
        names = cluster.worker_addresses()
        c = checkout(tmp_path / "c", tc, extra="")
        (c.parent / "greet" / "src" / "greet.c").write_text(
            '#include "greet.h"\n#include "internal.h"\n'
            'const char *greet_word(void) { return GREETING "!"; }\n')
        done = realise(c, tmp_path / "store-c", "--remote-cache", server.url, "--executor",
                       cluster.url, "-j", "2")
    assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
    workers = executed_on(tmp_path / "store-c", done.stdout)
    assert workers and set(workers) == {names["good"]}
    assert other.invocations() == []


def test_the_scheduler_lost_mid_build(tmp_path: Path, tc: WrapperToolchain, server: Nginx,
                                      local: dict, cluster: DaskCluster) -> None:
    hold = tc.hold("compile", "greet", "src/twice.c")
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "realise",
                             str(checkout(tmp_path / "a", tc)), "--store",
                             str(tmp_path / "store-a"), "--remote-cache", server.url,
                             "--executor", cluster.url, "-j", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        hold.wait(alive=proc)
        cluster.kill("scheduler")
        hold.go()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    [warning] = warnings(err)
    assert warning.startswith(f"recipe: warning: executor {cluster.url}: unreachable")
    assert trees(tmp_path / "store-a", out) == local


BAD = [
    (["--executor", "dask://127.0.0.1:8786"], "needs a remote cache"),
    (["--remote-cache", "http://127.0.0.1:1", "--executor", "tcp://127.0.0.1:8786"],
     "the scheme 'tcp' is not supported"),
    (["--remote-cache", "http://127.0.0.1:1", "--executor", "dask://127.0.0.1"],
     "has no usable host and port"),
    (["--remote-cache", "http://127.0.0.1:1", "--executor", "127.0.0.1:8786"],
     "is not an address"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_a_bad_executor_is_one_line_before_anything_runs(tmp_path: Path, tc: WrapperToolchain,
                                                         args: list[str], message: str) -> None:
    done = realise(checkout(tmp_path / "a", tc), tmp_path / "store", *args)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert message in line and "; " in line
    assert not (tmp_path / "store").exists() and tc.invocations() == []
    env = {**os.environ, "RECIPE_EXECUTOR": "dask://127.0.0.1:8786"}
    env.pop("RECIPE_REMOTE_CACHE", None)
    done = run_recipe("verify", checkout(tmp_path / "b", tc), "--store", tmp_path / "store",
                      env=env)
    assert done.returncode == 2 and "$RECIPE_EXECUTOR" in done.stderr, done.stderr


WHERE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "where/project.yaml": """
        kind: project
        name: where
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs: [{name: where, kind: executable}]
    """,
    "where/src/main.c": """
        #include <stdio.h>
        #include <stdlib.h>
        int main(int argc, char **argv) {
            char line[256];
            if (argc > 1) { printf("tmp %s\\n", getenv("TMPDIR")); return 0; }
            while (fgets(line, sizeof line, stdin)) fputs(line, stdout);
            FILE *f = fopen("data/in.txt", "r");
            while (f && fgets(line, sizeof line, f)) fputs(line, stdout);
            return 3;
        }
    """,
    "where/cases/run.yaml": """
        kind: cases
        cases:
          - name: reads its inputs
            run: where
            stdin: "piped\\n"
            files: ["data/in.txt"]
            expect: {stdout: "piped\\nfrom a file\\n", exit: 3}
          - name: says where it ran
            run: where
            args: [tmp]
            expect: {stdout: "somewhere\\n"}
    """,
    "where/cases/data/in.txt": "from a file\n",
}


def test_cases_run_on_workers_contained_like_here(tmp_path: Path, server: Nginx,
                                                  cluster: DaskCluster) -> None:
    import json

    from tests.conftest import write_tree

    plan = write_tree(tmp_path / "src", WHERE) / "plan.yaml"
    here = run_recipe("verify", plan, "--store", tmp_path / "store-here", "--json")
    there = run_recipe("verify", plan, "--store", tmp_path / "store-there", "--json",
                       "--remote-cache", server.url, "--executor", cluster.url)
    for done, ran_on_worker in ((here, False), (there, True)):
        assert done.returncode == 1, done.stderr  # the second case fails on purpose
        outcomes = {o["case"]: o for o in json.loads(done.stdout)["outcomes"]}
        assert outcomes["reads its inputs"]["status"] == "passed"
        detail = outcomes["says where it ran"]["detail"]
        # its TMPDIR: the scratch folder of a worker's store, or here
        assert ("/dask/store-w" in detail) == ran_on_worker, detail


def test_a_bug_is_not_turned_into_a_local_build(tmp_path: Path, server: Nginx,
                                                cluster: DaskCluster) -> None:
    # Only what Dask raises when the scheduler is gone turns the executor off; a task that
    # breaks in another way (here a derivation without the archiver its identity must name)
    # is a bug of recipe's, and must show as one, not as an "unreachable" warning and a
    # quiet local build.
    from types import SimpleNamespace

    from engine.executors.dask import DaskExecutor
    from engine.remote.config import parse
    from engine.remote.http import HttpCache
    from engine.store import Store

    said: list[str] = []
    config = parse(server.url)
    store = Store.open(tmp_path / "store")
    executor = DaskExecutor(f"tcp://{cluster.address}", store, HttpCache(config, said.append),
                            config, said.append)
    toolchain = {"family": "gcc", "cc": "/usr/bin/gcc", "cxx": "/usr/bin/g++", "programs": {},
                 "digests": {}}  # no "ar": a KeyError on the worker
    drv = SimpleNamespace(name="0" * 32 + "-x-1-host", sources=None,
                          data={"toolchain": toolchain, "inputs": {}, "depends": {}})
    action = SimpleNamespace(inputs=[], as_json=lambda: {})
    try:
        with pytest.raises(KeyError, match="ar"):
            executor.execute(drv, action, {}, "1" * 64)
    finally:
        executor.close()
    assert not executor.down and said == []


ELSEWHERE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "core/project.yaml": """
        kind: project
        name: core
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/core.h"]
        include_dirs: [include]
        outputs: [{name: core, kind: shared-library}]
    """,
    "core/include/core.h": """
        #include <stdlib.h>
        #include <string.h>
        /* 1 on a worker of the test's cluster (its scratch is in the worker's store), else 0 */
        int core_on_worker(void);
    """,
    "core/src/core.c": """
        #include "core.h"
        int core_on_worker(void) {
            const char *tmp = getenv("TMPDIR");
            return tmp != NULL && strstr(tmp, "/dask/store-w") != NULL;
        }
    """,
    "where/project.yaml": """
        kind: project
        name: where
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/where.h"]
        include_dirs: [include]
        depends: [core]
        outputs: [{name: where, kind: static-library}]
        repl:
          scope: [include/where.h]
    """,
    "where/include/where.h": """
        #include <stdio.h>
        #include "core.h"
        int plus_worker(int x);
    """,
    "where/src/where.c": """
        #include "where.h"
        int plus_worker(int x) { return x + core_on_worker(); }
    """,
    "where/cases/cases.yaml": """
        kind: cases
        cases:
          - name: eval on a worker
            eval: 'printf("%d\\n", plus_worker(1)); return 3;'
            expect: {stdout: "2\\n", exit: 3}
          - name: function on a worker
            function: int plus_worker(int x)
            table: [[1, 2], [40, 41]]
    """,
}


def test_eval_and_function_cases_run_on_workers(tmp_path: Path, server: Nginx) -> None:
    import json

    from tests.conftest import write_tree

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for workers that cannot see the client's store")
    plan = write_tree(tmp_path / "src", ELSEWHERE) / "plan.yaml"
    here = run_recipe("verify", plan, "--store", tmp_path / "store-here", "--json")
    assert here.returncode == 1, here.stderr  # here, not on a worker: both fail
    assert {o["status"] for o in json.loads(here.stdout)["outcomes"]} == {"failed"}
    # Workers that see an empty folder where the client's store is: everything a case
    # needs must come to them through the shared cache (the runner's rpath names that store).
    store = tmp_path / "store-there"
    store.mkdir()
    hide = ["unshare", "--mount", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"',
            str(store)]
    with DaskCluster(tmp_path / "dask", workers=0) as cluster:
        cluster.add_worker("w1", wrap=hide)
        cluster.add_worker("w2", wrap=hide)
        there = run_recipe("verify", plan, "--store", store, "--json", "--remote-cache",
                           server.url, "--executor", cluster.url)
    assert there.returncode == 0, there.stdout + there.stderr
    outcomes = json.loads(there.stdout)["outcomes"]
    assert [(o["status"], o["cached"]) for o in outcomes] == [("passed", False)] * 2
    assert warnings(there.stderr) == []


def _crates_checkout(root: Path) -> Path:
    from tests.conftest import write_tree
    from tests.unit.test_rust_crates import SCRIPTED_MAIN, app, plan, write_registry

    registry = write_registry(root / "registry")
    files = {"plan.yaml": plan(registry), **app("{tally: '1', scripted: '0.1'}", SCRIPTED_MAIN)}
    return write_tree(root / "src", files) / "plan.yaml"


needs_rustc = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                 reason="needs rustc")
RUST_ACTIONS = 9  # tally: rustc; linked, scripted: rustc build.rs, its run, rustc; app: 2


@needs_rustc
def test_crates_and_build_scripts_run_on_workers(tmp_path: Path, server: Nginx,
                                                 cluster: DaskCluster) -> None:
    plan = _crates_checkout(tmp_path)
    local = realise(plan, tmp_path / "store-local")
    assert local.returncode == 0, local.stderr
    store = tmp_path / "store-a"
    done = realise(plan, store, "--remote-cache", server.url, "--executor", cluster.url,
                   "-j", "2")
    assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
    # every crate's store path, the same names and bytes as built here
    names = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert names == sorted(p.name for p in (tmp_path / "store-local").iterdir()
                           if not p.name.startswith("."))
    listed = "\n".join(str(store / n) for n in names)
    assert trees(store, listed) == trees(tmp_path / "store-local", listed.replace(
        str(store), str(tmp_path / "store-local")))
    workers = executed_on(store, listed)
    assert len(workers) == RUST_ACTIONS and set(workers) <= set(cluster.worker_addresses()
                                                                 .values())
    [app] = done.stdout.split()
    out = subprocess.run([Path(app) / "bin/app"], capture_output=True, text=True).stdout
    assert out == "magic 7 generated 5 fast linux\n"


@needs_rustc
def test_a_worker_with_another_rustc_never_serves(tmp_path: Path, server: Nginx) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a worker with its own mount namespace")
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True,
                             check=True).stdout.strip()
    # One file of the rustc identity, another in this worker's mount namespace: the same
    # compiler path, another standard library.
    std = min((p for p in Path(sysroot, "lib", "rustlib").glob("*/lib/*.rlib")),
              key=lambda p: p.stat().st_size)
    other = tmp_path / "other.rlib"
    other.write_bytes(std.read_bytes() + b"\0")
    odd = ["unshare", "--mount", "sh", "-c", 'mount --bind "$0" "$1" && shift && exec "$@"',
           str(other), str(std)]
    plan = _crates_checkout(tmp_path)
    with DaskCluster(tmp_path / "dask", workers=0) as cluster:
        cluster.add_worker("odd", wrap=odd)
        done = realise(plan, tmp_path / "store-a", "--remote-cache", server.url, "--executor",
                       cluster.url, "-j", "2")
        log = (cluster.root / "odd.log").read_text()
    assert done.returncode == 0, done.stderr
    every = [str(p) for p in (tmp_path / "store-a").iterdir() if not p.name.startswith(".")]
    assert len(every) == 4 and executed_on(tmp_path / "store-a", "\n".join(every)) == []
    assert "Refused" in log and std.name in log  # it was asked, and named the file


def test_release_runs_its_cases_on_workers(tmp_path: Path, server: Nginx,
                                           cluster: DaskCluster) -> None:
    from tests.conftest import write_tree

    plan = write_tree(tmp_path / "src", ELSEWHERE) / "plan.yaml"
    # ELSEWHERE's cases pass only on a worker: here, nothing is released
    here = run_recipe("release", plan, "--store", tmp_path / "store", "--out", tmp_path / "here")
    assert here.returncode == 1 and "2 of 2 cases did not pass" in here.stderr, here.stderr
    there = run_recipe("release", plan, "--store", tmp_path / "store-there", "--out",
                       tmp_path / "there", "--remote-cache", server.url, "--executor",
                       cluster.url)
    assert there.returncode == 0, there.stderr
    assert "(2 cases passed;" in there.stderr and warnings(there.stderr) == []
    assert (tmp_path / "there" / "SHA256SUMS").is_file()
