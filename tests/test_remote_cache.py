"""The shared cache on Bazel's HTTP remote-cache protocol, against a real nginx (WebDAV PUT) on
127.0.0.1: two checkouts at two paths with two stores share what one of them built; a tampered
blob or entry is rejected and rebuilt; a server that stops or was never there costs one warning,
never the run; credentials; and every bad configuration is one line, exit 2, before anything
runs. Compiles are counted with wrapper compilers (tests/toolchains.py) that both checkouts use,
so that their toolchain, and so their store path names, are the same."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import recipe_server, run_recipe, write_tree
from tests.projects import GREET_LIB
from tests.remote import checkout, realise, trees, warnings
from tests.servers import NGINX, Nginx, free_port
from tests.toolchains import WrapperToolchain

# CI installs nginx (.ci/run): there a missing one fails rather than skips.
pytestmark = pytest.mark.skipif(not os.path.exists(NGINX) and not os.environ.get("CI"),
                                reason="needs Debian's nginx (apt-get install nginx)")


@pytest.fixture
def uploaded(tmp_path: Path, tc: WrapperToolchain, server: Nginx):
    """Checkout A realised with --remote-upload into its own store: (its trees, its output)."""
    a = checkout(tmp_path / "a", tc)
    done = realise(a, tmp_path / "store-a", "--remote-cache", server.url, "--remote-upload")
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == [], done.stderr
    assert len(tc.compiles()) == 3 and server.files("ac") and server.files("cas")
    tc.clear_log()
    return trees(tmp_path / "store-a", done.stdout)


def test_a_fresh_checkout_elsewhere_compiles_nothing(tmp_path: Path, tc: WrapperToolchain,
                                                      server: Nginx, uploaded: dict) -> None:
    puts = _puts(server)
    b = checkout(tmp_path / "elsewhere" / "checkout-b", tc)
    done = realise(b, tmp_path / "store-b", "--remote-cache", server.url)
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == []
    assert tc.invocations() == []  # no compile, no link: all from the shared cache
    assert trees(tmp_path / "store-b", done.stdout) == uploaded  # same names, same bytes
    assert _puts(server) == puts  # read-only by default: B wrote nothing to the server
    for path in done.stdout.split():  # whole paths, as Nix substitutes them
        log = run_recipe("store", "log", path, "--store", tmp_path / "store-b").stdout
        assert log == f"# substituted from {server.url}\n"
    verified = run_recipe("store", "verify", "--store", tmp_path / "store-b")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # a substituted path keeps its sources too (for store verify --repair), as a built one does
    for source in b.parent.rglob("*"):
        if source.is_file() and source.suffix in (".c", ".h"):
            digest = hashlib.sha256(source.read_bytes()).hexdigest()
            assert (tmp_path / "store-b" / ".recipe" / "cas" / digest[:2] / digest).is_file()


def test_fresh_checkouts_served_by_a_warm_server(tmp_path: Path, tc: WrapperToolchain,
                                                server: Nginx, uploaded: dict) -> None:
    # issue 17's fresh clone as a user of 'recipe server start' has it: the server started
    # before the checkouts and their stores existed, and has the remote cache's client imported
    # (engine.cli.server.WARM); each command's child makes its own connections and fetch
    # threads after the fork. Two in a row: nothing of the first is left for the second.
    env = {k: v for k, v in os.environ.items()
           if k != "RECIPE_SERVER" and not k.startswith("RECIPE_REMOTE")}
    with recipe_server(env):
        for name in ("b", "c"):
            plan = checkout(tmp_path / "elsewhere" / name, tc)
            store = tmp_path / f"store-{name}"
            done = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "engine.cli.main", "realise",
                 str(plan), "--store", str(store), "--remote-cache", server.url],
                env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
            imports = [line for line in done.stderr.splitlines()
                       if line.startswith("import time:")]
            # served: this process only forwarded; in-process it would import the client here
            assert imports and not [line for line in imports if "engine.remote" in line]
            assert warnings(done.stderr) == [], done.stderr
            assert tc.invocations() == []
            assert trees(store, done.stdout) == uploaded
            verified = run_recipe("store", "verify", "--store", store)
            assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_path_that_does_not_match_its_nar_hash_is_built(tmp_path: Path, tc: WrapperToolchain,
                                                           server: Nginx, uploaded: dict) -> None:
    from engine.remote.paths import path_key
    from engine.remote.remote_execution_pb2 import ActionResult

    name = next(n for n in uploaded if "-hello-" in n)
    entry = server.data / "ac" / path_key(name)
    message = ActionResult.FromString(entry.read_bytes())
    [program] = [f for f in message.output_files if f.path == "bin/hello"]
    program.is_executable = False  # every blob is right; the tree is not the one registered
    entry.write_bytes(message.SerializeToString())
    b = checkout(tmp_path / "b", tc)
    done = realise(b, tmp_path / "store-b", "--remote-cache", server.url)
    assert done.returncode == 0, done.stderr
    [warning] = warnings(done.stderr)
    assert f"{name} from the remote does not match its NAR hash" in warning
    assert tc.invocations() == []  # built from the action cache instead
    assert trees(tmp_path / "store-b", done.stdout) == uploaded
    log = run_recipe("store", "log", str(tmp_path / "store-b" / name), "--store",
                     tmp_path / "store-b").stdout
    assert log == "# cached src/main.c\n# cached hello\n"


def test_a_paths_files_are_fetched_at_once(tmp_path: Path, tc: WrapperToolchain,
                                           server: Nginx, uploaded: dict) -> None:
    # one path (greet: its description, library and headers) on one build thread: its blobs
    # come through the fetchers, over connections of their own, not one after the other over
    # the build thread's (which a thread pool may not spread over several, so that is not
    # asserted: only that the build thread's connection fetched the entry alone)
    before = len((server.root / "access.log").read_text().splitlines())
    done = realise(checkout(tmp_path / "b", tc), tmp_path / "store-b", "--remote-cache",
                   server.url, "-j", "1", "-p", "greet")
    assert done.returncode == 0 and tc.invocations() == [], done.stderr
    [greet] = trees(tmp_path / "store-b", done.stdout).items()
    assert uploaded[greet[0]] == greet[1]
    lines = (server.root / "access.log").read_text().splitlines()[before:]
    [entry] = [line.rsplit(" c", 1)[1] for line in lines if '"GET /ac/' in line]
    blobs = {line.rsplit(" c", 1)[1] for line in lines if '"GET /cas/' in line}
    assert len([line for line in lines if '"GET /cas/' in line]) > 2, lines
    assert entry not in blobs, lines



def test_a_fresh_clone_downloads_only_its_paths_files(tmp_path: Path, tc: WrapperToolchain,
                                                     server: Nginx, uploaded: dict) -> None:
    # build without the bytes: a substituted path's intermediate objects (whose action results
    # are on the server too) are never downloaded; one entry a path, one GET a file, nothing else
    from engine.remote.paths import META, path_key
    from engine.remote.remote_execution_pb2 import ActionResult

    named = {}  # each path's blobs: its files and its description
    for name in uploaded:
        entry = ActionResult.FromString((server.data / "ac" / path_key(name)).read_bytes())
        named[name] = {f.digest.hash for f in entry.output_files}
        assert any(f.path == META for f in entry.output_files)
    compiled = set().union(*(_compiled(entry, server) for entry in server.files("ac")))
    assert len(compiled) == 3  # the three compiles' objects are on the server
    objects = compiled | {f.digest.hash for key in server.files("ac")
                          for f in ActionResult.FromString(key.read_bytes()).output_files}
    objects -= set().union(*named.values())
    before = len((server.root / "access.log").read_text().splitlines())
    done = realise(checkout(tmp_path / "b", tc), tmp_path / "store-b", "--remote-cache",
                   server.url)
    assert done.returncode == 0 and tc.invocations() == [], done.stderr
    lines = (server.root / "access.log").read_text().splitlines()[before:]
    asked = [line.split('"')[1].split() for line in lines]
    assert sorted(path for method, path, _ in asked if method == "GET" and
                  path.startswith("/ac/")) == sorted(f"/ac/{path_key(n)}" for n in uploaded)
    fetched = [path.removeprefix("/cas/") for method, path, _ in asked
               if method == "GET" and path.startswith("/cas/")]
    assert sorted(fetched) == sorted(d for blobs in named.values() for d in blobs)
    assert not set(fetched) & objects
    assert len(asked) == len(uploaded) + len(fetched)  # no HEAD, no PUT, nothing twice

def test_a_candidate_collected_here_but_shared_is_a_hit(tmp_path: Path, tc: WrapperToolchain,
                                                        server: Nginx, uploaded: dict) -> None:
    # A compile's results are candidates in its manifest. Here the manifest stays (a live path
    # was built from it) while the objects of its other header set were collected: with the
    # shared cache, that candidate is a hit all the same, its object downloaded when read.
    from engine.remote.paths import path_key

    plan, store = tmp_path / "a" / "plan.yaml", tmp_path / "store-a"
    header = plan.parent / "greet/src/internal.h"
    hello = header.read_text()
    header.write_text('#define GREETING "howdy"\n')
    done = realise(plan, store, "--remote-cache", server.url, "--remote-upload")
    assert done.returncode == 0 and len(tc.compiles()) == 1, done.stderr  # greet.c
    for path in (store / ".recipe").glob("[ac][ca]*/*/*"):  # used a while ago
        os.utime(path, (path.stat().st_atime - 60, path.stat().st_mtime - 60))
    collected = run_recipe("store", "gc", "--store", store)
    assert collected.returncode == 0 and "\ndeleted 2 paths" in collected.stdout, \
        collected.stdout
    for name in uploaded:  # no whole path to substitute: the actions are looked up
        (server.data / "ac" / path_key(name)).unlink()
    tc.clear_log()
    header.write_text(hello)
    done = realise(plan, store, "--remote-cache", server.url)
    assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
    assert tc.invocations() == []  # greet.c's object from the remote, the archive's result too
    assert trees(store, done.stdout) == uploaded
    assert run_recipe("store", "verify", "--store", store).returncode == 0


def _compiled(entry: Path, server: Nginx) -> set[str]:
    """The blobs a compile manifest on the server names: its candidates' outputs, in its
    result's metadata blob (none for another entry)."""
    from engine.remote.remote_execution_pb2 import ActionResult
    from engine.remote.results import META

    found = set()
    for output in ActionResult.FromString(entry.read_bytes()).output_files:
        if output.path == META:
            meta = json.loads((server.data / "cas" / output.digest.hash).read_bytes())
            found |= {d for c in meta.get("candidates", []) for d in c["outputs"].values()}
    return found


