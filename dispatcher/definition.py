"""Campaign definitions: one validator for a YAML file (``quanpai campaign create FILE``) and for
JSON over HTTP (``POST /v1/campaigns``), errors naming the field.

A definition says what to send to whom; it holds no state. ``parse_definition`` turns the
decoded document (a mapping) into a frozen ``CampaignDefinition`` or raises ``DefinitionError``
with the dotted path of the first bad field (``budget.max_cost_fen``, ``channels[1]``).
Example (YAML)::

    name: 双十二唤醒
    audience: {snapshot: var/snapshots/dormant, segment: 沉睡会员}
    coupon: {threshold_fen: 10000, discount_fen: 1500, valid_days: 30}
    channels: [wechat, sms]          # or: auto (cheapest reachable by configured price)
    content: {store: 全部门店, link: "pages/coupon/index"}
    holdout_permille: 100
    start_at: "2026-12-12T10:00:00+08:00"
    budget: {max_coupons: 50000, max_cost_fen: 75000000}
    frequency_cap: {messages: 1, days: 3}
    send_rate_per_s: 500
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from dispatcher.errors import DefinitionError
from infra.errors import InvalidInput
from infra.textfiles import read_text

CHANNELS = ("wechat", "wechat_mass", "sms", "alipay", "alipay_cash")
AUTO = "auto"
HOLDOUT_MAX_PERMILLE = 500
# Campaign-wide message variables an operator may set; name, coupon, code, value and expiry are
# filled from the member and the coupon.
CONTENT_KEYS = ("store", "link", "value")
_TOP = {"name", "audience", "coupon", "channels", "content", "holdout_permille", "start_at",
        "budget", "frequency_cap", "send_rate_per_s", "merchant_id"}


@dataclass(frozen=True)
class Audience:
    """Who: a snapshot directory (``segment`` picks one of its segments), or a rules file plus
    a segment name, evaluated at launch and frozen as a snapshot."""

    snapshot: Path | None = None
    rules: Path | None = None
    segment: str = ""


@dataclass(frozen=True)
class CouponSpec:
    """The coupon: an existing template (``template_id``) or a 满减 coupon made for the campaign."""

    threshold_fen: int = 10000
    discount_fen: int = 1500
    valid_days: int = 30
    name: str = ""  # the coupon's title; default 满X减Y券
    template_id: str = ""

    def expiry(self, issue_day: date) -> date:
        """Last valid day of a coupon issued on ``issue_day`` (the issue day counts as day 1)."""
        return issue_day + timedelta(days=self.valid_days - 1)

    @property
    def title(self) -> str:
        return self.name or f"满{self.threshold_fen // 100}减{self.discount_fen // 100}券"

    @property
    def value(self) -> str:
        """What the coupon is worth, as members read it (``15元``)."""
        yuan, fen = divmod(self.discount_fen, 100)
        return f"{yuan}元" if fen == 0 else f"{yuan}.{fen:02d}元"


@dataclass(frozen=True)
class Budget:
    """At most ``max_coupons`` coupons and ``max_cost_fen`` of discount; None: no limit."""

    max_coupons: int | None = None
    max_cost_fen: int | None = None


@dataclass(frozen=True)
class FrequencyCapSpec:
    """At most ``messages`` coupon messages per member in any ``days`` days, all campaigns."""

    messages: int
    days: int


@dataclass(frozen=True)
class CampaignDefinition:
    name: str
    audience: Audience
    coupon: CouponSpec = field(default_factory=CouponSpec)
    channels: tuple[str, ...] = ("wechat", "sms")  # ("auto",): cheapest reachable
    content: dict[str, str] = field(default_factory=dict)
    holdout_permille: int = 0
    start_at: datetime | None = None
    budget: Budget = field(default_factory=Budget)
    frequency_cap: FrequencyCapSpec | None = None
    send_rate_per_s: int | None = None
    merchant_id: str = ""  # "" : the merchant of the settings

    @property
    def automatic(self) -> bool:
        return self.channels == (AUTO,)


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise DefinitionError(path, "expected a mapping")
    return value


def _unknown(data: dict[str, Any], allowed: set[str], prefix: str) -> None:
    extra = sorted(str(k) for k in data if k not in allowed)
    if extra:
        raise DefinitionError(prefix + extra[0],
                              f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(data: dict[str, Any], key: str, path: str, *, low: int, high: int | None = None,
         default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(path, "expected an integer")
    if value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else ""
        raise DefinitionError(path, f"expected a value between {low}{upper}" if upper
                              else f"expected at least {low}")
    return value


def _text(data: dict[str, Any], key: str, path: str, *, required: bool = False,
          max_length: int = 64) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise DefinitionError(path, "required")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise DefinitionError(path, "expected non-empty text")
    if len(value) > max_length or any(c in value for c in "\t\n\r"):
        raise DefinitionError(path, f"at most {max_length} characters on one line")
    return value.strip()


def _audience(value: Any, base: Path) -> Audience:
    data = _mapping(value, "audience")
    _unknown(data, {"snapshot", "rules", "segment"}, "audience.")
    segment = _text(data, "segment", "audience.segment")
    snapshot, rules = data.get("snapshot"), data.get("rules")
    if (snapshot is None) == (rules is None):
        raise DefinitionError("audience", "give either snapshot (a directory) or rules "
                              "(a rules file) with segment")
    if snapshot is not None:
        if not isinstance(snapshot, str) or not snapshot:
            raise DefinitionError("audience.snapshot", "expected a directory path")
        return Audience(snapshot=base / snapshot, segment=segment)
    if not isinstance(rules, str) or not rules:
        raise DefinitionError("audience.rules", "expected a file path")
    if not segment:
        raise DefinitionError("audience.segment", "required with rules")
    return Audience(rules=base / rules, segment=segment)


def _coupon(value: Any) -> CouponSpec:
    if value is None:
        return CouponSpec()
    data = _mapping(value, "coupon")
    _unknown(data, {"threshold_fen", "discount_fen", "valid_days", "title", "template_id"},
             "coupon.")
    threshold = _int(data, "threshold_fen", "coupon.threshold_fen", low=0, default=10000)
    discount = _int(data, "discount_fen", "coupon.discount_fen", low=1, default=1500)
    days = _int(data, "valid_days", "coupon.valid_days", low=1, high=3660, default=30)
    assert threshold is not None and discount is not None and days is not None
    if threshold and discount >= threshold:
        raise DefinitionError("coupon.discount_fen", "must be below threshold_fen")
    return CouponSpec(threshold, discount, days, _text(data, "title", "coupon.title"),
                      _text(data, "template_id", "coupon.template_id"))


def _channels(value: Any) -> tuple[str, ...]:
    if value == AUTO:
        return (AUTO,)
    if isinstance(value, str):
        value = [c.strip() for c in value.split(",") if c.strip()]
    if not isinstance(value, list) or not value:
        raise DefinitionError("channels", f"expected a list of channels or {AUTO!r}")
    for i, channel in enumerate(value):
        if channel not in CHANNELS:
            raise DefinitionError(f"channels[{i}]", f"unknown channel {channel!r} (use "
                                  f"{', '.join(CHANNELS)}, or channels: {AUTO})")
    if len(set(value)) != len(value):
        raise DefinitionError("channels", "a channel is listed twice")
    return tuple(value)


def _start_at(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise DefinitionError("start_at", "expected an ISO time such as "
                                  "2026-12-12T10:00:00+08:00") from None
    if not isinstance(value, datetime):
        raise DefinitionError("start_at", "expected an ISO time")
    if value.tzinfo is None:
        raise DefinitionError("start_at", "needs a timezone offset (such as +08:00)")
    return value


def parse_definition(data: Any, *, base: Path = Path(".")) -> CampaignDefinition:
    """Validate a decoded definition (YAML or JSON); relative paths are read from ``base``.

    Raises ``DefinitionError`` naming the first bad field. Checks only the document itself;
    what needs the world (the snapshot's manifest, the channels' settings) is checked by
    ``dispatcher.launch.prepare`` before anything is written."""
    top = _mapping(data, "definition")
    _unknown(top, _TOP, "")
    name = _text(top, "name", "name", required=True)
    audience = _audience(top.get("audience"), base) if "audience" in top else None
    if audience is None:
        raise DefinitionError("audience", "required")
    content_raw = _mapping(top.get("content", {}) or {}, "content")
    _unknown(content_raw, set(CONTENT_KEYS), "content.")
    content = {k: _text(content_raw, k, f"content.{k}", max_length=200) for k in content_raw}
    budget_raw = _mapping(top.get("budget", {}) or {}, "budget")
    _unknown(budget_raw, {"max_coupons", "max_cost_fen"}, "budget.")
    budget = Budget(_int(budget_raw, "max_coupons", "budget.max_coupons", low=1),
                    _int(budget_raw, "max_cost_fen", "budget.max_cost_fen", low=1))
    cap = None
    if top.get("frequency_cap") is not None:
        cap_raw = _mapping(top["frequency_cap"], "frequency_cap")
        _unknown(cap_raw, {"messages", "days"}, "frequency_cap.")
        messages = _int(cap_raw, "messages", "frequency_cap.messages", low=1, high=100)
        days = _int(cap_raw, "days", "frequency_cap.days", low=1, high=90)
        if messages is None or days is None:
            raise DefinitionError("frequency_cap", "needs messages and days")
        cap = FrequencyCapSpec(messages, days)
    coupon = _coupon(top.get("coupon"))
    if coupon.template_id and (budget.max_coupons or budget.max_cost_fen):
        raise DefinitionError("budget", "a budget applies to a coupon made for the campaign; "
                              "with coupon.template_id the template's own stock and budget hold")
    holdout = _int(top, "holdout_permille", "holdout_permille", low=0,
                   high=HOLDOUT_MAX_PERMILLE, default=0)
    return CampaignDefinition(
        name=name, audience=audience, coupon=coupon,
        channels=_channels(top.get("channels", ["wechat", "sms"])), content=content,
        holdout_permille=holdout or 0, start_at=_start_at(top.get("start_at")), budget=budget,
        frequency_cap=cap,
        send_rate_per_s=_int(top, "send_rate_per_s", "send_rate_per_s", low=1),
        merchant_id=_text(top, "merchant_id", "merchant_id"),
    )


def load_definition(path: Path) -> CampaignDefinition:
    """Read and validate a YAML (or JSON) definition file; relative paths are from its folder.
    GBK files and a UTF-8 BOM are accepted."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise DefinitionError("file", f"{path}: cannot read ({exc.strerror})") from None
    except InvalidInput as exc:
        raise DefinitionError("file", f"{path}: {exc.message}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DefinitionError("file", f"{path}: not valid YAML{where}") from None
    return parse_definition(data, base=path.parent.resolve())


def definition_from_json(body: bytes, *, base: Path = Path(".")) -> CampaignDefinition:
    """Validate a JSON definition (the HTTP API's request body)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise DefinitionError("body", "not valid JSON") from None
    return parse_definition(data, base=base)


def definition_to_json(definition: CampaignDefinition) -> dict[str, Any]:
    """The definition as a JSON-ready mapping (kept with the campaign, shown by the API)."""
    audience: dict[str, str] = {"segment": definition.audience.segment}
    if definition.audience.snapshot is not None:
        audience["snapshot"] = str(definition.audience.snapshot)
    if definition.audience.rules is not None:
        audience["rules"] = str(definition.audience.rules)
    coupon = definition.coupon
    out: dict[str, Any] = {
        "name": definition.name, "audience": audience,
        "coupon": {"threshold_fen": coupon.threshold_fen, "discount_fen": coupon.discount_fen,
                   "valid_days": coupon.valid_days, "title": coupon.name,
                   "template_id": coupon.template_id},
        "channels": list(definition.channels) if not definition.automatic else AUTO,
        "content": dict(definition.content), "holdout_permille": definition.holdout_permille,
        "budget": {k: v for k, v in (("max_coupons", definition.budget.max_coupons),
                                     ("max_cost_fen", definition.budget.max_cost_fen))
                   if v is not None},
    }
    if definition.start_at is not None:
        out["start_at"] = definition.start_at.isoformat()
    if definition.frequency_cap is not None:
        out["frequency_cap"] = {"messages": definition.frequency_cap.messages,
                                "days": definition.frequency_cap.days}
    if definition.send_rate_per_s is not None:
        out["send_rate_per_s"] = definition.send_rate_per_s
    if definition.merchant_id:
        out["merchant_id"] = definition.merchant_id
    return out
