"""How channel clients POST: the ``Poster`` interface, one implementation over an aiohttp
session, and a lean HTTP/1.1 keep-alive client for the per-message hot paths (WeChat template
send, Alipay gateway), where a general client's per-request CPU exceeds the message budget.

The lean client speaks only what those APIs need: ``POST`` with a ready body, ``Content-Length`` or
``chunked`` replies, keep-alive connections reused from a pool, TLS for ``https``. Anything
unusual in a reply (no length, ``Connection: close``) closes that connection; the caller's
request still completes. Errors are ``OSError`` (connect, reset) and ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
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


_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[ \t]*chunked", re.IGNORECASE)


class _Connection(asyncio.Protocol):
    """One connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False
        self.reusable = True
        self.got_data = False
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection closed by the server"))

    def send(self, data: bytes, waiter: asyncio.Future[tuple[int, bytes]]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.got_data = False
        self._buffer.clear()
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.got_data = True
        self._buffer += data
        if self.waiter is None or self.waiter.done():
            return
        parsed = self._parse()
        if parsed is not None:
            self.waiter.set_result(parsed)

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        # Three regular expressions over the head cost less than splitting it into a dict.
        head = bytes(buf[:head_end + 2])
        status = int(head[9:12])
        if _CLOSE.search(head) or head.startswith(b"HTTP/1.0"):
            self.reusable = False
        start = head_end + 4
        length = _LENGTH.search(head)
        if length is not None:
            end = start + int(length.group(1))
            if len(buf) < end:
                return None
            if len(buf) > end:
                self.reusable = False
            return status, bytes(buf[start:end])
        if _CHUNKED.search(head):
            body, pos = bytearray(), start
            while True:
                line_end = buf.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                size = int(bytes(buf[pos:line_end]).split(b";")[0], 16)
                if len(buf) < line_end + 2 + size + 2:
                    return None
                if size == 0:
                    return status, bytes(body)
                body += buf[line_end + 2:line_end + 2 + size]
                pos = line_end + 2 + size + 2
        self.reusable = False  # body runs to the end of the connection: not supported
        return status, b""


class Http1Pool:
    """Keep-alive connections to one origin (``scheme://host:port``)."""

    def __init__(self, origin: str, *, size: int = 64, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(origin)
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

    async def request(self, target: str, body: bytes, content_type: str) -> tuple[int, bytes]:
        """``POST target`` (path and query) with ``body``; (status, reply body)."""
        data = b"".join((
            b"POST ", target.encode(), b" HTTP/1.1\r\nHost: ", self._host_header,
            b"\r\nContent-Type: ", content_type.encode(), b"\r\nContent-Length: ",
            str(len(body)).encode(), b"\r\n\r\n", body))
        loop = asyncio.get_running_loop()
        async with self._slots:
            for attempt in range(2):
                conn = None
                while self._idle:
                    candidate = self._idle.pop()
                    if not candidate.closed:
                        conn = candidate
                        break
                reused = conn is not None
                if conn is None:
                    conn = await asyncio.wait_for(self._connect(), self._timeout_s)
                waiter: asyncio.Future[tuple[int, bytes]] = loop.create_future()
                timer = loop.call_later(self._timeout_s, _expire, waiter)
                conn.send(data, waiter)
                try:
                    result = await waiter
                except ConnectionResetError:
                    conn.waiter = None
                    # A kept-alive connection the server had already closed: nothing of this
                    # request was processed, so it goes once more on a new connection.
                    if reused and attempt == 0 and not conn.got_data:
                        continue
                    raise
                except BaseException:
                    conn.waiter = None
                    if conn.transport is not None:
                        conn.transport.close()
                    raise
                finally:
                    timer.cancel()
                conn.waiter = None
                if conn.reusable and not conn.closed:
                    self._idle.append(conn)
                elif conn.transport is not None:
                    conn.transport.close()
                return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections (in-flight ones close when their request ends)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()


def _expire(waiter: asyncio.Future[tuple[int, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("no reply within the timeout"))


class LeanPoster:
    """``Poster`` over ``Http1Pool``s, one per origin, created on first use."""

    def __init__(self, *, size: int = 64, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._pools: dict[str, Http1Pool] = {}
        self._size = size
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    async def post(self, url: str, body: bytes, content_type: str) -> tuple[int, bytes]:
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
                                                   ssl_context=self._ssl_context)
        return await pool.request(target, body, content_type)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
