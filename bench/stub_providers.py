"""Minimal stand-ins for the provider APIs, for the engine-only flow benchmark.

    python -m bench.stub_providers --wechat-port P --sms-port P --alipay-port P

They answer the endpoints the channel clients call (WeChat token, template and mass send; Aliyun
SMS ``SendSms``, ``SendBatchSms`` and ``QuerySendDetails``; the Alipay gateway) with canned
success replies and check nothing, so what the benchmark measures is Quanpai's own cost rather
than the simulators' checking. They send no delivery receipts. Alipay replies are signed with
the development Alipay key the simulator uses (``channels.alipay_keys``), so the client's
standard signature verification runs and passes: a pool of replies is signed at start, since
signing each (~370 µs of RSA) would make the stand-in the bottleneck it is meant to remove.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys

from aiohttp import web

from channels.alipay import CASH, VOUCHER
from channels.alipay_keys import load_keys
from channels.alipay_signature import PrivateKey, signed_response
from infra.settings import load_settings

SIGNED_POOL = 256  # distinct signed Alipay replies per method, served in turn
JSON = "application/json"


def _json(text: str) -> web.Response:
    return web.Response(body=text.encode(), content_type=JSON, charset="utf-8")


class WeChatStub:
    """Token, template send and mass send: every call succeeds."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def token(self, request: web.Request) -> web.Response:
        await request.read()
        return _json('{"access_token":"stub-access-token","expires_in":7200}')

    async def template(self, request: web.Request) -> web.Response:
        await request.read()
        return _json(f'{{"errcode":0,"errmsg":"ok","msgid":{next(self._ids)}}}')

    async def mass(self, request: web.Request) -> web.Response:
        await request.read()
        return _json('{"errcode":0,"errmsg":"send job submission success",'
                     f'"msg_id":{next(self._ids)}}}')

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_get("/cgi-bin/token", self.token)
        app.router.add_post("/cgi-bin/stable_token", self.token)
        app.router.add_post("/cgi-bin/message/template/send", self.template)
        app.router.add_post("/cgi-bin/message/mass/send", self.mass)
        return app


class SmsStub:
    """Aliyun SMS RPC: sends answer ``OK`` with a new BizId; ``QuerySendDetails`` finds
    nothing (no send ever needs resolving against a stand-in that never times out)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def rpc(self, request: web.Request) -> web.Response:
        body = await request.read()
        if b"Action=QuerySendDetails" in body or \
                request.query.get("Action") == "QuerySendDetails":
            return _json('{"RequestId":"STUB","Code":"OK","Message":"OK","TotalCount":0,'
                         '"SmsSendDetailDTOs":{"SmsSendDetailDTO":[]}}')
        return _json(f'{{"RequestId":"STUB","Code":"OK","Message":"OK",'
                     f'"BizId":"{next(self._ids)}^0"}}')

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_route("GET", "/", self.rpc)
        app.router.add_route("POST", "/", self.rpc)
        return app


class AlipayStub:
    """The gateway: voucher send and cash trigger succeed, with replies signed by the
    development Alipay key."""

    def __init__(self, *, replies: dict[str, list[bytes]]) -> None:
        self._replies = {method: itertools.cycle(pool) for method, pool in replies.items()}

    @classmethod
    def signed_with(cls, key: PrivateKey) -> AlipayStub:
        voucher = [signed_response(VOUCHER, {"code": "10000", "msg": "Success",
                                             "voucher_id": f"stub{i}"}, key).encode()
                   for i in range(SIGNED_POOL)]
        cash = [signed_response(CASH, {"code": "10000", "msg": "Success",
                                       "trigger_result": "true", "repeat_trigger_flag": "false",
                                       "biz_no": f"stub{i}"}, key).encode()
                for i in range(SIGNED_POOL)]
        return cls(replies={VOUCHER: voucher, CASH: cash})

    async def gateway(self, request: web.Request) -> web.Response:
        await request.read()
        method = CASH if "cash.trigger" in request.query_string else VOUCHER
        return web.Response(body=next(self._replies[method]), content_type=JSON,
                            charset="utf-8")

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_route("GET", "/gateway.do", self.gateway)
        app.router.add_route("POST", "/gateway.do", self.gateway)
        return app


def build_apps(*, alipay_key: PrivateKey) -> dict[str, web.Application]:
    return {"wechat": WeChatStub().app(), "sms": SmsStub().app(),
            "alipay": AlipayStub.signed_with(alipay_key).app()}


async def serve(apps: dict[str, tuple[web.Application, int]], *, host: str,
                stop: asyncio.Event) -> None:
    runners = []
    try:
        for app, port in apps.values():
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        print("stub providers ready", flush=True)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stub_providers")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--wechat-port", type=int, required=True)
    parser.add_argument("--sms-port", type=int, required=True)
    parser.add_argument("--alipay-port", type=int, required=True)
    parser.add_argument("--callback-url", default="", help="accepted and unused: no receipts")
    args = parser.parse_args(argv)
    keys = load_keys(load_settings())
    assert keys.alipay_private is not None  # the development key, always loaded
    apps = build_apps(alipay_key=keys.alipay_private)
    ports = {"wechat": args.wechat_port, "sms": args.sms_port, "alipay": args.alipay_port}

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve({name: (app, ports[name]) for name, app in apps.items()}, host=args.host,
                    stop=stop)

    try:
        import uvloop
    except ImportError:  # uvloop is optional (not on every platform)
        asyncio.run(run())
    else:
        uvloop.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
