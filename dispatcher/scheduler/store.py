"""Recurring definitions, run records, served members and skipped runs, in Redis.

Every key of a merchant's scheduler shares one hash tag (``{sched:<merchant>}``), so the scripts
below touch them atomically and a Redis Cluster keeps them in one slot. Writes that matter for
exactly-once (served members, run state, the per-definition cursor) go through scripts that
first check the fencing token of the lease (``lease.py``); a stale holder gets ``Fenced``.

Served members: one hash per (definition, period), member -> ``<day>:<run id>``. A member is
taken by a run only if absent, already taken by that same run (a restarted run keeps its
members), or — for cooldown triggers — taken by a run at least ``cooldown`` days earlier. The
check and the write are one script call per chunk, so two runs can never both take a member.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from dispatcher.scheduler.errors import Fenced, UnknownSchedule

_FENCE = """
local current = redis.call('GET', KEYS[1])
if not current or string.match(current, '^(%d+):') ~= ARGV[1] then return -1 end
"""
_TAKE = _FENCE + """
local run, today, cooldown = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local taken = {}
for i = 5, #ARGV do
  local member = ARGV[i]
  local seen = redis.call('HGET', KEYS[2], member)
  local take = not seen
  if seen then
    local day, by = string.match(seen, '^(%-?%d+):(.*)$')
    take = (by == run) or (cooldown > 0 and tonumber(day) + cooldown <= today)
  end
  if take then
    redis.call('HSET', KEYS[2], member, today .. ':' .. run)
    redis.call('SADD', KEYS[3], member)
    taken[#taken + 1] = member
  end
end
return taken
"""
_HSET = _FENCE + """
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end
return 1
"""
CHUNK = 5000  # members per script call: keeps Redis responsive for the catalog


def text(value: Any) -> str:
    """A Redis reply as text (clients answer bytes unless told to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class StoredSchedule:
    """A definition as stored: its source mapping, paused flag and the day it was added."""

    id: str
    source: dict[str, Any]
    paused: bool
    added: dt.date


class ScheduleStore:
    """The scheduler's state for one merchant."""

    def __init__(self, *, client: redis.Redis, merchant_id: str) -> None:
        self._client = client
        self._prefix = f"{{sched:{merchant_id}}}"
        self.lease_key = f"{self._prefix}:lease"
        self._take = client.register_script(_TAKE)
        self._hset = client.register_script(_HSET)

    def _key(self, part: str) -> str:
        return f"{self._prefix}:{part}"

    # definitions -----------------------------------------------------------------------
    def put(self, schedule: StoredSchedule) -> None:
        """Add or replace a definition."""
        self._client.hset(self._key("defs"), schedule.id, json.dumps({
            "source": schedule.source, "paused": schedule.paused,
            "added": schedule.added.isoformat()}, ensure_ascii=False))

    def get(self, schedule_id: str) -> StoredSchedule:
        """One definition; ``UnknownSchedule`` if nobody added it."""
        raw = self._client.hget(self._key("defs"), schedule_id)
        if raw is None:
            raise UnknownSchedule(schedule_id)
        data = json.loads(raw)
        return StoredSchedule(schedule_id, data["source"], bool(data["paused"]),
                              dt.date.fromisoformat(data["added"]))

    def cursors(self) -> dict[str, dt.date]:
        """Every definition's cursor."""
        raw = self._client.hgetall(self._key("cursor"))
        return {text(k): dt.date.fromisoformat(text(v)) for k, v in raw.items()}

    def all(self) -> list[StoredSchedule]:
        """Every definition, by id."""
        raw = self._client.hgetall(self._key("defs"))
        out = []
        for key, value in sorted((text(k), text(v)) for k, v in raw.items()):
            data = json.loads(value)
            out.append(StoredSchedule(key, data["source"], bool(data["paused"]),
                                      dt.date.fromisoformat(data["added"])))
        return out

    def set_paused(self, schedule_id: str, paused: bool) -> StoredSchedule:
        """Pause or resume a definition."""
        current = self.get(schedule_id)
        updated = StoredSchedule(current.id, current.source, paused, current.added)
        self.put(updated)
        return updated

    def delete(self, schedule_id: str) -> None:
        """Remove a definition (its served records stay, so re-adding it sends nothing twice)."""
        if not self._client.hdel(self._key("defs"), schedule_id):
            raise UnknownSchedule(schedule_id)
        self._client.hdel(self._key("cursor"), schedule_id)

    # fenced writes ---------------------------------------------------------------------
    def _fenced_hset(self, token: int, key: str, fields: dict[str, str], *,
                     listed: str = "") -> None:
        args: list[str] = [str(token), listed]
        for name, value in fields.items():
            args += [name, value]
        if int(self._hset(keys=[self.lease_key, key, self._key("runs")], args=args)) < 0:
            raise Fenced("the scheduler lease moved to another copy; standing by")

    def cursor(self, schedule_id: str) -> dt.date | None:
        """The last day this definition was dealt with (run, skipped or nothing due)."""
        raw = self._client.hget(self._key("cursor"), schedule_id)
        return None if raw is None else dt.date.fromisoformat(text(raw))

    def set_cursor(self, token: int, schedule_id: str, day: dt.date) -> None:
        """Advance a definition's cursor (fenced)."""
        self._fenced_hset(token, self._key("cursor"), {schedule_id: day.isoformat()})

    def take(self, token: int, *, schedule_id: str, period: str, run_id: str, day_number: int,
             cooldown_days: int, members: Sequence[str]) -> list[str]:
        """Record ``members`` as served by ``run_id`` where allowed; returns those taken
        (members already served in this period, or within the cooldown, are not)."""
        served = self._key(f"served:{schedule_id}:{period}")
        run_members = self._key(f"run:{run_id}:members")
        taken: list[str] = []
        for start in range(0, len(members), CHUNK):
            chunk = list(members[start : start + CHUNK])
            result = self._take(keys=[self.lease_key, served, run_members],
                                args=[token, run_id, day_number, cooldown_days, *chunk])
            if isinstance(result, int):
                raise Fenced("the scheduler lease moved to another copy; standing by")
            taken += [text(m) for m in result]
        return taken

    def served_already(self, *, schedule_id: str, period: str, run_id: str, day_number: int,
                       cooldown_days: int, members: Sequence[str]) -> list[bool]:
        """For a preview: which members a run on that day would skip as already served."""
        if not members:
            return []
        seen = self._client.hmget(self._key(f"served:{schedule_id}:{period}"), list(members))
        out = []
        for value in seen:
            if value is None:
                out.append(False)
                continue
            day, _, by = text(value).partition(":")
            out.append(by != run_id and not (cooldown_days and int(day) + cooldown_days
                                             <= day_number))
        return out

    # runs ------------------------------------------------------------------------------
    def run(self, run_id: str) -> dict[str, str]:
        """A run's record (empty if it never started)."""
        raw = self._client.hgetall(self._key(f"run:{run_id}"))
        return {text(k): text(v) for k, v in raw.items()}

    def update_run(self, token: int, run_id: str, **fields: str) -> None:
        """Change fields of a run's record (fenced) and list the run under its definition."""
        self._fenced_hset(token, self._key(f"run:{run_id}"), fields, listed=run_id)

    def run_members(self, run_id: str) -> set[str]:
        """The members a run took."""
        return {text(m) for m in self._client.smembers(self._key(f"run:{run_id}:members"))}

    def run_ids(self, schedule_id: str | None = None) -> list[str]:
        """Every run started, optionally of one definition, in order."""
        ids = [text(r) for r in self._client.zrange(self._key("runs"), 0, -1)]
        return [r for r in ids if schedule_id is None or r.startswith(f"{schedule_id}-")]

    # skipped ---------------------------------------------------------------------------
    def record_skip(self, schedule_id: str, day: dt.date, reason: str) -> None:
        """Remember a run that was not made (too late, calendar unknown), newest first."""
        entry = json.dumps({"schedule": schedule_id, "day": day.isoformat(), "reason": reason},
                           ensure_ascii=False)
        pipe = self._client.pipeline()
        pipe.lpush(self._key("skipped"), entry)
        pipe.ltrim(self._key("skipped"), 0, 999)
        pipe.execute()

    def skipped(self, schedule_id: str | None = None) -> list[dict[str, str]]:
        """Runs not made, newest first."""
        rows = [json.loads(r) for r in self._client.lrange(self._key("skipped"), 0, -1)]
        return [r for r in rows if schedule_id is None or r["schedule"] == schedule_id]

