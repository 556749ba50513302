"""Where missed actions run when not here: a Dask distributed cluster (``dask``), each task
running ``worker.run_task`` on a worker. An executor is reached through the action cache's
``execute`` (``engine.build.cache``), so the builder never knows an action ran elsewhere.

``parse`` checks ``--executor dask://HOST:PORT`` (or ``$RECIPE_EXECUTOR``) before anything runs,
without importing Dask.
"""

from __future__ import annotations

import re

from engine.errors import UsageError

_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")


class ExecutorConfigError(UsageError):
    """The executor's address cannot be used (exit 2, before anything runs)."""


def parse(url: str, where: str = "--executor") -> str:
    """The scheduler's address for Dask (``tcp://HOST:PORT``) from ``dask://HOST:PORT``."""
    fix = "write it as dask://HOST:PORT (the address 'dask scheduler' prints, tcp:// -> dask://)"
    if not url.isprintable() or " " in url:
        raise ExecutorConfigError(f"{where} {url!r} is not an address", fix)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ExecutorConfigError(f"{where} {url} is not an address", fix)
    if scheme != "dask":
        raise ExecutorConfigError(f"{where} {url}: the scheme '{scheme}' is not supported",
                                  "recipe runs actions on a Dask distributed cluster: " + fix)
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not _HOST.fullmatch(host) or not port.isdigit() or \
            not 0 < int(port) < 65536:
        raise ExecutorConfigError(f"{where} {url} has no usable host and port", fix)
    return f"tcp://{host}:{int(port)}"