def _puts(server: Nginx) -> int:
    log = (server.root / "access.log").read_text()
    return sum('"PUT ' in line for line in log.splitlines())


def test_the_variable_and_the_plan_name_the_cache_too(tmp_path: Path, tc: WrapperToolchain,
                                                      server: Nginx, uploaded: dict) -> None:
    b = checkout(tmp_path / "b", tc)
    done = realise(b, tmp_path / "store-b", env={"RECIPE_REMOTE_CACHE": server.url})
    assert done.returncode == 0 and tc.invocations() == [], done.stderr
    c = checkout(tmp_path / "c", tc, extra=f"remote_cache: {server.url}/\n")
    done = realise(c, tmp_path / "store-c")
    assert done.returncode == 0 and tc.invocations() == [], done.stderr
    assert trees(tmp_path / "store-c", done.stdout) == uploaded
    # an empty --remote-cache turns the plan's off: everything compiles
    done = realise(c, tmp_path / "store-d", "--remote-cache", "")
    assert done.returncode == 0 and len(tc.compiles()) == 3, done.stderr


def test_b_a_tampered_blob_is_rejected_and_rebuilt(tmp_path: Path, tc: WrapperToolchain,
                                                   server: Nginx, uploaded: dict) -> None:
    # The executable's blob on the server now holds other bytes (nginx takes any PUT).
    name = next(n for n in uploaded if "-hello-" in n)
    digest = hashlib.sha256(uploaded[name][1]["bin/hello"]).hexdigest()
    blob = server.data / "cas" / digest
    blob.write_bytes(b"\x7fELF not the program" + blob.read_bytes()[20:])
    b = checkout(tmp_path / "b", tc)
    done = realise(b, tmp_path / "store-b", "--remote-cache", server.url)
    assert done.returncode == 0, done.stderr
    [warning] = warnings(done.stderr)
    assert f"blob {digest[:16]}" in warning and "does not match its digest" in warning
    assert [i.kind for i in tc.invocations()] == ["link"]  # the link ran again, nothing else
    assert trees(tmp_path / "store-b", done.stdout) == uploaded
    store = tmp_path / "store-b" / ".recipe" / "cas" / digest[:2] / digest
    assert hashlib.sha256(store.read_bytes()).hexdigest() == digest


