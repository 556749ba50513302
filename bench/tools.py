"""The build tools under test, each driven through its command line as a user drives it.

``Recipe`` runs this checkout installed in a virtual environment of the bench's own (see
``Recipe.install``), in-process (``RECIPE_SERVER=off``) and, once ``start_server`` ran, also
served: by the native client ``recipe server client-dir`` names, as a user who put it first on
``PATH`` runs it; ``Make`` runs ``make -j N`` on a generated Makefile, with plain gcc or
with ``ccache gcc`` and a private ``CCACHE_DIR``. Timed calls go through ``process.timed``;
everything that checks a scenario did what it says runs untimed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from bench.process import BenchError, Sample, output, timed

REPO = Path(__file__).resolve().parent.parent
_COMPILED = re.compile(r"\s-c\s+(\S+\.c)\b")


def base_env() -> dict[str, str]:
    """The caller's environment without what would steer a tool: recipe's store variable,
    make's inherited flags, ccache's settings, and Python's switches (a user's Python writes
    and reads byte code)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RECIPE_", "CCACHE_", "PYTHON"))
           and k not in ("MAKEFLAGS", "MFLAGS")}
    env["LC_ALL"] = "C"
    return env


_SCRIPT = """#!{python}
import re
import sys
from engine.cli.main import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


#: CPU seconds above which the native client must have run Python (the client alone takes
#: under a millisecond; Python's start alone ~10 ms): a served row that was not served.
SERVED_CPU = 0.008


def check_served(sample: Sample) -> None:
    if sample.cpu > SERVED_CPU:
        raise BenchError(f"the native client used {sample.cpu:.3f} s of CPU: it ran the "
                         "command in Python, not in the server")


class Recipe:
    """This checkout's recipe as a user runs it: installed by pip into a virtual environment,
    started through its console script."""

    def __init__(self, jobs: int, venv: Path) -> None:
        self.jobs = jobs
        # The user's cache of its own: toolchain identities and validated documents are read
        # by every command, and this machine's (tests' throwaway toolchains among them) is no
        # user's. Filled by the bench's untimed first runs.
        cache = {"XDG_CACHE_HOME": str(venv.parent / "user-cache")}
        self.env = {**base_env(), **cache, "RECIPE_SERVER": "off"}  # in-process, server or not
        self.served_env = {**base_env(), **cache}
        self.script = self.install(venv)
        self.python = venv / "bin" / "python"
        self.argv = [str(self.script)]
        self.client: list[str] = []  # the native client, while a server runs

    def start_server(self) -> None:
        """``recipe server start``, and the native client it compiled (as README says)."""
        output([*self.argv, "server", "start", "--idle", "3600"], REPO, self.served_env)
        folder = output([*self.argv, "server", "client-dir"], REPO, self.served_env).strip()
        self.client = [str(Path(folder) / "recipe")]

    def server_pid(self) -> int:
        status = json.loads(output([*self.argv, "server", "status", "--json"], REPO,
                                   self.served_env))
        if not status.get("running"):
            raise BenchError("the recipe server is not running")
        return int(status["pid"])

    def stop_server(self) -> None:
        output([*self.argv, "server", "stop"], REPO, self.served_env)
        self.client = []

    @staticmethod
    def install(venv: Path) -> Path:
        """``pip install`` of the checkout (not editable) into a new venv at ``venv``; its
        dependencies come from this interpreter's site-packages by a path line, so that none of
        that folder's start-up hooks (``.pth`` files of other packages) run. The console script
        is pip's, pointed at the venv's Python."""
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        python = venv / "bin" / "python"
        site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                    "print(sysconfig.get_path('purelib'))"], check=True,
                                   capture_output=True, text=True).stdout.strip())
        # Built from a copy of what the package is made of: an in-tree build would leave
        # build/ in the checkout and could ship files deleted since.
        source = venv / "source"
        source.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md", "engine", "schema"):
            if (REPO / name).is_dir():
                shutil.copytree(REPO / name, source / name,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(REPO / name, source / name)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                        "--target", str(site), str(source)], check=True,
                       env={**base_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                            "PIP_ROOT_USER_ACTION": "ignore"})
        (site / "bench-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
        script = venv / "bin" / "recipe"
        script.write_text(_SCRIPT.format(python=python))
        script.chmod(0o755)
        return script

    def _run(self, *args: str | Path) -> str:
        return output([*self.argv, *map(str, args)], REPO, self.env)

    def realise(self, plan: Path, store: Path, served: bool = False) -> Sample:
        """The timed command: ``recipe realise PLAN --store DIR -j N``; ``served``: by the
        native client and the server (``served``)."""
        argv = ["realise", str(plan), "--store", str(store), "-j", str(self.jobs)]
        return self.served(argv, plan.parent) if served else \
            timed([*self.argv, *argv], plan.parent, self.env)

    def served(self, argv: list[str], cwd: Path) -> Sample:
        """``recipe ARGV`` by the native client and the running server: wall time, and the CPU
        time of all the command took: the client's, the server's child's with what it waited
        for (the compilers), from the server's ledger (``recipe server status --json``; the
        kernel reaps the server's children, so no rusage the bench can read holds them), and
        the server's own. The client must not have started Python (``check_served``)."""
        server = self.server_pid()
        commands, cpu = self.served_stats()
        _spare_waits(server)  # the status request took the spare: the next one is forked
        own = _process_cpu(server)
        sample = timed([*self.client, *argv], cwd, self.served_env)
        # The server's own: it forked the next spare when this command's took it (read now,
        # before the status requests below make it fork more)
        own = _process_cpu(server) - own
        check_served(sample)
        # The child writes its caches after the caller heard the exit code: wait for its end.
        deadline = time.monotonic() + 60
        while (stats := self.served_stats())[0] <= commands:
            if time.monotonic() > deadline:
                raise BenchError(f"the server's command {' '.join(argv)} did not end")
            time.sleep(0.02)
        return Sample(sample.seconds, sample.cpu + stats[1] - cpu + own, client=sample.cpu)

    def served_stats(self) -> tuple[int, float]:
        """``recipe server status --json``: the commands served and their CPU seconds."""
        status = json.loads(output([*self.argv, "server", "status", "--json"], REPO,
                                   self.served_env))
        if not status.get("running") or "commands" not in status:
            raise BenchError("the recipe server is not running, or says nothing of its "
                             "commands")
        return int(status["commands"]), float(status["cpu_seconds"])

    def instructions(self, plan: Path, store: Path, out: Path) -> int | None:
        """Instructions recipe's own process executes in ``recipe realise`` (valgrind's
        callgrind, children not traced: the compilers are not counted), or None without
        valgrind. Repeatable on a busy machine, where wall clocks are not."""
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            return None
        err = output([valgrind, "--tool=callgrind", "--trace-children=no",
                      f"--callgrind-out-file={out}", str(self.python), str(self.script),
                      "realise", str(plan), "--store", str(store), "-j", str(self.jobs)],
                     plan.parent, self.env, stream="stderr")
        found = re.search(r"Collected : (\d+)", err)
        return int(found.group(1)) if found else None

    def show(self, plan: Path, store: Path) -> list[dict]:
        """``recipe show --json``: each derivation, its store path and whether it is valid."""
        return json.loads(self._run("show", plan, "--store", store, "--json"))

    def path(self, plan: Path, store: Path) -> tuple[str, bool]:
        """The store path of the plan's only derivation (default target), and whether it is
        valid."""
        (drv,) = self.show(plan, store)
        return drv["path"], drv["valid"]

    def compiler(self, plan: Path, store: Path) -> str:
        return self.show(plan, store)[0]["derivation"]["toolchain"]["cc"]

    def compiled(self, store: Path, path: str) -> list[str]:
        """The sources a path's build really compiled (its build log; cache hits say
        ``# cached``)."""
        log = self._run("store", "log", path, "--store", store)
        return sorted(m.group(1) for line in log.splitlines() if line.startswith("$ ")
                      for m in [_COMPILED.search(line)] if m)

    def drop_outputs(self, plan: Path, store: Path) -> None:
        """Delete the plan's realised paths but keep the action cache: a root on the ``keep``
        target (the same spec, so the same actions, all cache hits) keeps the action results
        and blobs of the current sources; then the realise roots go and ``store gc`` deletes
        the paths (and the results only earlier, edited versions used)."""
        self._run("realise", plan, "-t", "keep", "--root", "bench-keep", "--store", store,
                  "-j", str(self.jobs))
        self._run("store", "roots", "--remove", f"realise:{plan}", "--store", store)
        self._run("store", "gc", "--store", store)


