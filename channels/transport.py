"""How channel clients POST: the ``Poster`` interface, one implementation over an aiohttp
session, and a lean HTTP/1.1 keep-alive client for the per-message hot paths (WeChat template
send, Alipay gateway), where a general client's per-request CPU exceeds the message budget.

The lean client speaks only what those APIs need: ``POST`` with a ready body, ``Content-Length`` or
``chunked`` replies, keep-alive connections reused from a pool, TLS for ``https``, and batches
spread over a few connections (``Http1Pool.pipeline``). HTTP/1.1 pipelining (one write per
connection, not per request) is widely broken in proxies and load balancers, so it is used only
for an origin configured to allow it (``pipelining_allowed``: on for the local simulators, off by
default for real provider URLs); otherwise each connection carries one request at a time.
Anything unusual in a reply (no length, ``Connection: close``) closes that connection; the caller's
request still completes. Errors are ``OSError`` (connect, reset) and ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

import aiohttp


class Poster(Protocol):
    async def post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """POST ``body`` to ``url``; (HTTP status, reply body). Raises ``OSError`` /
        ``aiohttp.ClientError`` when unreachable and ``TimeoutError`` on timeout."""
        ...


class SessionPoster:
    """``Poster`` over a shared aiohttp session (general purpose)."""

    def __init__(self, session: aiohttp.ClientSession, *, timeout_s: float = 10.0) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        async with self._session.post(url, data=body, timeout=self._timeout,
                                      headers={"Content-Type": content_type}) as resp:
            return resp.status, await resp.read()


# Matched against the lower-cased head.
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close")
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[ \t]*chunked")

Reply = tuple[int, bytes]


class _Connection(asyncio.Protocol):
    """One connection; one request, or one pipelined run of requests, in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.replies: list[Reply] = []
        self.expected = 0
        self.closed = False
        self.reusable = True
        self.announced_close = False  # a reply said the server reads nothing more
        self.got_data = False
        self.timer: asyncio.TimerHandle | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by the server"))

    def send(self, data: bytes, count: int, waiter: asyncio.Future[None]) -> None:
        """Write ``count`` requests (already joined); ``waiter`` completes with all replies."""
        assert self.transport is not None
        self.waiter = waiter
        self.replies = []
        self.expected = count
        self.got_data = False
        self._buffer.clear()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        self._buffer += data
        if self.waiter is None or self.waiter.done():
            return
        while len(self.replies) < self.expected:
            parsed = self._parse()
            if parsed is None:
                return
            self.replies.append(parsed)
        if self._buffer:
            self.reusable = False  # more than was asked for: the connection is out of step
        self.waiter.set_result(None)

    def _parse(self) -> Reply | None:
        """The first complete reply in the buffer, consumed; None until one is complete."""
        buf = self._buffer
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        # Substring searches over the lower-cased head cost less than splitting it into a
        # dict; a regular expression only confirms the rare ``close`` and ``chunked``.
        head = bytes(buf[:head_end + 2]).lower()
        status = int(head[9:12])
        if (b"close" in head and _CLOSE.search(head)) or head.startswith(b"http/1.0"):
            self.reusable = False
            self.announced_close = True
        start = head_end + 4
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            end = start + int(head[at + 17:head.index(b"\r\n", at + 17)])  # int() skips blanks
            if len(buf) < end:
                return None
            body = bytes(buf[start:end])
            del buf[:end]
            return status, body
        if b"chunked" in head and _CHUNKED.search(head):
            chunks, pos = bytearray(), start
            while True:
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
                if len(buf) < line_end + 2 + size + 2:
                    return None
                if size == 0:
                    del buf[:line_end + 4]
                    return status, bytes(chunks)
                chunks += buf[line_end + 2:line_end + 2 + size]
                pos = line_end + 2 + size + 2
        self.reusable = False  # body runs to the end of the connection: not supported
        buf.clear()
        return status, b""


def _watch(conn: _Connection, timeout_s: float, seen: int) -> None:
    """Timeout per reply: re-armed while replies keep coming, else the run expires."""
    waiter = conn.waiter
    if waiter is None or waiter.done():
        return
    if len(conn.replies) > seen:
        loop = waiter.get_loop()
        conn.timer = loop.call_later(timeout_s, _watch, conn, timeout_s, len(conn.replies))
    else:
        waiter.set_exception(TimeoutError("no reply within the timeout"))


@dataclass(frozen=True, slots=True)
class RequestFrame:
    """The constant head of ``POST``s to one origin with one content type and a common target
    prefix, laid out once, so a hot path frames a request with one join."""

    start: bytes  # b"POST <target prefix>"
    middle: bytes  # b" HTTP/1.1\r\nHost: ...\r\nContent-Type: ...\r\nContent-Length: "

    def build(self, target_rest: bytes, body: bytes) -> bytes:
        """The whole request: ``target_rest`` completes the target (path and query)."""
        return b"".join((self.start, target_rest, self.middle, b"%d\r\n\r\n" % len(body),
                         body))