def test_b_a_garbage_entry_is_a_miss(tmp_path: Path, tc: WrapperToolchain, server: Nginx,
                                     uploaded: dict) -> None:
    for entry in server.files("ac"):
        entry.write_bytes(b"<html>502 Bad Gateway</html>")
    b = checkout(tmp_path / "b", tc)
    done = realise(b, tmp_path / "store-b", "--remote-cache", server.url)
    assert done.returncode == 0, done.stderr
    [warning] = warnings(done.stderr)
    assert "is not a result recipe can use" in warning
    assert len(tc.compiles()) == 3
    assert trees(tmp_path / "store-b", done.stdout) == uploaded


def test_c_the_server_stopped_mid_run(tmp_path: Path, tc: WrapperToolchain,
                                      server: Nginx) -> None:
    local = realise(checkout(tmp_path / "local", tc), tmp_path / "store-local")
    assert local.returncode == 0, local.stderr
    tc.clear_log()
    hold = tc.hold("compile", "greet", "src/twice.c")
    a = checkout(tmp_path / "a", tc)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "realise", str(a),
                             "--store", str(tmp_path / "store-a"), "--remote-cache", server.url,
                             "--remote-upload"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        hold.wait(alive=proc)
        server.stop()
        hold.go()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    [warning] = warnings(err)
    assert f"remote cache {server.url}: unreachable" in warning
    assert trees(tmp_path / "store-a", out) == trees(tmp_path / "store-local", local.stdout)


