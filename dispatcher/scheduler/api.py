"""``/v1/schedules``: recurring definitions over HTTP (role ``operator``), the same operations
as ``quanpai schedule``: add, list (with the next runs), show (with runs and skipped runs),
pause, resume, delete and preview a day.

The body of ``POST /v1/schedules`` is a definition as JSON. Its model below only gives the
document its shape (for OpenAPI); the rules are those of ``definitions.parse_definition``, the
validator YAML files go through too, so a 422 names the same field either way. Each caller sees
its own merchant's definitions. Paths in ``audience`` are the server's; an audience that names no
data (only ``where``, or nothing: the console's form) reads the member data the server's segment
rules file names (``QUANPAI_SEGMENT_RULES``), as ``/v1/segments`` does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
import redis
from aiohttp import web
from msgspec import Meta

from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.definitions import parse_definition
from dispatcher.scheduler.errors import InvalidDefinition, UnknownSchedule
from dispatcher.scheduler.planning import next_runs, preview
from dispatcher.scheduler.runner import definition_of
from dispatcher.scheduler.store import ScheduleStore, StoredSchedule
from infra.errors import InvalidInput, NotFound, Refused
from infra.http_api import Route, add_routes, principal, query_of, respond
from infra.tokens import Role

CLIENT = web.AppKey("schedule_redis", redis.Redis)
ZONE = web.AppKey("schedule_timezone", ZoneInfo)
DATA = web.AppKey("schedule_default_data", dict)  # transactions/members specs, absolute paths
ScheduleId = Annotated[str, Meta(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class ScheduleIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A recurring definition (docs/scheduler.md)."""

    id: ScheduleId
    trigger: dict[str, Any]  # {type: birthday|wake_up|holiday|member_day|...}
    audience: dict[str, Any] = msgspec.field(default_factory=dict)  # transactions, members, where
    send_at: str | None = None  # HH:MM, merchant time
    lateness: str | None = None  # 30m, 6h, 2d
    timezone: str | None = None
    start: str | None = None  # YYYY-MM-DD
    name: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    coupon: dict[str, Any] | None = None
    channels: list[str] | str | None = None
    content: dict[str, str] | None = None
    holdout_permille: Annotated[int, Meta(ge=0, le=500)] | None = None
    budget: dict[str, int] | None = None
    frequency_cap: dict[str, int] | None = None
    send_rate_per_s: Annotated[int, Meta(ge=1)] | None = None


class ScheduleSummary(msgspec.Struct):
    id: str
    name: str
    trigger: str
    paused: bool
    next_runs: list[str]  # ISO times, merchant timezone


class ScheduleList(msgspec.Struct):
    schedules: list[ScheduleSummary]


class RunOut(msgspec.Struct):
    run_id: str
    status: str
    members: int


class SkipOut(msgspec.Struct):
    day: str
    reason: str


class ScheduleOut(msgspec.Struct):
    id: str
    paused: bool
    added: str
    definition: dict[str, Any]
    next_runs: list[str]
    runs: list[RunOut]
    skipped: list[SkipOut]


class PreviewQuery(msgspec.Struct, forbid_unknown_fields=True):
    date: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] = ""


class PreviewOut(msgspec.Struct):
    id: str
    date: str
    in_data: int
    triggered: int
    filtered_out: int
    already_served: int
    would_send: int
    occasions: list[str]
    members: list[str]  # the first 100


def _store(request: web.Request) -> ScheduleStore:
    return ScheduleStore(client=request.app[CLIENT], merchant_id=principal(request).merchant_id)


def _stored(store: ScheduleStore, request: web.Request) -> StoredSchedule:
    try:
        return store.get(request.match_info["schedule_id"])
    except UnknownSchedule as exc:
        raise NotFound(str(exc)) from None


def _next(store: ScheduleStore, stored: StoredSchedule, zone: ZoneInfo) -> list[str]:
    if stored.paused:
        return []
    return [t.isoformat() for t in next_runs(definition_of(stored), stored,
                                             cursor=store.cursor(stored.id),
                                             now=dt.datetime.now(zone))]


def _summary(store: ScheduleStore, stored: StoredSchedule, zone: ZoneInfo) -> ScheduleSummary:
    definition = definition_of(stored)
    return ScheduleSummary(stored.id, definition.name, definition.trigger.type, stored.paused,
                           _next(store, stored, zone))


