"""``/v1/segments`` and ``/v1/tags``: the console's segment builder over the same condition
language as the rules files (the JSON form of a ``where:``).

- ``POST /v1/segments/count``     {where, as_of?}            -> {count, members, as_of, warnings}
- ``POST /v1/segments/preview``   {where, as_of?, sample?}   -> the same and a masked sample
- ``POST /v1/segments/snapshots`` {name, where, as_of?}      -> a frozen snapshot for a campaign
- ``GET /v1/tags``, ``POST /v1/tags/{tag}/members`` {member_ids, remove?}
- ``POST /v1/tags/{tag}/rule`` {where, as_of?}: a condition saved as a rule tag;
  ``POST /v1/tags/refresh`` {as_of?}: every rule tag recomputed (the scheduler's daily job)

The data (transactions, members, RFM settings, timezone) is the rules file the composition root
configures (``QUANPAI_SEGMENT_RULES``); ``as_of`` defaults to today in its timezone. Counting
is CPU work on pandas arrays: it runs in a worker thread, one evaluation at a time, on a
``FeatureCache`` that keeps the day's member frame and each filter's aggregates, so an operator
editing a condition waits for the part that changed only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pandas as pd
from aiohttp import web
from msgspec import Meta

from infra.clickhouse import ClickHouse
from infra.errors import Forbidden, InvalidInput, Refused
from infra.http_api import Route, principal, respond
from infra.http_api import add_routes as mount
from segmentation.audience import Evaluation, evaluate_conditions, evaluate_rules
from segmentation.behaviour import CouponSpec
from segmentation.conditions import Condition, leaves, parse_condition
from segmentation.coupon_conditions import CouponFacts
from segmentation.errors import InvalidInput as SegmentInvalid
from segmentation.errors import InvalidRule, SegmentationError
from segmentation.feature_cache import FeatureCache
from segmentation.preview import mask_openid, mask_phone, plain
from segmentation.rule_tags import refresh_rule_tags, save_condition_tag
from segmentation.rules import RulesFile, SegmentRule, load_rules, vocabulary
from segmentation.snapshot import take_snapshot, write_snapshot
from segmentation.tags import TagInfo, TagStore

SERVICE = web.AppKey("segment_service", object)
Name = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
TagName = Annotated[str, Meta(min_length=1, max_length=32)]


class SegmentQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A condition (the ``where:`` of a rules file, as JSON) and the day to evaluate it for."""

    where: dict[str, Any]
    as_of: dt.date | None = None


class PreviewIn(SegmentQuery, forbid_unknown_fields=True, kw_only=True):
    sample: Annotated[int, Meta(ge=0, le=100)] = 10


class SnapshotIn(SegmentQuery, forbid_unknown_fields=True, kw_only=True):
    name: Name
    name_zh: Annotated[str, Meta(max_length=64)] = ""


class CountOut(msgspec.Struct, kw_only=True):
    count: int
    members: int  # everyone evaluated (members and buyers)
    as_of: dt.date
    warnings: list[str]


class SampleRow(msgspec.Struct, kw_only=True):
    member_id: str
    tier: str
    rfm_segment: str
    recency_days: str  # "-" for a member who never bought
    frequency: int
    monetary_total_fen: int
    phone: str  # masked
    wechat_openid: str  # masked


class PreviewOut(CountOut, kw_only=True):
    sample: list[SampleRow]


class SnapshotOut(msgspec.Struct, kw_only=True):
    snapshot: str
    count: int
    fingerprint: str
    as_of: dt.date


class TagMembersIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    member_ids: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                          Meta(min_length=1, max_length=100_000)]
    remove: bool = False


class TagOut(msgspec.Struct, kw_only=True):
    name: str
    kind: str  # manual or rule
    count: int
    updated: str
    rules: str  # a rules-file rule tag: the file and its segment
    segment: str
    where: str  # a console rule tag: its condition as JSON


class AsOfIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    as_of: dt.date | None = None


