"""Real servers for the tests of recipe past one machine, on 127.0.0.1 only.

``Nginx``: Debian's nginx as a Bazel HTTP remote cache (WebDAV PUT, as README's "Sharing a cache"
shows), started in the foreground (``daemon off;``, one process) with its configuration, pid
file, logs, temporary folders and data in a folder of the test's own, on a free port; stopped by
its pid. Never the system's nginx, never another address.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
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
    access_log {root}/access.log;
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