def test_c_an_unreachable_url(tmp_path: Path, tc: WrapperToolchain) -> None:
    url = f"http://127.0.0.1:{free_port()}/cache"  # nothing listens there
    done = realise(checkout(tmp_path / "a", tc), tmp_path / "store", "--remote-cache", url,
                   "--remote-upload")
    assert done.returncode == 0, done.stderr
    assert warnings(done.stderr) == [f"recipe: warning: remote cache {url}: unreachable "
                                     "(connection refused); going on with the local cache and "
                                     "builds"]
    assert len(tc.compiles()) == 3


def test_a_bearer_token_from_the_variable_the_plan_names(tmp_path: Path,
                                                         tc: WrapperToolchain) -> None:
    with Nginx(tmp_path / "nginx", token="s3cret-token") as server:
        extra = f"remote_cache: {{url: '{server.url}', token_env: TEAM_CACHE_TOKEN}}\n"
        a = checkout(tmp_path / "a", tc, extra=extra)
        done = realise(a, tmp_path / "store-a", "--remote-upload",
                       env={"TEAM_CACHE_TOKEN": "s3cret-token"})
        assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
        assert server.files("ac")
        tc.clear_log()
        # a wrong token: refused once, one warning (the token never shown), built locally
        b = checkout(tmp_path / "b", tc, extra=extra)
        done = realise(b, tmp_path / "store-b", env={"TEAM_CACHE_TOKEN": "wrong"})
        assert done.returncode == 0, done.stderr
        [warning] = warnings(done.stderr)
        assert "(401)" in warning and "wrong" not in done.stderr + done.stdout
        assert len(tc.compiles()) == 3
        tc.clear_log()
        done = realise(b, tmp_path / "store-c", env={"TEAM_CACHE_TOKEN": "s3cret-token"})
        assert done.returncode == 0 and tc.invocations() == [], done.stderr


def test_basic_auth_from_netrc(tmp_path: Path, tc: WrapperToolchain) -> None:
    with Nginx(tmp_path / "nginx", token=None) as server:
        (tmp_path / "netrc").write_text("machine 127.0.0.1 login ci password hunter2\n")
        (tmp_path / "netrc").chmod(0o600)
        a = checkout(tmp_path / "a", tc)
        done = realise(a, tmp_path / "store-a", "--remote-cache", server.url, "--remote-upload",
                       env={"NETRC": str(tmp_path / "netrc")})
        assert done.returncode == 0 and warnings(done.stderr) == [], done.stderr
        log = (server.root / "access.log").read_text()
        assert " ci [" in log  # nginx logs the basic-auth user of each request


