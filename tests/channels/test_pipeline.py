"""Pipelined batches over the lean HTTP/1.1 client (``request_many`` / ``pipeline``) against a
real aiohttp server, and the Alipay request text built from precomputed pieces, checked
against ``json.dumps`` and ``sign_content``."""

from __future__ import annotations

import asyncio
import json
from typing import cast
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import AlipayCashChannel, AlipayConfig, AlipayVoucherChannel
from channels.alipay_keys import AlipayKeys
from channels.alipay_signature import rsa2_sign, rsa2_verify, sign_content
from channels.aliyun_signature import percent_encode
from channels.transport import Http1Pool, LeanPoster, pipelining_allowed
from tests.channels.support import run
from tests.channels.test_transport import server


def test_pipelined_replies_come_back_in_order_over_few_connections() -> None:
    async def scenario() -> None:
        async with server() as url:
            pool = Http1Pool(url, size=8, pipelining=True)
            requests = [(f"/echo?i={i}", f"券{i}".encode()) for i in range(50)]
            replies = await pool.request_many(requests, "text/plain", connections=3)
            assert replies == [(200, b"echo:" + body + target.encode())
                               for target, body in requests]
            # chunked and 404 replies in the middle of a run keep the rest in step
            mixed = [("/echo?a", b"1"), ("/chunked", b""), ("/missing", b""), ("/echo?b", b"2")]
            got = await pool.request_many(mixed, "text/plain", connections=1)
            assert got[0] == (200, b"echo:1/echo?a") and got[1] == (200, b'{"a":1}')
            assert got[2][0] == 404 and got[3] == (200, b"echo:2/echo?b")  # type: ignore[index]
            pool.close()
    run(scenario)


def test_connection_close_mid_run_resends_only_the_unanswered_rest() -> None:
    async def scenario() -> None:
        async with server() as url:
            pool = Http1Pool(url, size=2, pipelining=True)
            requests = [("/echo?x=1", b"a"), ("/closing", b""), ("/echo?x=2", b"b"),
                        ("/echo?x=3", b"c")]
            replies = await pool.request_many(requests, "text/plain", connections=1)
            assert replies == [(200, b"echo:a/echo?x=1"), (200, b"bye"),
                               (200, b"echo:b/echo?x=2"), (200, b"echo:c/echo?x=3")]
            pool.close()
    run(scenario)


def test_pipelined_timeout_and_refused_connection_are_per_request_errors() -> None:
    async def scenario() -> None:
        async with server() as url:
            poster = LeanPoster(timeout_s=0.3, pipelined=frozenset({url}))
            pool, _ = poster.pool(url)
            replies = await pool.request_many(
                [("/echo", b"1"), ("/slow", b""), ("/echo", b"2")], "text/plain", connections=1)
            assert replies[0] == (200, b"echo:1/echo")
            assert isinstance(replies[1], TimeoutError) and isinstance(replies[2], TimeoutError)
            # the timed-out connection is dropped; the next run gets a fresh one
            assert await pool.request_many([("/echo", b"3")], "text/plain",
                                           connections=4) == [(200, b"echo:3/echo")]
            poster.close()
        refused = await LeanPoster().pool(url)[0].request_many([("/echo", b"x")] * 3,
                                                               "text/plain", connections=2)
        assert len(refused) == 3 and all(isinstance(r, OSError) for r in refused)
    run(scenario)


def test_idle_pipelined_connections_are_reused() -> None:
    async def scenario() -> None:
        async with server() as url:
            poster = LeanPoster(size=4, pipelined=frozenset({url}))
            for _ in range(3):
                pool, _ = poster.pool(url + "/echo")
                replies = await pool.request_many([("/echo", b"p")] * 20, "text/plain",
                                                  connections=4)
                assert replies == [(200, b"echo:p/echo")] * 20
            poster.close()
    run(scenario)