async def add_schedule(request: web.Request, body: ScheduleIn) -> web.Response:
    store = _store(request)
    zone = request.app[ZONE]
    data = msgspec.to_builtins(body)
    if not {"transactions", "members"} & set(body.audience):
        default = request.app.get(DATA)
        if not default:
            raise InvalidInput("audience", "name the data (transactions: and members:), or set "
                                           "QUANPAI_SEGMENT_RULES on the server")
        data["audience"] = {**default, **body.audience}
    try:
        definition = parse_definition(data, base=Path("."), default_timezone=str(zone))
    except InvalidDefinition as exc:
        raise InvalidInput(exc.field, exc.problem) from None

    def write() -> ScheduleSummary:
        try:
            store.get(definition.id)
        except UnknownSchedule:
            pass
        else:
            raise Refused("exists", f"schedule {definition.id} exists: delete it first")
        stored = StoredSchedule(definition.id, definition.source, False,
                                dt.datetime.now(definition.timezone).date())
        store.put(stored)
        return _summary(store, stored, zone)

    return respond(await asyncio.to_thread(write), status=201)


async def list_schedules(request: web.Request) -> web.Response:
    store = _store(request)
    zone = request.app[ZONE]

    def read() -> ScheduleList:
        return ScheduleList([_summary(store, s, zone) for s in store.all()])

    return respond(await asyncio.to_thread(read))


async def get_schedule(request: web.Request) -> web.Response:
    store = _store(request)
    stored = _stored(store, request)

    def read() -> ScheduleOut:
        runs = [RunOut(r, (record := store.run(r)).get("status", ""),
                       int(record.get("members", "0")))
                for r in store.run_ids(stored.id)[-50:]]
        skipped = [SkipOut(s["day"], s["reason"]) for s in store.skipped(stored.id)[:50]]
        return ScheduleOut(stored.id, stored.paused, stored.added.isoformat(), stored.source,
                           _next(store, stored, request.app[ZONE]), runs, skipped)

    return respond(await asyncio.to_thread(read))


def _pausing(paused: bool) -> Any:
    async def handler(request: web.Request) -> web.Response:
        store = _store(request)
        stored = store.set_paused(_stored(store, request).id, paused)
        return respond(_summary(store, stored, request.app[ZONE]))

    handler.__name__ = "pause_schedule" if paused else "resume_schedule"
    return handler


async def delete_schedule(request: web.Request) -> web.Response:
    store = _store(request)
    stored = _stored(store, request)
    store.delete(stored.id)
    return respond({"id": stored.id, "deleted": True})


async def preview_schedule(request: web.Request) -> web.Response:
    store = _store(request)
    stored = _stored(store, request)
    raw = query_of(request, PreviewQuery).date
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput("date", "required: a day such as 2026-12-03") from None
    found = await asyncio.to_thread(preview, definition_of(stored), day, store=store,
                                    loader=AudienceLoader())
    return respond(PreviewOut(stored.id, day.isoformat(), found.in_data, found.triggered,
                              found.filtered_out, found.already_served, found.would_send,
                              list(found.occasions), found.members[:100]))


_ID = {"schedule_id": ScheduleId}
_OPERATOR: tuple[Role, ...] = ("operator",)
_TAGS = ("schedules",)
ROUTES = [
    Route("POST", "/v1/schedules", add_schedule,
          "Check a recurring definition (birthday, wake-up, holiday, member day, anniversary) "
          "and store it", _OPERATOR, ScheduleIn, {201: ScheduleSummary}, tags=_TAGS),
    Route("GET", "/v1/schedules", list_schedules,
          "The merchant's recurring definitions and their next runs", _OPERATOR,
          responses={200: ScheduleList}, tags=_TAGS),
    Route("GET", "/v1/schedules/{schedule_id}", get_schedule,
          "A definition, its recent runs and skipped runs", _OPERATOR,
          responses={200: ScheduleOut}, path_params=_ID, tags=_TAGS),
    Route("POST", "/v1/schedules/{schedule_id}/pause", _pausing(True),
          "Stop making runs (resume catches up within the lateness limit)", _OPERATOR,
          responses={200: ScheduleSummary}, path_params=_ID, tags=_TAGS),
    Route("POST", "/v1/schedules/{schedule_id}/resume", _pausing(False),
          "Make runs again", _OPERATOR, responses={200: ScheduleSummary}, path_params=_ID,
          tags=_TAGS),
    Route("DELETE", "/v1/schedules/{schedule_id}", delete_schedule,
          "Remove a definition (who was served stays recorded)", _OPERATOR,
          path_params=_ID, tags=_TAGS),
    Route("GET", "/v1/schedules/{schedule_id}/preview", preview_schedule,
          "Who a run on a day would reach, counted by reason", _OPERATOR,
          responses={200: PreviewOut}, path_params=_ID, query=PreviewQuery, tags=_TAGS),
]


def add_schedule_routes(app: web.Application, *, client: redis.Redis, timezone: ZoneInfo,
                        default_data: dict[str, Any] | None = None) -> None:
    """Mount ``/v1/schedules`` on the app; the composition root passes its Redis client and
    the member data an audience without its own reads (absolute paths or tables)."""
    app[CLIENT] = client
    app[ZONE] = timezone
    if default_data:
        app[DATA] = default_data
    add_routes(app, ROUTES)