@dataclass
class SegmentService:
    """What the routes evaluate on; built by the composition root."""

    merchant_id: str
    rules: RulesFile | None  # None: no segment data configured (the routes answer 409)
    tags: TagStore
    snapshots: Path
    clickhouse: ClickHouse | None = None
    coupon_facts: CouponFacts | None = None
    cache: FeatureCache = field(default_factory=FeatureCache)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # coupon facts are read from the catalog at most this often (a full export per count would
    # cost seconds at a million coupons); snapshots always read them fresh
    facts_ttl: float = 60.0
    _facts: tuple[float, Any] | None = None

    def _coupon_facts(self, *, fresh: bool) -> CouponFacts | None:
        provider = self.coupon_facts
        if provider is None:
            return None
        now = time.monotonic()
        if fresh or self._facts is None or now - self._facts[0] > self.facts_ttl:
            self._facts = (now, provider())
        facts = self._facts[1]
        return lambda: facts

    def rules_or_refuse(self) -> RulesFile:
        if self.rules is None:
            raise Refused("no_segment_data", "no segment data is configured: set "
                          "QUANPAI_SEGMENT_RULES to a rules file naming the transactions")
        return self.rules

    def parse(self, where: dict[str, Any]) -> Condition:
        rules = self.rules_or_refuse()
        try:
            return parse_condition(where, "where", vocabulary(
                rules.segment_map, bins=rules.bins, clusters=rules.clusters is not None))
        except InvalidRule as exc:
            raise InvalidInput(exc.field, exc.problem) from None

    def evaluate(self, condition: Condition, as_of: dt.date | None, *,
                 fresh: bool = False) -> Evaluation:
        """The condition's members (runs in a worker thread, under ``lock``); ``fresh`` reads
        the coupon facts again whatever their age."""
        rules = self.rules_or_refuse()
        day = as_of or dt.datetime.now(rules.timezone).date()
        try:
            needs_coupons = any(isinstance(leaf.value, CouponSpec) for leaf in leaves(condition))
            frame, masks, clustering, warnings = evaluate_conditions(
                rules, [condition], as_of=day, clickhouse=self.clickhouse,
                coupon_facts=self._coupon_facts(fresh=fresh) if needs_coupons else None,
                tags=self.tags, cache=self.cache)
        except SegmentInvalid as exc:
            raise InvalidInput(exc.field, exc.problem) from None
        except InvalidRule as exc:
            raise InvalidInput(exc.field, exc.problem) from None
        return Evaluation(rules, frame, {"segment": masks[0]}, day, day, clustering, warnings)


def service_of(request: web.Request) -> SegmentService:
    found = request.app[SERVICE]
    assert isinstance(found, SegmentService)
    if principal(request).merchant_id != found.merchant_id:
        raise Forbidden("this server's segments belong to another merchant")
    return found


async def _evaluated(request: web.Request, body: SegmentQuery, *,
                     fresh: bool = False) -> Evaluation:
    service = service_of(request)
    condition = service.parse(body.where)
    async with service.lock:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(service.evaluate, condition, body.as_of, fresh=fresh))


def _counts(evaluation: Evaluation) -> dict[str, Any]:
    return {"count": int(evaluation.masks["segment"].sum()), "members": len(evaluation.frame),
            "as_of": evaluation.as_of, "warnings": list(evaluation.warnings)}


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


async def count_segment(request: web.Request, body: SegmentQuery) -> web.Response:
    evaluation = await _evaluated(request, body)
    return respond(CountOut(**_counts(evaluation)))


async def preview_segment(request: web.Request, body: PreviewIn) -> web.Response:
    evaluation = await _evaluated(request, body)
    chosen = evaluation.members_of("segment")
    picked = chosen.sample(n=min(body.sample, len(chosen)), random_state=0)
    shown = plain(picked.reindex(columns=["member_id", "tier", "rfm_segment", "recency_days",
                                          "frequency", "monetary_total", "phone",
                                          "wechat_openid"]))
    rows = [SampleRow(member_id=_text(r.member_id), tier=_text(r.tier),
                      rfm_segment=_text(r.rfm_segment), recency_days=_text(r.recency_days),
                      frequency=int(r.frequency), monetary_total_fen=int(r.monetary_total),
                      phone=mask_phone(r.phone or None), wechat_openid=mask_openid(
                          r.wechat_openid or None))
            for r in shown.itertuples(index=False)]
    return respond(PreviewOut(**_counts(evaluation), sample=rows))


async def save_snapshot(request: web.Request, body: SnapshotIn) -> web.Response:
    service = service_of(request)
    evaluation = await _evaluated(request, body, fresh=True)
    named = replace(evaluation, rules=replace(evaluation.rules, name=body.name, segments=(
        SegmentRule(body.name, body.name_zh or body.name, service.parse(body.where)),)),
        masks={body.name: evaluation.masks["segment"]})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    directory = service.snapshots / f"{body.name}-{evaluation.as_of}-{stamp}"
    try:
        snapshot = take_snapshot(named)
        write_snapshot(snapshot, directory)
    except SegmentationError as exc:
        raise InvalidInput("where", str(exc)) from None
    return respond(SnapshotOut(snapshot=str(directory), count=snapshot.counts[body.name],
                               fingerprint=snapshot.fingerprint, as_of=evaluation.as_of),
                   status=201)


