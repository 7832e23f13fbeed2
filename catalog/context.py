"""The catalog service object the HTTP handlers share: Redis client, scripts, templates, events.

Built once by the composition root (``dispatcher.app``) and passed down; nothing here opens a
connection on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any, TypeAlias

import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from analytics.events import Event, EventSink
from catalog.errors import NotFound, StoreUnavailable
from catalog.rules import MerchantRules, load_rules, rules_key
from catalog.store import lua
from catalog.templates import CouponTemplate, day_number

AsyncClient: TypeAlias = "redis.asyncio.Redis | AsyncRedisCluster"
SCRIPTS = ("issue", "redeem", "refund", "wallet", "gift", "account")


class Scripts:
    """Lua scripts by name, called with EVALSHA and loaded again after a Redis restart."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._shas = {name: hashlib.sha1(lua(name).encode()).hexdigest() for name in SCRIPTS}

    async def __call__(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        # EVALSHA straight through ``execute_command``: the script objects' wrappers cost more
        # CPU than the wallet read itself on the quote path
        sha = self._shas[name]
        try:
            try:
                return await self._client.execute_command(  # type: ignore[no-untyped-call]
                    "EVALSHA", sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:  # a restarted or other Redis: load it
                await self._client.script_load(lua(name))
                return await self._client.execute_command(  # type: ignore[no-untyped-call]
                    "EVALSHA", sha, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            raise _translate(exc) from exc
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis is unreachable ({exc}); retry shortly") from exc

    async def load_all(self) -> None:
        for name in SCRIPTS:
            await self._client.script_load(lua(name))

    async def calls(self, name: str, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
        """Several calls of one script at once. A cluster client blocks EVALSHA in pipelines,
        so the calls go out concurrently: one round trip of wall time, per node in parallel."""
        return list(await asyncio.gather(*(self(name, keys, args) for keys, args in calls)))


def _translate(exc: redis.ResponseError) -> Exception:
    text = str(exc)
    if "NOTEMPLATE" in text:
        return NotFound("the template does not exist")
    if "LOADING" in text or "BUSY" in text:
        return StoreUnavailable(f"Redis is busy ({text}); retry shortly")
    kept: Exception = exc
    return kept


class EventBuffer:
    """Collects events and hands them to the sink in batches from a background task.

    One stream entry per request would cost a blocking round trip on the event loop; batching
    every ``interval`` seconds keeps the redemption path to one Redis call. The sink runs in a
    thread because ``EventSink.emit`` is synchronous.
    """

    def __init__(self, sink: EventSink, *, interval: float = 0.05) -> None:
        self._sink = sink
        self._interval = interval
        self._pending: list[Event] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, events: Sequence[Event]) -> None:
        self._pending.extend(events)

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._sink.emit, batch)
            except Exception:
                self._pending[:0] = batch  # kept for the next flush: ROI needs every event
                raise

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                await asyncio.sleep(1)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class Catalog:
    """Everything a request handler needs, for one Redis (or Redis Cluster)."""

    def __init__(
        self, *, client: AsyncClient, secret: bytes, tz: tzinfo, sink: EventSink,
        template_ttl: float = 2.0, clock: Callable[[], datetime] | None = None,
        stream: str = "",
    ) -> None:
        self.client = client
        # ``stream`` (the event stream on the same Redis): redemption events are written by
        # the redemption script itself, so a crash of this process loses none. A Redis Cluster
        # cannot put the stream in every template's slot; there they go through ``events``.
        self.stream = stream
        self.durable_events = bool(stream) and not isinstance(client, AsyncRedisCluster)
        self.secret = secret
        self.tz = tz
        self.scripts = Scripts(client)
        self.events = EventBuffer(sink)
        self.clustered = isinstance(client, AsyncRedisCluster)
        self._template_ttl = template_ttl
        self._templates: dict[str, tuple[float, dict[str, CouponTemplate], dict[bytes, bytes]]] = {}
        self._clock = clock
        self._rules: dict[str, tuple[float, MerchantRules]] = {}

    def now(self) -> datetime:
        """The merchant-local time; a clock is injected where "today" must be chosen."""
        return self._clock().astimezone(self.tz) if self._clock else datetime.now(self.tz)

    def today(self, now: datetime | None = None) -> int:
        return day_number((now or self.now()).astimezone(self.tz))

    async def templates(
        self, merchant_id: str, *, fresh: bool = False
    ) -> dict[str, CouponTemplate]:
        """Every template of a merchant. Templates never change once saved, so a short cache only
        delays when a new one shows up in wallets."""
        cached = self._templates.get(merchant_id)
        if cached and not fresh and time.monotonic() - cached[0] < self._template_ttl:
            return cached[1]
        try:
            raw: dict[bytes, bytes] = await self.client.hgetall(  # type: ignore[misc,assignment]
                f"qp:{{{merchant_id}}}:templates"
            )
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis is unreachable ({exc}); retry shortly") from exc
        if cached and cached[2] == raw:
            found = cached[1]  # unchanged: the same objects keep the per-template caches warm
        else:
            found = {k.decode(): CouponTemplate.from_json(json.loads(v)) for k, v in raw.items()}
        self._templates[merchant_id] = (time.monotonic(), found, raw)
        return found

    async def template(self, merchant_id: str, template_id: str) -> CouponTemplate:
        found = (await self.templates(merchant_id)).get(template_id)
        if found is None:
            found = (await self.templates(merchant_id, fresh=True)).get(template_id)
        if found is None:
            raise NotFound(f"template {template_id} does not exist")
        return found

    async def rules(self, merchant_id: str) -> MerchantRules:
        """The merchant's rules, cached like templates (``forget_rules`` after a change)."""
        cached = self._rules.get(merchant_id)
        if cached and time.monotonic() - cached[0] < self._template_ttl:
            return cached[1]
        found = load_rules(await self.client.get(rules_key(merchant_id)))
        self._rules[merchant_id] = (time.monotonic(), found)
        return found

    def forget_rules(self, merchant_id: str) -> None:
        self._rules.pop(merchant_id, None)

    def emit(self, events: Sequence[Event]) -> None:
        self.events.add(events)