async def _most_in_flight(pool: Http1Pool) -> int:
    """The most requests one connection had written before the server answered any."""
    most = 0

    class Slow(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            nonlocal most
            self.buffer += data
            heads = self.buffer.count(b"POST ")
            most = max(most, heads)
            self.buffer = b""
            reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * heads
            asyncio.get_running_loop().call_later(0.02, self.transport.write, reply)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = Http1Pool(f"http://127.0.0.1:{port}", size=4, pipelining=pool.pipelining)
    replies = await probe.request_many([("/x", b"")] * 24, "text/plain", connections=2)
    assert replies == [(200, b"ok")] * 24
    probe.close()
    server.close()
    return most


def test_pipelining_only_where_allowed() -> None:
    async def scenario() -> None:
        assert await _most_in_flight(Http1Pool("http://127.0.0.1:1")) == 1
        assert await _most_in_flight(Http1Pool("http://127.0.0.1:1", pipelining=True)) > 1
    run(scenario)
    assert pipelining_allowed("http://127.0.0.1:18703/gateway.do")
    assert pipelining_allowed("http://localhost:18701")
    assert not pipelining_allowed("https://openapi.alipay.com/gateway.do")
    assert pipelining_allowed("https://openapi.alipay.com/gateway.do", "on")
    assert not pipelining_allowed("http://127.0.0.1:18703/gateway.do", "off")
    poster = LeanPoster(pipelined=frozenset({"http://127.0.0.1:18703"}))
    assert poster.pool("http://127.0.0.1:18703/gateway.do")[0].pipelining
    assert not poster.pool("https://api.weixin.qq.com/cgi-bin")[0].pipelining


def keys() -> AlipayKeys:
    app = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return AlipayKeys(app_private=app, alipay_public=app.public_key())


@pytest.mark.parametrize("notify_url", ["", "https://shop.example.cn/notify?a=1&b=券"])
def test_request_text_matches_json_dumps_and_sign_content(notify_url: str) -> None:
    k = keys()
    config = AlipayConfig(base_url="https://openapi.alipay.com/gateway.do", app_id="2021",
                          voucher_template_id="T1", crowd_no="CROWD", notify_url=notify_url)
    voucher = AlipayVoucherChannel(config=config, keys=k, session=None)  # type: ignore[arg-type]
    cash = AlipayCashChannel(config=config, keys=k, session=None)  # type: ignore[arg-type]
    samples: list[dict[str, object]] = [
        {"template_id": "T1", "out_biz_no": "c_m1", "user_id": "2088000000000001",
         "memo": "满100减20券"},
        {"a": 'quote " and \\ and\nnewline', "b": "é😀", "c": 5, "d": ""},
        {"open_id": "074a1Cc-x.y", "login_id": "user@example.cn"}, {}]
    for channel in (voucher, cash):
        for biz in samples * 2:  # the second pass reads the kept pieces
            url, body = channel.request(biz)
            text = json.dumps(biz, separators=(",", ":"))
            assert body == f"biz_content={percent_encode(text)}".encode()
            # the request's own timestamp: reading the clock again could cross a second
            stamp = parse_qs(urlsplit(url).query)["timestamp"][0]
            params = {**channel._fixed, "timestamp": stamp, "biz_content": text}
            sign = url.rsplit("&sign=", 1)[1].replace("%2B", "+").replace("%2F", "/") \
                .replace("%3D", "=")
            assert rsa2_verify(k.app_public, sign_content(params), sign)
            assert sign == rsa2_sign(k.app_private, sign_content(params))  # deterministic


def test_reply_verification_rejects_other_digests_and_keys() -> None:
    k, other = keys(), keys()
    sign = rsa2_sign(k.app_private, "payload")
    assert rsa2_verify(k.app_public, "payload", sign)
    assert rsa2_verify(k.app_public, b"payload", sign)
    assert not rsa2_verify(k.app_public, "payloaD", sign)
    assert not rsa2_verify(other.app_public, "payload", sign)
    assert not rsa2_verify(k.app_public, "payload", sign[:-4] + "AAA=")
    assert not rsa2_verify(k.app_public, "payload", "not base64!")
    assert not rsa2_verify(k.app_public, "payload", "")