async def list_tags(request: web.Request) -> web.Response:
    tags = service_of(request).tags
    infos = await asyncio.get_running_loop().run_in_executor(None, tags.tags)
    return respond([TagOut(**i.to_json()) for i in infos])


def _tag_name(request: web.Request) -> str:
    tag = request.match_info["tag"]
    if not re.fullmatch(r"[^\s:{}]{1,32}", tag):
        raise InvalidInput("tag", "1-32 characters, no spaces, ':', '{' or '}'")
    return tag


async def set_tag_members(request: web.Request, body: TagMembersIn) -> web.Response:
    service = service_of(request)
    tag = _tag_name(request)
    change = service.tags.remove if body.remove else service.tags.add
    info = await asyncio.get_running_loop().run_in_executor(None, change, tag, body.member_ids)
    return respond(TagOut(**info.to_json()))


def _members(evaluation: Evaluation) -> list[Any]:
    return list(evaluation.members_of("segment").member_id.tolist())


async def save_rule_tag(request: web.Request, body: SegmentQuery) -> web.Response:
    """The condition's members saved as a rule tag (refreshed by POST /v1/tags/refresh)."""
    tag = _tag_name(request)
    service = service_of(request)
    evaluation = await _evaluated(request, body, fresh=True)
    info = await asyncio.get_running_loop().run_in_executor(None, functools.partial(
        save_condition_tag, service.tags, tag=tag, where=body.where,
        members=_members(evaluation)))
    return respond(TagOut(**info.to_json()))


async def refresh_tags(request: web.Request, body: AsOfIn) -> web.Response:
    """Recompute every rule tag as of ``as_of`` (default today): console conditions and
    rules-file segments alike."""
    service = service_of(request)
    rules = service.rules_or_refuse()
    day = body.as_of or dt.datetime.now(rules.timezone).date()

    def run() -> list[TagInfo]:
        def evaluate(path: Path) -> Evaluation:
            return evaluate_rules(load_rules(path), as_of=day, clickhouse=service.clickhouse,
                                  coupon_facts=service._coupon_facts(fresh=True),
                                  tags=service.tags)

        def select(where: dict[str, Any]) -> list[Any]:
            return _members(service.evaluate(service.parse(where), day, fresh=True))

        try:
            return refresh_rule_tags(service.tags, evaluate=evaluate, select=select)
        except SegmentationError as exc:
            raise Refused("not_refreshed", str(exc)) from None

    async with service.lock:
        infos = await asyncio.get_running_loop().run_in_executor(None, run)
    return respond([TagOut(**i.to_json()) for i in infos])


ROUTES = [
    Route("POST", "/v1/segments/count", count_segment, "members a condition selects",
          ("operator", "analyst"), SegmentQuery, {200: CountOut}, tags=("segments",)),
    Route("POST", "/v1/segments/preview", preview_segment,
          "members a condition selects, with a masked sample", ("operator", "analyst"),
          PreviewIn, {200: PreviewOut}, tags=("segments",)),
    Route("POST", "/v1/segments/snapshots", save_snapshot,
          "freeze a condition's members into a snapshot for a campaign", ("operator",),
          SnapshotIn, {201: SnapshotOut}, tags=("segments",)),
    Route("GET", "/v1/tags", list_tags, "every member tag (标签)", ("operator", "analyst"),
          responses={200: list[TagOut]}, tags=("segments",)),
    Route("POST", "/v1/tags/{tag}/members", set_tag_members, "tag or untag members",
          ("operator",), TagMembersIn, {200: TagOut}, path_params={"tag": TagName},
          tags=("segments",)),
    Route("POST", "/v1/tags/{tag}/rule", save_rule_tag,
          "save a condition's members as a rule tag (refreshed with the others)", ("operator",),
          SegmentQuery, {200: TagOut}, path_params={"tag": TagName}, tags=("segments",)),
    Route("POST", "/v1/tags/refresh", refresh_tags, "recompute every rule tag as of a day",
          ("operator",), AsOfIn, {200: list[TagOut]}, tags=("segments",)),
]


def add_routes(app: web.Application, *, service: SegmentService) -> None:
    """Mount the segment and tag routes on the one app."""
    from segmentation import api_overview

    app[SERVICE] = service
    mount(app, ROUTES)
    mount(app, api_overview.ROUTES)
