"""What every Quanpai HTTP app adds for its operators: ``GET /v1/ready`` (Redis and ClickHouse
answer), ``GET /metrics`` (Prometheus text) and a middleware that gives each request an id for
the logs and counts it per route and status.

``/v1/health`` says the process is alive (the catalog mounts it); ``/v1/ready`` says it can do
its work, so a load balancer takes an API process out of rotation while its stores are down.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from aiohttp import web

from infra.http_api import Route, add_routes, respond
from infra.logs import request_id
from infra.metrics import exposition, metrics

Check = Callable[[], Awaitable[Any]]  # raises when the dependency does not answer
READY_TIMEOUT_S = 2.0
REQUEST_ID = "X-Request-Id"


class ReadyOut(msgspec.Struct):
    """Each dependency: ``ok`` or what went wrong."""

    ready: bool
    checks: dict[str, str]


@web.middleware
async def observe_requests(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost middleware: a request id (the caller's ``X-Request-Id`` or a new one) on every
    log line of the request and on the response; requests and latency per route template
    (``/v1/coupons/{code}``, never the raw path: one series per route, not per coupon)."""
    rid = request.headers.get(REQUEST_ID, "")[:64] or uuid.uuid4().hex
    token = request_id.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers[REQUEST_ID] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        m = metrics()
        m.http_requests.labels(route=route, method=request.method, status=str(status)).inc()
        m.http_seconds.labels(route=route, method=request.method).observe(
            time.perf_counter() - started)
        request_id.reset(token)


def ready_routes(checks: Mapping[str, Check]) -> list[Route]:
    """``/v1/ready`` over ``checks`` (name -> coroutine that raises when not ready) and
    ``/metrics``."""

    async def ready(request: web.Request) -> web.Response:
        async def one(check: Check) -> str:
            try:
                await asyncio.wait_for(check(), READY_TIMEOUT_S)
            except Exception as exc:  # any failure means not ready; the body says which
                return f"{type(exc).__name__}: {exc}"[:200] or "failed"
            return "ok"

        results = await asyncio.gather(*(one(c) for c in checks.values()))
        out = dict(zip(checks, results, strict=True))
        ok = all(v == "ok" for v in out.values())
        return respond(ReadyOut(ready=ok, checks=out), status=200 if ok else 503)

    async def prometheus(request: web.Request) -> web.Response:
        body, content_type = await asyncio.get_running_loop().run_in_executor(None, exposition)
        return web.Response(body=body, headers={"Content-Type": content_type})

    return [
        Route("GET", "/v1/ready", ready, "Readiness: Redis and ClickHouse answer",
              responses={200: ReadyOut, 503: ReadyOut}, tags=("meta",)),
        Route("GET", "/metrics", prometheus, "Prometheus metrics of this process group",
              responses={200: None}, content_type="text/plain", tags=("meta",)),
    ]


def add_operations(app: web.Application, *, checks: Mapping[str, Check]) -> None:
    """Mount ``/v1/ready`` and ``/metrics`` and the request middleware on ``app`` (before it
    starts)."""
    app.middlewares.insert(0, observe_requests)
    add_routes(app, ready_routes(checks))


def clickhouse_check(url: str | None) -> Check:
    """A ClickHouse server answers ``SELECT 1`` (a fresh connection each time, in a thread);
    the embedded chDB has no server to ask and is ready when importable."""

    async def check() -> None:
        if not url:
            import chdb  # noqa: F401
            return
        from infra.clickhouse import DriverClient

        def ask() -> Any:
            client = DriverClient(url=url)
            try:
                return client.query("SELECT 1")
            finally:
                client.close()

        await asyncio.get_running_loop().run_in_executor(None, ask)

    return check
