"""The HTTP client of the shared cache against misbehaving servers on 127.0.0.1 (real sockets,
real threads): garbage, silence, 5xx, a blob that is not what its name says. Each is a miss and
one warning; nothing raises."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine.remote.config import parse
from engine.remote.http import HttpCache


@contextmanager
def server(answer: Callable[[socket.socket, bytes], None]) -> Iterator[str]:
    """A one-thread server on 127.0.0.1 that reads a request and calls ``answer``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    requests: list[bytes] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    request = conn.recv(65536)
                    requests.append(request)
                    answer(conn, request)
                except OSError:
                    pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def client(url: str, **timeouts: float) -> tuple[HttpCache, list[str]]:
    said: list[str] = []
    return HttpCache(parse(url), said.append, **timeouts), said


def test_garbage_instead_of_http_is_a_miss_and_turns_the_remote_off() -> None:
    with server(lambda conn, _req: conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")) as url:
        cache, said = client(url)
        assert cache.get_entry("a" * 64) is None
        assert cache.get_blob("b" * 64) is None  # not even asked: the remote is off
    assert cache.down and len(said) == 1 and "not an HTTP answer" in said[0]


def test_a_silent_server_times_out() -> None:
    with server(lambda conn, _req: time.sleep(2)) as url:
        cache, said = client(url, read_timeout=0.3)
        started = time.monotonic()
        assert cache.get_entry("a" * 64) is None
        assert time.monotonic() - started < 1.5
    assert said and "timed out" in said[0]


def test_a_5xx_is_a_miss_for_that_request_only() -> None:
    def answer(conn: socket.socket, request: bytes) -> None:
        if request.startswith(b"GET /ac/"):
            conn.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with server(answer) as url:
        cache, said = client(url)
        assert cache.get_entry("a" * 64) is None
        assert cache.get_blob(hashlib.sha256(b"ok").hexdigest()) == b"ok"
        assert cache.get_entry("a" * 64) is None
    assert not cache.down and said == [f"remote cache {url}: GET /ac/{'a' * 64} failed (503 "
                                       "Busy); going on with the local cache and builds"]


def test_a_blob_that_is_not_its_digest_is_rejected() -> None:
    body = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nevil"
    with server(lambda conn, _req: conn.sendall(body)) as url:
        cache, said = client(url)
        assert cache.get_blob(hashlib.sha256(b"good").hexdigest()) is None
        assert cache.get_blob(hashlib.sha256(b"evil").hexdigest(), size=3) is None  # too long
        assert cache.get_blob(hashlib.sha256(b"evil").hexdigest()) == b"evil"
    assert cache.stats["rejected"] == 1 and len(said) == 1 and "does not match" in said[0]


def test_connections_are_reused() -> None:
    seen: list[int] = []

    def answer(conn: socket.socket, request: bytes) -> None:
        seen.append(1)
        for _ in range(3):  # three requests on one connection
            conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            if _ < 2:
                conn.recv(65536)

    with server(answer) as url:
        cache, said = client(url)
        assert [cache.get_entry(c * 64) for c in "abc"] == [None, None, None]
    assert seen == [1] and said == []


def test_a_paths_blobs_survive_a_server_that_closes_after_each_answer() -> None:
    blobs = {hashlib.sha256(b"blob %d" % i).hexdigest(): b"blob %d" % i for i in range(5)}
    requests: list[bytes] = []

    def answer(conn: socket.socket, request: bytes) -> None:
        requests.append(request)
        digest = request.split(b" ", 2)[1].decode().rsplit("/", 1)[1]
        data = blobs[digest]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (len(data), data))

    with server(answer) as url:
        cache, said = client(url)
        wanted = [(d, len(b)) for d, b in blobs.items()]
        assert list(cache.iter_blobs(wanted)) == list(blobs.values())  # in order, each checked
    assert said == [] and not cache.down
    assert sorted(r.count(b"GET /cas/") for r in requests) == [1] * 5  # one a connection


def test_chunked_and_until_closed_bodies_are_read() -> None:
    bodies = iter([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\n",
                   b"HTTP/1.0 200 OK\r\n\r\nabcde"])
    with server(lambda conn, _req: conn.sendall(next(bodies))) as url:
        cache, said = client(url)
        digest = hashlib.sha256(b"abcde").hexdigest()
        assert cache.get_blob(digest) == b"abcde"
        assert cache.get_blob(digest, 5) == b"abcde"
    assert said == [] and not cache.down


def test_an_interim_answer_is_skipped() -> None:
    body = (b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    with server(lambda conn, _req: conn.sendall(body)) as url:
        cache, said = client(url)
        assert cache.get_blob(hashlib.sha256(b"ok").hexdigest()) == b"ok"
    assert said == []
