"""The lean HTTP/1.1 client against a real aiohttp server: keep-alive reuse, chunked replies,
servers closing idle connections, ``Connection: close`` and timeouts."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from channels.transport import Http1Pool, LeanPoster, _Connection
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


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_with_certificate_check(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)

    async def scenario() -> None:
        app = web.Application()
        app[PEERS] = set()
        app.router.add_post("/echo", echo)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            trusting = ssl.create_default_context(cafile=str(cert))
            poster = LeanPoster(ssl_context=trusting)
            status, body = await poster.post(f"https://127.0.0.1:{port}/echo", b"x",
                                              "text/plain")
            assert (status, body) == (200, b"echo:x/echo")
            poster.close()
            with pytest.raises(ssl.SSLError):  # default trust store: the certificate fails
                await LeanPoster().post(f"https://127.0.0.1:{port}/echo", b"x", "text/plain")
        finally:
            await runner.cleanup()
    run(scenario)


def test_reply_heads_are_read_whatever_their_case_and_however_they_arrive() -> None:
    """Header names in any case, blanks around values, replies split across reads."""
    async def scenario() -> None:
        conn = _Connection()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        conn.transport = _Sink()  # type: ignore[assignment]
        conn.send(b"", 3, waiter)
        stream = (b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  5 \r\n\r\nhello"
                  b"HTTP/1.1 404 Not Found\r\ncontent-length:0\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nConnection:  Close\r\n\r\n"
                  b"3\r\nabc\r\n0\r\n\r\n")
        for i in range(0, len(stream), 7):
            assert not waiter.done()
            conn.data_received(stream[i:i + 7])
        assert waiter.done()
        assert conn.replies == [(200, b"hello"), (404, b""), (200, b"abc")]
        assert conn.announced_close and not conn.reusable
    run(scenario)


class _Sink:
    def write(self, data: bytes) -> None:
        pass