BAD = [
    (["--remote-cache", "http://exa mple.org/"], "is not a URL"),
    (["--remote-cache", "grpc://127.0.0.1:9092"], "the scheme 'grpc' is not supported"),
    (["--remote-cache", "127.0.0.1:8080"], "is not supported"),
    (["--remote-cache", "http://127.0.0.1:99999/"], "is not a URL"),
    (["--remote-cache", "http://ci:pw@127.0.0.1/"], "holds a user or password"),
    (["--remote-cache", "http:///cache"], "has no usable host"),
    (["--remote-upload"], "--remote-upload needs a remote cache"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_a_bad_remote_option_is_one_line_before_anything_runs(tmp_path: Path,
                                                              tc: WrapperToolchain,
                                                              args: list[str],
                                                              message: str) -> None:
    plan = checkout(tmp_path / "a", tc)
    done = realise(plan, tmp_path / "store", *args)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert message in line and "; " in line and "pw" not in line
    assert not (tmp_path / "store").exists() and tc.invocations() == []


def test_a_bad_variable_and_a_missing_token_variable(tmp_path: Path,
                                                     tc: WrapperToolchain) -> None:
    plan = checkout(tmp_path / "a", tc)
    done = realise(plan, tmp_path / "store", env={"RECIPE_REMOTE_CACHE": "ftp://127.0.0.1/"})
    assert done.returncode == 2
    assert done.stderr.startswith("recipe: $RECIPE_REMOTE_CACHE ftp://127.0.0.1/: the scheme")
    extra = "remote_cache: {url: 'http://127.0.0.1:1', token_env: NO_SUCH_TOKEN_VAR}\n"
    plan = checkout(tmp_path / "b", tc, extra=extra)
    for command in ("realise", "verify", "check"):
        done = run_recipe(command, plan, "--store", tmp_path / "store")
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.splitlines()
        assert "plan.yaml:3:" in line and "$NO_SUCH_TOKEN_VAR is not set" in line, line
    assert not (tmp_path / "store").exists() and tc.invocations() == []
    plan = checkout(tmp_path / "c", tc, extra="remote_cache: 'http://u:p@127.0.0.1/'\n")
    done = run_recipe("realise", plan, "--store", tmp_path / "store")
    assert done.returncode == 2 and "plan.yaml:3:" in done.stderr, done.stderr
    assert not (tmp_path / "store").exists()


def test_every_command_that_realises_takes_the_options(tmp_path: Path) -> None:
    for command in ("realise", "verify", "check", "release", "eval"):
        done = run_recipe(command, "--help")
        assert "--remote-cache URL" in done.stdout and "--remote-upload" in done.stdout, command


def test_verify_shares_case_outcomes(tmp_path: Path, tc: WrapperToolchain, server: Nginx) -> None:
    files = dict(GREET_LIB)
    files["hello/cases/run.yaml"] = """
        kind: cases
        cases:
          - name: says hello
            run: hello
            expect: {stdout: "hello 2 1\\n"}
    """
    files["plan.yaml"] = (f"kind: plan\nprojects: ['*/project.yaml']\n"
                          f"targets:\n  release: {{opt: release, toolchain: {tc.spec_yaml()}}}\n")
    a, b = write_tree(tmp_path / "a", files), write_tree(tmp_path / "b", files)
    first = run_recipe("verify", a / "plan.yaml", "--store", tmp_path / "store-a", "--json",
                       "--remote-cache", server.url, "--remote-upload")
    assert first.returncode == 0, first.stderr
    second = run_recipe("verify", b / "plan.yaml", "--store", tmp_path / "store-b", "--json",
                        "--remote-cache", server.url)
    assert second.returncode == 0, second.stderr
    assert '"cached": true' in second.stdout and '"cached": true' not in first.stdout


def test_without_the_distributed_extra_one_line(tmp_path: Path, tc: WrapperToolchain) -> None:
    # a light install (no protobuf): the option is refused in one line, not with a traceback
    plan = checkout(tmp_path / "a", tc)
    code = ("import sys; sys.modules['google.protobuf'] = None; "
            "from engine.cli.main import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "realise", str(plan), "--store",
                           str(tmp_path / "store"), "--remote-cache", "http://127.0.0.1:1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert "needs the Python package google" in line and "recipe[distributed]" in line
    assert not (tmp_path / "store").exists()
