"""Recurring definitions: what to send, to whom, when; one validator for YAML files and JSON.

    id: bday                       # a-z, 0-9 and -, used in campaign ids (bday-2026-12-03)
    trigger: {type: birthday, days_before: 0}
    audience:                      # where members and purchases are, as in a segment rules file
      transactions: {path: transactions.parquet}
      members: {path: members.parquet}
      where: {reachable: [wechat, sms]}   # optional: segmentation's condition language
    send_at: "10:00"               # merchant time
    lateness: 6h                   # a run missed by more than this is skipped and reported
    start: 2026-01-01              # optional: first day considered (default: the day it is added)
    # what each run sends: the fields of a campaign definition (dispatcher/definition.py),
    # checked by its validator
    name: 生日券
    coupon: {title: 生日券, threshold_fen: 5000, discount_fen: 2000, valid_days: 7}
    channels: [wechat, sms]
    content: {store: 全部门店}
    holdout_permille: 50
    frequency_cap: {messages: 1, days: 3}

Triggers: ``birthday`` (days_before), ``wake_up`` (inactive_days, cooldown_days, optional
max_p_alive), ``holiday`` (occasions, days_before), ``member_day`` (weekly: [wed] or
monthly: [8]), ``first_purchase_anniversary`` (days_before). Everything is checked before
anything is stored; errors name the field (``trigger.cooldown_days``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dispatcher.definition import Audience, CampaignDefinition
from dispatcher.definition import parse_definition as parse_campaign
from dispatcher.errors import DefinitionError
from dispatcher.scheduler.errors import InvalidDefinition
from dispatcher.scheduler.holidays import OCCASIONS
from infra.errors import InvalidInput
from infra.textfiles import read_text
from segmentation.errors import InvalidRule
from segmentation.rules import RulesFile, parse_rules

TRIGGERS = ("birthday", "wake_up", "holiday", "member_day", "first_purchase_anniversary")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"^(\d+)\s*(m|h|d)$")
_OWN = {"id", "trigger", "audience", "send_at", "lateness", "timezone", "start"}
# The campaign each run creates; validated by the campaign definition's own parser.
CAMPAIGN_KEYS = {"name", "coupon", "channels", "content", "holdout_permille", "budget",
                 "frequency_cap", "send_rate_per_s"}
# No `where`: every member of the data. parse_rules wants a condition, and this one always holds.
_EVERYONE = {"any": [{"has_purchased": True}, {"has_purchased": False}]}
AUDIENCE_SEGMENT = "audience"


@dataclass(frozen=True)
class Trigger:
    """The parsed trigger; fields that do not apply to its type keep their defaults."""

    type: str
    days_before: int = 0
    inactive_days: int = 0
    cooldown_days: int = 0
    max_p_alive: float | None = None
    occasions: frozenset[str] = frozenset()
    weekdays: frozenset[int] = frozenset()  # 0 = Monday
    month_days: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Definition:
    """A validated recurring definition; ``source`` is the mapping it came from (stored as is,
    with audience paths made absolute)."""

    id: str
    trigger: Trigger
    audience: RulesFile
    campaign: CampaignDefinition
    send_at: dt.time
    lateness: dt.timedelta
    timezone: ZoneInfo
    start: dt.date | None
    source: dict[str, Any]

    @property
    def name(self) -> str:
        """The operator's name for the definition (its campaigns' name)."""
        return self.campaign.name


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidDefinition(path, "must be a mapping")
    return value


def _unknown(data: dict[str, Any], allowed: set[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise InvalidDefinition(where, f"unknown key; expected one of "
                                    f"{', '.join(sorted(allowed))}")


def _int(data: dict[str, Any], key: str, path: str, default: int | None, low: int,
         high: int) -> int:
    value = data.get(key, default)
    where = f"{path}.{key}" if path else key
    if value is None:
        raise InvalidDefinition(where, "is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidDefinition(where, f"must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidDefinition(where, f"must be between {low} and {high}, got {value}")
    return value


def _list(value: Any, path: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InvalidDefinition(path, "must not be empty")
    return items


def _trigger(data: Any) -> Trigger:
    spec = _mapping(data, "trigger")
    kind = spec.get("type")
    if kind not in TRIGGERS:
        raise InvalidDefinition("trigger.type", f"must be one of {', '.join(TRIGGERS)}, "
                                f"got {kind!r}")
    if kind in ("birthday", "first_purchase_anniversary"):
        _unknown(spec, {"type", "days_before"}, "trigger")
        return Trigger(kind, days_before=_int(spec, "days_before", "trigger", 0, 0, 60))
    if kind == "wake_up":
        _unknown(spec, {"type", "inactive_days", "cooldown_days", "max_p_alive"}, "trigger")
        p_alive = spec.get("max_p_alive")
        if p_alive is not None and (isinstance(p_alive, bool)
                                    or not isinstance(p_alive, int | float)
                                    or not 0 < p_alive < 1):
            raise InvalidDefinition("trigger.max_p_alive",
                                    f"must be a probability between 0 and 1, got {p_alive!r}")
        return Trigger(kind, inactive_days=_int(spec, "inactive_days", "trigger", None, 1, 3650),
                       cooldown_days=_int(spec, "cooldown_days", "trigger", None, 1, 3650),
                       max_p_alive=None if p_alive is None else float(p_alive))
    if kind == "holiday":
        _unknown(spec, {"type", "occasions", "days_before"}, "trigger")
        chosen = [str(o) for o in _list(spec.get("occasions", list(OCCASIONS)),
                                        "trigger.occasions")]
        for name in chosen:
            if name not in OCCASIONS:
                raise InvalidDefinition("trigger.occasions", f"{name!r} is not one of "
                                        f"{', '.join(OCCASIONS)}")
        return Trigger(kind, days_before=_int(spec, "days_before", "trigger", 0, 0, 60),
                       occasions=frozenset(chosen))
    _unknown(spec, {"type", "weekly", "monthly"}, "trigger")
    if ("weekly" in spec) == ("monthly" in spec):
        raise InvalidDefinition("trigger", "member_day needs exactly one of weekly: [wed] or "
                                "monthly: [8]")
    if "weekly" in spec:
        days = [str(d).lower()[:3] for d in _list(spec["weekly"], "trigger.weekly")]
        for day in days:
            if day not in WEEKDAYS:
                raise InvalidDefinition("trigger.weekly", f"{day!r} is not a weekday "
                                        f"({', '.join(WEEKDAYS)})")
        return Trigger(kind, weekdays=frozenset(WEEKDAYS.index(d) for d in days))
    month_days = _list(spec["monthly"], "trigger.monthly")
    for day in month_days:
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            raise InvalidDefinition("trigger.monthly", f"days of the month are 1-31, got {day!r}")
    return Trigger(kind, month_days=frozenset(month_days))


def _absolute(spec: Any, base: Path) -> Any:
    if isinstance(spec, dict) and "path" in spec:
        path = Path(str(spec["path"]))
        return {**spec, "path": str(path if path.is_absolute() else (base / path).resolve())}
    return spec


def _audience(data: Any, base: Path, timezone: str) -> tuple[RulesFile, dict[str, Any]]:
    spec = _mapping(data, "audience")
    _unknown(spec, {"transactions", "members", "where"}, "audience")
    resolved = {key: _absolute(value, base) for key, value in spec.items()}
    rules = {k: v for k, v in resolved.items() if k != "where"}
    rules["timezone"] = timezone
    rules["segments"] = [{"name": AUDIENCE_SEGMENT, "where": resolved.get("where", _EVERYONE)}]
    try:
        parsed = parse_rules(rules, base=base)
    except InvalidRule as exc:
        field = exc.field.replace("segments[0].where", "where", 1)
        raise InvalidDefinition(f"audience.{field}", exc.problem) from None
    return parsed, resolved


def _campaign(top: dict[str, Any], schedule_id: str) -> CampaignDefinition:
    fields = {k: v for k, v in top.items() if k in CAMPAIGN_KEYS}
    fields.setdefault("name", schedule_id)
    # The audience of a run is the day's trigger and filter, handed to the launch directly.
    fields["audience"] = {"snapshot": f"schedule:{schedule_id}"}
    try:
        parsed = parse_campaign(fields)
    except DefinitionError as exc:
        raise InvalidDefinition(exc.field, exc.message) from None
    return replace(parsed, audience=Audience(segment=f"schedule:{schedule_id}"))


def _duration(value: Any, path: str) -> dt.timedelta:
    match = _DURATION.match(str(value).strip())
    if not match:
        raise InvalidDefinition(path, f"must be a duration such as 30m, 6h or 2d, got {value!r}")
    amount, unit = int(match.group(1)), match.group(2)
    delta = dt.timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: amount})
    if delta > dt.timedelta(days=30):
        raise InvalidDefinition(path, "must be at most 30d")
    return delta


def parse_definition(data: Any, *, base: Path, default_timezone: str = "Asia/Shanghai"
                     ) -> Definition:
    """Validate a definition (parsed YAML or JSON); relative paths resolve against ``base``."""
    top = _mapping(data, "definition")
    _unknown(top, _OWN | CAMPAIGN_KEYS, "")
    schedule_id = top.get("id")
    if not isinstance(schedule_id, str) or not _ID.match(schedule_id):
        raise InvalidDefinition("id", "is required: 1-40 of a-z, 0-9 and -, starting with a "
                                f"letter or digit, got {schedule_id!r}")
    zone_name = str(top.get("timezone", default_timezone))
    try:
        timezone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidDefinition("timezone", f"{zone_name!r} is not a timezone") from None
    if "trigger" not in top:
        raise InvalidDefinition("trigger", "is required")
    trigger = _trigger(top["trigger"])
    if "audience" not in top:
        raise InvalidDefinition("audience", "is required (transactions: and members:)")
    audience, audience_source = _audience(top["audience"], base, zone_name)
    if audience.members is None:
        raise InvalidDefinition("audience.members", "is required: addresses and birthdays")
    campaign = _campaign(top, schedule_id)
    match = _TIME.match(str(top.get("send_at", "10:00")))
    if not match:
        raise InvalidDefinition("send_at", f"must be a time such as 10:00, got "
                                f"{top.get('send_at')!r}")
    start = top.get("start")
    if start is not None and not isinstance(start, dt.date):
        try:
            start = dt.date.fromisoformat(str(start))
        except ValueError:
            raise InvalidDefinition("start", f"must be a date like 2026-01-01, got "
                                    f"{start!r}") from None
    source = {**top, "audience": audience_source, "timezone": zone_name,
              "start": None if start is None else start.isoformat()}
    return Definition(
        id=schedule_id, trigger=trigger, audience=audience, campaign=campaign,
        send_at=dt.time(int(match.group(1)), int(match.group(2))),
        lateness=_duration(top.get("lateness", "6h"), "lateness"), timezone=timezone,
        start=start, source=source,
    )


def read_definition_file(path: Path, *, default_timezone: str = "Asia/Shanghai") -> Definition:
    """Read a YAML or JSON definition file (UTF-8, UTF-8 with BOM, or GB18030 as Excel-era
    editors in China save it) and validate it."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise InvalidDefinition(str(path), f"cannot read: {exc.strerror or exc}") from None
    except InvalidInput as exc:
        raise InvalidDefinition(str(path), exc.message) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise InvalidDefinition(str(path), f"is not valid {kind}: {exc}".replace("\n", " ")
                                ) from None
    return parse_definition(data, base=path.parent.resolve(), default_timezone=default_timezone)
