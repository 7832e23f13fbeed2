"""``quanpai schedule add FILE | list | show ID | pause | resume | delete | preview | next``:
recurring definitions that ``quanpai scheduler`` runs every day."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import redis

from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.definitions import read_definition_file
from dispatcher.scheduler.errors import InvalidDefinition, UnknownSchedule
from dispatcher.scheduler.planning import next_runs, preview
from dispatcher.scheduler.runner import definition_of
from dispatcher.scheduler.store import ScheduleStore, StoredSchedule
from infra.cli_support import UsageError
from infra.errors import ServiceError
from infra.i18n import Words
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings

WORDS = Words({
    "added": ("已添加", "added"), "paused": ("已暂停", "paused"), "active": ("运行中", "active"),
    "resumed": ("已恢复", "resumed"), "deleted": ("已删除", "deleted"),
    "next": ("下次运行", "next run"), "none": ("无", "none"), "runs": ("运行记录", "runs"),
    "skipped": ("跳过", "skipped"), "in_data": ("会员总数", "members in the data"),
    "triggered": ("触发", "triggered"), "filtered_out": ("不符合受众条件", "outside the audience"),
    "already_served": ("本期已发或冷却中", "served this period or cooling down"),
    "would_send": ("将发送", "would send"), "occasions": ("节日", "occasions"),
})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("schedule", help="recurring birthday, wake-up, holiday sends")
    actions = parser.add_subparsers(dest="action", required=True)
    add_p = actions.add_parser("add", help="add a definition (YAML or JSON file)")
    add_p.add_argument("file", type=Path)
    add_p.add_argument("--replace", action="store_true", help="replace one with the same id")
    add_p.set_defaults(func=add)
    actions.add_parser("list", help="every definition").set_defaults(func=list_all)
    for name, func, text in (("show", show, "a definition, its runs and skipped runs"),
                             ("pause", pause, "stop running a definition"),
                             ("resume", resume, "run a paused definition again"),
                             ("delete", delete, "remove a definition")):
        action = actions.add_parser(name, help=text)
        action.add_argument("schedule_id")
        action.set_defaults(func=func)
    preview_p = actions.add_parser("preview", help="who a run on a day would reach")
    preview_p.add_argument("schedule_id")
    preview_p.add_argument("--date", required=True, help="YYYY-MM-DD")
    preview_p.add_argument("--limit", type=int, default=20, help="member ids to list")
    preview_p.set_defaults(func=run_preview)
    next_p = actions.add_parser("next", help="the next runs of every definition")
    next_p.add_argument("--count", type=int, default=3)
    next_p.set_defaults(func=run_next)


def _store(settings: Settings) -> ScheduleStore:
    url = resolve_redis_url(settings)
    client = make_redis(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ServiceError(f"cannot reach Redis at {url}: {exc} (quanpai services up, or set "
                           "REDIS_URL)") from None
    return ScheduleStore(client=client, merchant_id=settings.merchant_id)


def _get(store: ScheduleStore, schedule_id: str) -> StoredSchedule:
    try:
        return store.get(schedule_id)
    except UnknownSchedule as exc:
        raise UsageError(str(exc)) from None


def _now(settings: Settings) -> dt.datetime:
    return dt.datetime.now(settings.timezone)


def add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        definition = read_definition_file(args.file,
                                          default_timezone=str(settings.timezone))
    except InvalidDefinition as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    store = _store(settings)
    if not args.replace:
        try:
            store.get(definition.id)
        except UnknownSchedule:
            pass
        else:
            raise UsageError(f"schedule {definition.id!r} exists: use --replace to change it")
    stored = StoredSchedule(definition.id, definition.source, False, _now(settings).date())
    store.put(stored)
    upcoming = next_runs(definition, stored, cursor=store.cursor(definition.id),
                         now=_now(settings), count=1)
    when = upcoming[0].strftime("%Y-%m-%d %H:%M") if upcoming else WORDS.get("none", settings.lang)
    print(f"{definition.id} {WORDS.get('added', settings.lang)}: {definition.name}, "
          f"{definition.trigger.type}; {WORDS.get('next', settings.lang)} {when}")
    return 0


def list_all(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    for stored in store.all():
        definition = definition_of(stored)
        state = WORDS.get("paused" if stored.paused else "active", settings.lang)
        upcoming = next_runs(definition, stored, cursor=store.cursor(stored.id),
                             now=_now(settings), count=1)
        when = upcoming[0].strftime("%Y-%m-%d %H:%M") if upcoming and not stored.paused \
            else "-"
        print(f"{stored.id:<16} {definition.name:<12} {definition.trigger.type:<27} "
              f"{state:<6} {WORDS.get('next', settings.lang)} {when}")
    return 0


def show(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    stored = _get(store, args.schedule_id)
    state = WORDS.get("paused" if stored.paused else "active", settings.lang)
    print(f"{stored.id} ({state}), added {stored.added}")
    print(json.dumps(stored.source, ensure_ascii=False, indent=2))
    print(f"{WORDS.get('runs', settings.lang)}:")
    for run_id in store.run_ids(stored.id)[-20:]:
        record = store.run(run_id)
        print(f"  {run_id}: {record.get('status', '?')}, {record.get('members', '0')} members, "
              f"{record.get('held_out', '0')} held out")
    for skip in store.skipped(stored.id)[:20]:
        print(f"  {WORDS.get('skipped', settings.lang)} {skip['day']}: {skip['reason']}")
    return 0


def _set_paused(args: argparse.Namespace, settings: Settings, paused: bool) -> int:
    store = _store(settings)
    try:
        store.set_paused(args.schedule_id, paused)
    except UnknownSchedule as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.schedule_id} {WORDS.get('paused' if paused else 'resumed', settings.lang)}")
    return 0


def pause(args: argparse.Namespace, settings: Settings) -> int:
    return _set_paused(args, settings, True)


def resume(args: argparse.Namespace, settings: Settings) -> int:
    return _set_paused(args, settings, False)


def delete(args: argparse.Namespace, settings: Settings) -> int:
    try:
        _store(settings).delete(args.schedule_id)
    except UnknownSchedule as exc:
        raise UsageError(str(exc)) from None
    print(f"{args.schedule_id} {WORDS.get('deleted', settings.lang)}")
    return 0


def run_preview(args: argparse.Namespace, settings: Settings) -> int:
    try:
        day = dt.date.fromisoformat(args.date)
    except ValueError:
        raise UsageError(f"--date: expected YYYY-MM-DD, got {args.date!r}") from None
    store = _store(settings)
    definition = definition_of(_get(store, args.schedule_id))
    found = preview(definition, day, store=store, loader=AudienceLoader())
    lang = settings.lang
    print(f"{definition.id} {day}" + (f" ({WORDS.get('occasions', lang)}: "
                                       f"{', '.join(found.occasions)})" if found.occasions
                                       else ""))
    for key in ("in_data", "triggered", "filtered_out", "already_served", "would_send"):
        print(f"  {WORDS.get(key, lang)}: {getattr(found, key):,}")
    if found.members:
        print("  " + " ".join(found.members[: args.limit])
              + (" ..." if len(found.members) > args.limit else ""))
    return 0


def run_next(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(settings)
    now = _now(settings)
    for stored in store.all():
        if stored.paused:
            continue
        definition = definition_of(stored)
        upcoming = next_runs(definition, stored, cursor=store.cursor(stored.id), now=now,
                             count=args.count)
        print(f"{stored.id:<16} " + ", ".join(t.strftime("%Y-%m-%d %H:%M") for t in upcoming))
    return 0
