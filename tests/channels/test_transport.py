"""The lean HTTP/1.1 client against a real aiohttp server: keep-alive reuse, chunked replies,
servers closing idle connections, ``Connection: close`` and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from channels.transport import Http1Pool, LeanPoster
from tests.channels.support import run

PEERS = web.AppKey("peers", set)


async def echo(request: web.Request) -> web.Response:
    request.app[PEERS].add(request.transport.get_extra_info("peername") if request.transport
                           else None)
    body = await request.read()
    return web.Response(body=b"echo:" + body + request.path_qs.encode())


async def chunked(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse()
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for part in (b"{\"a\":", b"1}"):
        await resp.write(part)
    await resp.write_eof()
    return resp


async def closing(request: web.Request) -> web.Response:
    return web.Response(text="bye", headers={"Connection": "close"})


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1)
    return web.Response(text="late")


@asynccontextmanager
async def server(keepalive_timeout: float = 75.0) -> AsyncIterator[str]:
    app = web.Application()
    app[PEERS] = set()
    app.router.add_post("/echo", echo)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/closing", closing)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_keep_alive_reuses_one_connection_and_reads_bodies() -> None:
    async def scenario() -> None:
        async with server() as url:
            pool = Http1Pool(url, size=1)
            for i in range(5):
                status, body = await pool.request(f"/echo?i={i}", "券".encode() * 3,
                                                  "text/plain")
                assert (status, body) == (200, b"echo:" + "券".encode() * 3 + f"/echo?i={i}"
                                          .encode())
            assert await pool.request("/chunked", b"", "text/plain") == (200, b'{"a":1}')
            assert await pool.request("/closing", b"", "text/plain") == (200, b"bye")
            assert (await pool.request("/missing", b"", "text/plain"))[0] == 404
            pool.close()
    run(scenario)


def test_idle_connection_closed_by_server_is_replaced() -> None:
    async def scenario() -> None:
        async with server(keepalive_timeout=0.1) as url:
            poster = LeanPoster(size=2)
            assert (await poster.post(url + "/echo", b"1", "text/plain"))[0] == 200
            await asyncio.sleep(0.3)  # the server drops the idle keep-alive connection
            assert (await poster.post(url + "/echo", b"2", "text/plain"))[0] == 200
            poster.close()
    run(scenario)


def test_timeout_and_refused_connection() -> None:
    async def scenario() -> None:
        async with server() as url:
            pool = Http1Pool(url, timeout_s=0.2)
            with pytest.raises(TimeoutError):
                await pool.request("/slow", b"", "text/plain")
            assert (await pool.request("/echo", b"", "text/plain"))[0] == 200
        with pytest.raises(OSError):
            await Http1Pool(url).request("/echo", b"", "text/plain")
        with pytest.raises(ValueError):
            Http1Pool("ftp://example.cn")
    run(scenario)