class Http1Pool:
    """Keep-alive connections to one origin (``scheme://host:port``)."""

    def __init__(self, origin: str, *, size: int = 64, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, pipelining: bool = False) -> None:
        parts = urlsplit(origin)
        self.pipelining = pipelining
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) origin, got {origin!r}")
        self._host = parts.hostname
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        default_port = self._port == (443 if self._tls else 80)
        self._host_header = (self._host if default_port else f"{self._host}:{self._port}"
                             ).encode()
        self._idle: deque[_Connection] = deque()
        self._slots = asyncio.Semaphore(size)
        self._timeout_s = timeout_s
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self._host, self._port,
                                                   ssl=self._ssl)
        return protocol

    def frame(self, target: str, content_type: str) -> RequestFrame:
        """The constant bytes of ``POST``s whose target starts with ``target``."""
        return RequestFrame(
            start=b"POST " + target.encode(),
            middle=b"".join((b" HTTP/1.1\r\nHost: ", self._host_header, b"\r\nContent-Type: ",
                             content_type.encode(), b"\r\nContent-Length: ")))

    async def request(self, target: str, body: bytes, content_type: str) -> Reply:
        """``POST target`` (path and query) with ``body``; (status, reply body)."""
        reply = (await self._run([self.frame(target, content_type).build(b"", body)]))[0]
        if isinstance(reply, BaseException):
            raise reply
        return reply

    async def request_many(self, requests: Sequence[tuple[str, bytes]], content_type: str, *,
                           connections: int) -> list[Reply | Exception]:
        """``POST`` each ``(target, body)``, pipelined (see ``pipeline``)."""
        frame = self.frame("", content_type)
        return await self.pipeline([frame.build(target.encode(), body)
                                    for target, body in requests], connections=connections)

    async def pipeline(self, datas: Sequence[bytes], *, connections: int
                       ) -> list[Reply | Exception]:
        """Send each framed request (``RequestFrame.build``) over at most ``connections``
        keep-alive connections: pipelined when the pool allows it (one write and a few reads
        per connection instead of per request, most of the per-request CPU), else one request
        at a time on each. One result per request, in order: (status, body), or the
        ``OSError`` / ``TimeoutError`` that request met."""
        count = len(datas)
        lanes = max(1, min(connections, count))
        step, extra = divmod(count, lanes)
        runs, at = [], 0
        for lane in range(lanes):
            size = step + (lane < extra)
            runs.append(list(datas[at:at + size]))
            at += size
        out: list[Reply | Exception] = []
        for part in await asyncio.gather(*(self._lane(run) for run in runs)):
            out += part
        return out

    async def _lane(self, datas: list[bytes]) -> list[Reply | Exception]:
        if self.pipelining:
            return await self._run(datas)
        out: list[Reply | Exception] = []
        for data in datas:
            out += await self._run([data])
        return out

    async def _run(self, datas: list[bytes]) -> list[Reply | Exception]:
        """Send ``datas`` pipelined on one connection; a connection the server had closed, or
        closed after announcing it, gets the unanswered rest resent on a new one."""
        results: list[Reply | Exception] = []
        async with self._slots:
            loop = asyncio.get_running_loop()
            attempt = 0
            while True:
                conn = None
                while self._idle:
                    candidate = self._idle.pop()
                    if not candidate.closed:
                        conn = candidate
                        break
                reused = conn is not None
                if conn is None:
                    try:
                        conn = await asyncio.wait_for(self._connect(), self._timeout_s)
                    except (OSError, TimeoutError) as exc:
                        return results + [exc] * len(datas)
                waiter: asyncio.Future[None] = loop.create_future()
                conn.send(datas[0] if len(datas) == 1 else b"".join(datas), len(datas),
                          waiter)
                conn.timer = loop.call_later(self._timeout_s, _watch, conn, self._timeout_s, 0)
                error: Exception | None = None
                try:
                    await waiter
                except (ConnectionResetError, TimeoutError) as exc:
                    error = exc
                except BaseException:
                    conn.waiter = None
                    if conn.transport is not None:
                        conn.transport.close()
                    raise
                finally:
                    if conn.timer is not None:
                        conn.timer.cancel()
                conn.waiter = None
                got = conn.replies
                results += got
                if error is None and conn.reusable and not conn.closed:
                    self._idle.append(conn)
                elif conn.transport is not None:
                    conn.transport.close()
                if error is None:
                    return results
                datas = datas[len(got):]
                # Nothing of what remains was read by the server: a kept-alive connection it
                # had already closed, or one it closed after saying so in a reply.
                unread = isinstance(error, ConnectionResetError) and (
                    (conn.announced_close and bool(got))
                    or (reused and not conn.got_data and attempt == 0))
                attempt += 1
                if not unread:
                    return results + [error] * len(datas)

    def close(self) -> None:
        """Close the idle connections (in-flight ones close when their request ends)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()


_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def pipelining_allowed(url: str, mode: str = "auto") -> bool:
    """Whether requests to ``url`` may be pipelined: ``on``, ``off``, or ``auto`` (on for a
    loopback host, where the local simulators run; off for anything else)."""
    if mode in ("on", "off"):
        return mode == "on"
    return urlsplit(url).hostname in _LOOPBACK


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class LeanPoster:
    """``Poster`` over ``Http1Pool``s, one per origin, created on first use; ``pipelined``
    names the origins (``scheme://host:port``) configured to allow pipelining."""

    def __init__(self, *, size: int = 64, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None,
                 pipelined: frozenset[str] = frozenset()) -> None:
        self._pipelined = pipelined
        self._pools: dict[str, Http1Pool] = {}
        self._size = size
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    def pool(self, url: str) -> tuple[Http1Pool, str]:
        """(the pool for ``url``'s origin, ``url``'s target: path and query)."""
        scheme_end = url.find("://") + 3
        path_start = url.find("/", scheme_end)
        if path_start < 0:
            origin, target = url, "/"
        else:
            origin, target = url[:path_start], url[path_start:]
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Http1Pool(origin, size=self._size,
                                                   timeout_s=self._timeout_s,
                                                   ssl_context=self._ssl_context,
                                                   pipelining=origin in self._pipelined)
        return pool, target

    async def post(self, url: str, body: bytes, content_type: str) -> Reply:
        pool, target = self.pool(url)
        return await pool.request(target, body, content_type)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
