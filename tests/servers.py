"""Real servers for the tests of recipe past one machine, on 127.0.0.1 only.

``Nginx``: Debian's nginx as a Bazel HTTP remote cache (WebDAV PUT, as docs/remote.md
shows), started in the foreground (``daemon off;``, one process) with its configuration, pid
file, logs, temporary folders and data in a folder of the test's own, on a free port; stopped by
its pid. Never the system's nginx, never another address.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NGINX = "/usr/sbin/nginx"

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{
    # nginx's "combined" format, and the connection's serial number (which requests shared one)
    log_format recipe '$remote_addr - $remote_user [$time_local] "$request" $status '
                      '$body_bytes_sent "$http_referer" "$http_user_agent" c$connection';
    access_log {root}/access.log recipe;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    client_max_body_size 0;
    server {{
        listen 127.0.0.1:{port};
        root {root}/data;
        {auth}
        location /ac/ {{
            dav_methods PUT;
            create_full_put_path on;
            limit_except GET HEAD PUT {{ deny all; }}
        }}
        location /cas/ {{
            dav_methods PUT;
            create_full_put_path on;
            limit_except GET HEAD PUT {{ deny all; }}
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """``with Nginx(folder) as server:`` a cache at ``server.url`` whose files are in
    ``server.data`` (``ac/<key>``, ``cas/<sha256>``)."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self.data.mkdir(exist_ok=True)
        auth = "" if self.token is None else \
            f'if ($http_authorization != "Bearer {self.token}") {{ return 401; }}'
        conf = self.root / "nginx.conf"
        conf.write_text(_CONF.format(root=self.root, port=self.port, auth=auth))
        self.process = subprocess.Popen([NGINX, "-p", str(self.root), "-c", str(conf)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx did not start: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on 127.0.0.1:{self.port}: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def log(self) -> str:
        try:
            return (self.root / "error.log").read_text()[-2000:]
        except OSError:
            return ""

    def files(self, kind: str) -> list[Path]:
        folder = self.data / kind
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class DaskCluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes (no nanny: a worker killed
    stays dead), all on 127.0.0.1 with their dashboards on free ports of 127.0.0.1, each worker
    with its own store (``RECIPE_WORKER_STORE``) below ``root``. ``wrap`` may put a worker's
    command inside another (``unshare``); ``stop`` ends every process by its pid."""

    def __init__(self, root: Path, workers: int = 2) -> None:
        self.root = root
        self.port = 0  # the scheduler's, once started (``start``)
        self.address = self.url = ""
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.count = workers

    def start(self) -> DaskCluster:
        self.root.mkdir(parents=True, exist_ok=True)
        # Port 0, the one it bound read from its log: a free port chosen here and bound there
        # a moment later was once taken meanwhile (an ephemeral port of another connection).
        self.scheduler = self._spawn("scheduler", [
            sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
            "--port", "0", "--dashboard-address", "127.0.0.1:0"])
        self.port = _logged_port(self.scheduler, self.root / "scheduler.log")
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"dask://{self.address}"
        _wait_port(self.port, self.scheduler, self.root / "scheduler.log")
        for i in range(1, self.count + 1):
            self.add_worker(f"w{i}")
        return self

    def worker_argv(self, name: str) -> list[str]:
        return [sys.executable, "-m", "distributed.cli.dask_worker", f"tcp://{self.address}",
                "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0", "--nthreads", "1",
                "--no-nanny", "--name", name, "--death-timeout", "60"]

    def add_worker(self, name: str, wrap: list[str] | None = None) -> None:
        env = {**os.environ, "RECIPE_WORKER_STORE": str(self.root / f"store-{name}")}
        argv = (wrap or []) + self.worker_argv(name)
        self.workers[name] = self._spawn(name, argv, env)
        self.wait_workers(len(self.workers))

    def wait_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(f"tcp://{self.address}", timeout=20, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=timeout)

    def worker_addresses(self) -> dict[str, str]:
        """name -> address of each worker the scheduler knows."""
        from distributed import Client

        with Client(f"tcp://{self.address}", timeout=20, set_as_default=False) as client:
            return {w["name"]: a for a, w in client.scheduler_info()["workers"].items()}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - kept open by the child
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=env, cwd=self.root)
        finally:
            log.close()

    def kill(self, name: str) -> None:
        """``kill -9`` of one worker (or of the scheduler: ``"scheduler"``)."""
        process = self.scheduler if name == "scheduler" else self.workers[name]
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
        for process in [*self.workers.values(), self.scheduler]:
            if process is None:
                continue
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()

    def __enter__(self) -> DaskCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _logged_port(process: subprocess.Popen[bytes], log: Path) -> int:
    """The port a dask scheduler started with ``--port 0`` says it listens on."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"Scheduler at:\s+tcp://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"exited early: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"no address in its log: {log.read_text()[-2000:]}")


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited early: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}: {log.read_text()[-2000:]}")
