"""Bazel's HTTP remote-cache protocol, as a client: ``GET``/``HEAD``/``PUT`` of
``<prefix>/cas/<sha256 hex>`` (blobs) and ``<prefix>/ac/<action key hex>`` (serialised REAPI
``ActionResult`` messages). Any server of that protocol serves: nginx with WebDAV PUT,
bazel-remote, Bazel's own ``--remote_cache`` backends.

The server is not trusted: a blob is returned only when its sha256 is the one asked for. And it
is never needed: whatever goes wrong (refused, reset, timed out, 5xx, a body that is not HTTP) is
a miss. A failure of the connection itself, or a refusal of the credentials, turns the remote off
for the rest of the run (ccache does the same), so that a server that is down costs one connect
timeout, not one per action; a 5xx or a damaged body is a miss for that request only. The first
failure of a run is reported once, through ``warn``; none after it.

One keep-alive connection per thread (http.client's connections are not thread-safe); a request
on a reused connection that the server had closed meanwhile is tried once more on a new one.
``iter_blobs`` downloads many blobs at once on ``FETCHERS`` threads of its own, which live as
long as the cache does and so keep their connections from one store path to the next.
Timeouts: ``connect_timeout`` to open a connection, ``read_timeout`` for each read after it.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from engine.remote.config import RemoteConfig

#: The largest action-cache entry read: an ActionResult of a few outputs is under a kilobyte.
MAX_ENTRY = 16 << 20
#: Without a size to expect (an entry's digest always has one): the largest blob read.
MAX_BLOB = 4 << 30
#: The empty blob: always present, never asked for (REAPI's rule, which servers follow).
EMPTY = hashlib.sha256(b"").hexdigest()
#: Downloads of one ``iter_blobs`` at once; twice as many blobs may be held in memory.
FETCHERS = 4


class HttpCache:
    """The remote level of the cache; every method answers, none raises for the server's sake."""

    def __init__(self, config: RemoteConfig, warn: Callable[[str], None],
                 connect_timeout: float = 5.0, read_timeout: float = 30.0) -> None:
        self.config = config
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._warn = warn
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._fetchers: ThreadPoolExecutor | None = None
        self.down = False  # set on the first failure of the connection: no more requests
        self.warned = False
        self.stats = {"hits": 0, "misses": 0, "uploads": 0, "rejected": 0}

    # -- the protocol -----------------------------------------------------------------------

    def get_entry(self, key: str) -> bytes | None:
        """The bytes stored under ``/ac/<key>``, or None."""
        return self._get(f"ac/{key}", MAX_ENTRY)

    def get_blob(self, digest: str, size: int | None = None) -> bytes | None:
        """The blob whose sha256 is ``digest``, checked, or None (missing, or not that blob)."""
        if digest == EMPTY:
            return b""
        data = self._get(f"cas/{digest}", MAX_BLOB if size is None else size)
        if data is None:
            return None
        if hashlib.sha256(data).hexdigest() != digest or (size is not None and len(data) != size):
            with self._lock:
                self.stats["rejected"] += 1
            self.failed(f"blob {digest[:16]}… does not match its digest (rejected; built "
                        "locally instead)")
            return None
        return data

    def iter_blobs(self, wanted: list[tuple[str, int]]) -> Iterator[bytes | None]:
        """``get_blob(digest, size)`` of each, in order, downloaded ``FETCHERS`` at a time (a
        path's files: one round trip for several, not one each)."""
        if len(wanted) <= 1:
            yield from (self.get_blob(digest, size) for digest, size in wanted)
            return
        with self._lock:
            if self._fetchers is None:
                self._fetchers = ThreadPoolExecutor(FETCHERS, thread_name_prefix="fetch")
            pool = self._fetchers
        todo = iter(wanted)
        running: deque[Future[bytes | None]] = deque()
        try:
            for digest, size in todo:
                running.append(pool.submit(self.get_blob, digest, size))
                if len(running) >= 2 * FETCHERS:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:  # the caller stopped early: what has not started never will
            for future in running:
                future.cancel()

    def has_blob(self, digest: str) -> bool:
        if digest == EMPTY:
            return True
        status, _ = self._request("HEAD", f"cas/{digest}")
        return status == 200

    def put_blob(self, digest: str, data: bytes) -> bool:
        return self._put(f"cas/{digest}", data)

    def put_entry(self, key: str, data: bytes) -> bool:
        return self._put(f"ac/{key}", data)

    # -- requests -----------------------------------------------------------------------------

    def _get(self, path: str, limit: int) -> bytes | None:
        status, body = self._request("GET", path, limit=limit)
        with self._lock:
            self.stats["hits" if status == 200 else "misses"] += 1
        return body if status == 200 else None

    def _put(self, path: str, data: bytes) -> bool:
        status, _ = self._request("PUT", path, data)
        if status is not None and 200 <= status < 300:
            with self._lock:
                self.stats["uploads"] += 1
            return True
        return False

    def _request(self, method: str, path: str, body: bytes | None = None,
                 limit: int = MAX_ENTRY) -> tuple[int | None, bytes | None]:
        """(status, body) of one request; (None, None) when there was no answer."""
        if self.down:
            return None, None
        url = f"{self.config.prefix}/{path}"
        headers = {**self.config.headers, "Connection": "keep-alive"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        for attempt in (1, 2):
            reused = False
            try:
                conn, reused = self._connection()
                conn.request(method, url, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(limit + 1) if method == "GET" else response.read()
                if len(data) > limit:
                    self._drop()
                    self.failed(f"{method} /{path} answered more bytes than expected")
                    return None, None
                status = response.status
                if response.will_close:
                    self._drop()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as error:
                self._drop()
                if reused and attempt == 1:
                    continue  # a keep-alive connection the server closed meanwhile
                return self._down(error)
            except (OSError, http.client.HTTPException) as error:
                self._drop()
                return self._down(error)
        if status in (401, 403):
            self.down = True
            self.failed(f"{method} /{path} was refused ({status}): check the token or ~/.netrc")
            return None, None
        if status >= 500 or (body is not None and status >= 300):
            self.failed(f"{method} /{path} failed ({status} {response.reason})")
            return None, None
        return status, data

    def _down(self, error: BaseException) -> tuple[None, None]:
        self.down = True
        self.failed(f"unreachable ({_why(error)})")
        return None, None

    def failed(self, reason: str) -> None:
        """Report the first problem of the run; the later ones silently (they are misses)."""
        with self._lock:
            if self.warned:
                return
            self.warned = True
        self._warn(f"remote cache {self.config.url}: {reason}; going on with the local "
                   "cache and builds")

    # -- connections --------------------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        if self.config.https:
            conn = http.client.HTTPSConnection(self.config.host, self.config.port,
                                               timeout=self.connect_timeout,
                                               context=ssl.create_default_context())
        else:
            conn = _Connection(self.config.host, self.config.port, timeout=self.connect_timeout)
        conn.connect()  # may raise: the caller turns it into a miss
        conn.sock.settimeout(self.read_timeout)
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            fetchers, self._fetchers = self._fetchers, None
        if fetchers is not None:
            fetchers.shutdown(wait=True)
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()


class _Connection(http.client.HTTPConnection):
    """http.client's connection, whose socket is opened with the host as bytes: a str is
    encoded by the idna codec, whose import is ~5 M instructions of a fresh clone (config.py
    allows only ASCII host names and addresses). HTTPS keeps the str: ssl encodes the name it
    checks the certificate against itself."""

    def connect(self) -> None:
        self.sock = socket.create_connection((self.host.encode("ascii"), self.port),
                                             self.timeout, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as http.client does


def _why(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, http.client.HTTPException):
        return f"not an HTTP answer: {type(error).__name__}"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.splitlines()[0][:120]