def _spare_waits(server: int, patience: float = 1.0) -> None:
    """Until the server's spare child waits for a command with its pages copied (one thread,
    asleep in its wait for a caller), or ``patience`` seconds: a command sent the moment after
    another (the status request) would find a spare still being forked or copying, which a
    user's rarely does. The child that answered the status request may still be exiting (one
    thread, asleep elsewhere): only a child asleep in ``select`` is the spare."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
        except OSError:
            return
        for child in children:
            try:
                status = Path(f"/proc/{child}/status").read_text()
                waits = Path(f"/proc/{child}/wchan").read_text()
            except OSError:
                continue
            # A kernel that hides wait channels says "0": then one thread asleep must do.
            if "\nState:\tS" in status and "\nThreads:\t1\n" in status and (waits == "0" or \
                    waits.startswith(("poll_schedule_timeout", "do_select"))):
                return
        time.sleep(0.005)


def _process_cpu(pid: int) -> float:
    """A process's own user and system seconds (``/proc/PID/stat``: utime, stime): the
    server's, which forks the child that takes each command."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Make:
    """``make -j N`` in ``folder``; ``ccache``: through ``ccache`` with its own cache folder."""

    def __init__(self, folder: Path, cc: str, jobs: int, ccache_dir: Path | None = None) -> None:
        self.folder, self.jobs, self.ccache_dir = folder, jobs, ccache_dir
        self.env = base_env()
        if ccache_dir is not None:
            self.env["CCACHE_DIR"] = str(ccache_dir)
            config = ccache_dir.parent / f"{ccache_dir.name}.conf"  # empty: defaults only
            config.touch()
            self.env["CCACHE_CONFIGPATH"] = str(config)
        self.cc = f"CC=ccache {cc}" if ccache_dir is not None else f"CC={cc}"

    def build(self) -> Sample:
        """The timed command: ``make -j N``."""
        return timed(["make", f"-j{self.jobs}", self.cc], self.folder, self.env)

    def untimed(self, *args: str) -> str:
        return output(["make", self.cc, *args], self.folder, self.env)

    def pending(self) -> list[str]:
        """The sources the next ``make`` would compile (``make -n``)."""
        return sorted(m.group(1) for m in _COMPILED.finditer(self.untimed("-n")))

    def up_to_date(self) -> bool:
        """``make -q``: nothing left to do."""
        return subprocess.run(["make", "-q", self.cc], cwd=self.folder, env=self.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              ).returncode == 0

    def ccache_stats(self) -> dict[str, int]:
        text = output(["ccache", "--print-stats"], self.folder, self.env)
        return {k: int(v) for k, v in (line.split("\t") for line in text.splitlines()
                                       if "\t" in line) if v.isdigit()}

    def ccache_zero(self) -> None:
        output(["ccache", "--zero-stats"], self.folder, self.env)
