"""Typed routes over a real loopback server: auth before decoding, 422 naming the field,
bounded JSON depth, unknown fields refused, 503 for a store that is down, and the OpenAPI
document generated from the same models."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import aiohttp
import msgspec
from aiohttp import web
from msgspec import Meta

from infra.http_api import Route, add_routes, create_app, principal, respond
from infra.openapi import add_openapi
from infra.tokens import mint_bearer


class Item(msgspec.Struct, forbid_unknown_fields=True):
    sku: str
    quantity: Annotated[int, Meta(ge=1, le=100)]


class Order(msgspec.Struct, forbid_unknown_fields=True):
    lines: list[Item]
    note: Annotated[str, Meta(max_length=8)] = ""


class Total(msgspec.Struct):
    units: int
    by: str


class Down(Exception):
    pass


async def total(request: web.Request, body: Order) -> web.Response:
    return respond(Total(units=sum(x.quantity for x in body.lines),
                         by=principal(request).role), status=201)


async def broken(request: web.Request) -> web.Response:
    raise Down("connection refused")


ROUTES = [
    Route("POST", "/v1/orders", total, "Count the units", ("cashier",), Order, {201: Total}),
    Route("GET", "/v1/down/{n}", broken, "Always down", ("cashier",),
          path_params={"n": Annotated[int, Meta(ge=1)]}),
]


def serve(scenario: Callable[[aiohttp.ClientSession, str], Awaitable[None]]) -> None:
    async def main() -> None:
        app = create_app(secret=b"k", unavailable=(Down,))
        add_routes(app, ROUTES)
        add_openapi(app, title="t", version="1", description="d")
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as session:
                await scenario(session, f"http://127.0.0.1:{port}")
        finally:
            await runner.cleanup()

    asyncio.run(main())


def _bearer(role: str) -> dict[str, str]:
    token = mint_bearer(secret=b"k", role=role, merchant_id="m",
                        store_id="S1" if role in ("cashier", "printer") else "",
                        member_id="M1" if role == "member" else "")
    return {"Authorization": f"Bearer {token}"}


async def _post(session: aiohttp.ClientSession, url: str, raw: bytes,
                headers: dict[str, str]) -> tuple[int, Any]:
    async with session.post(url, data=raw, headers={**headers, "Content-Type":
                                                    "application/json"}) as resp:
        return resp.status, await resp.json(content_type=None)


def test_typed_route_decodes_checks_and_names_fields() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        url = base + "/v1/orders"
        good = json.dumps({"lines": [{"sku": "A", "quantity": 2}]}).encode()
        assert (await _post(session, url, good, {}))[0] == 401
        assert (await _post(session, url, good, _bearer("member")))[0] == 403
        assert (await _post(session, url, good, _bearer("analyst")))[0] == 403
        status, body = await _post(session, url, good, _bearer("cashier"))
        assert status == 201 and body == {"units": 2, "by": "cashier"}
        cases = {
            b'{"lines": [{"sku": "A", "quantity": 101}]}': "lines[0].quantity",
            b'{"lines": [{"sku": "A", "quantity": 1e30}]}': "lines[0].quantity",
            b'{"lines": [{"sku": "A", "quantity": 1, "colour": "red"}]}': "lines[0].colour",
            b'{"lines": [], "extra": 1}': "extra",
            b'{"note": "x"}': "lines",
            b'{"lines": [], "note": "far too long"}': "note",
            b"[1, 2]": "body",
            b"not json": "body",
            b"": "body",
            b"[" * 100_000 + b"]" * 100_000: "body",
            b'{"lines": ' + b"[" * 40 + b"]" * 40 + b"}": "body",
        }
        for raw, field in cases.items():
            status, body = await _post(session, url, raw, _bearer("cashier"))
            assert status == 422 and body["field"] == field, (raw[:60], body)

    serve(scenario)


def test_store_down_is_503_and_path_params_are_validated() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        async with session.get(base + "/v1/down/3", headers=_bearer("cashier")) as resp:
            assert resp.status == 503 and (await resp.json())["error"] == "Unavailable"
        async with session.get(base + "/v1/down/zero", headers=_bearer("cashier")) as resp:
            assert resp.status == 422 and (await resp.json())["field"] == "n"

    serve(scenario)


def test_openapi_is_generated_from_the_models() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str) -> None:
        async with session.get(base + "/v1/openapi.json") as resp:
            doc = await resp.json()
        assert doc["openapi"].startswith("3.1")
        op = doc["paths"]["/v1/orders"]["post"]
        assert op["security"] == [{"bearer": []}] and "cashier" in op["description"]
        order = doc["components"]["schemas"]["Order"]
        assert order["required"] == ["lines"] and order["additionalProperties"] is False
        item = doc["components"]["schemas"]["Item"]
        assert item["properties"]["quantity"] == {"type": "integer", "minimum": 1,
                                                  "maximum": 100}
        assert op["responses"]["201"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Total"}
        assert op["responses"]["422"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"}
        param = doc["paths"]["/v1/down/{n}"]["get"]["parameters"][0]
        assert param["in"] == "path" and param["schema"]["minimum"] == 1

    serve(scenario)
