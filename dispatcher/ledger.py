"""At most one message per member and channel, whatever crashes: a write-ahead record of every
provider request, its outcome right after, and resolution of the calls a crash left open.

Per batch two hashes (``dispatcher.campaigns``): ``wal`` holds ``<member>|<channel>`` -> the
epoch of the first attempt, written before a request leaves; ``sent`` holds the member's settled
outcome (``<channel>`` sent, ``x:<channel>:<code>`` failed, ``?:<channel>`` in doubt), written
with its event in one transaction right after the answer. A member with a ``wal`` entry and no
outcome had a call in flight when its worker died (or timed out); before anything is resent:

- SMS (Aliyun ``SendSms`` is not idempotent; ``OutId`` is only a tag): ``QuerySendDetails`` by
  phone and day, matched on the campaign's ``OutId`` prefix. Found: sent. Not found: the request
  never reached Aliyun, resend. Query failed: ``in_doubt``.
- WeChat template (``client_msg_id``, 10 min), WeChat mass (``clientmsgid``, 24 h) and Alipay
  (``out_biz_no``): resend with the same key while the first attempt is inside the provider's
  dedupe window (less a margin); past it, ``in_doubt`` (no query API says what happened).

``in_doubt`` members get an ``in_doubt`` event and a count; they are never resent blindly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, cast

import redis

from analytics.events import Event
from analytics.stream import RedisStreamSink
from channels.base import Message, SendResult
from dispatcher.campaigns import counts_key, sent_key, wal_key

KEEP_S = 14 * 86_400
MARGIN_S = 60.0  # resend inside a dedupe window only with this much of it left
DEDUPE_WINDOW_S: dict[str, float] = {
    "wechat": 600.0, "wechat_mass": 86_400.0, "alipay": 86_400.0, "alipay_cash": 86_400.0,
}

# KEYS: sent hash, counts hash. ARGV: member, outcome pairs. Moves each member's count from its
# old outcome class to the new one, so counts stay exact under redelivery. A first outcome (the
# usual case) is one HSETNX; the counts move once per class, not once per member.
_SETTLE = """
local classes, moved = {}, {}
local function class(v)
  local c = classes[v]
  if c then return c end
  local head, ch = string.match(v, '^([x?]):([^:]+)')
  if head == 'x' then c = 'failed:' .. ch
  elseif head == '?' then c = 'in_doubt:' .. ch
  elseif string.sub(v, 1, 2) == '-:' then c = 'skipped:' .. string.sub(v, 3)
  else c = 'sent:' .. v end
  classes[v] = c
  return c
end
local function move(c, n) moved[c] = (moved[c] or 0) + n end
for i = 1, #ARGV, 2 do
  local member, new = ARGV[i], ARGV[i + 1]
  if redis.call('HSETNX', KEYS[1], member, new) == 1 then
    move(class(new), 1)
  else
    local old = redis.call('HGET', KEYS[1], member)
    if old ~= new then
      move(class(old), -1)
      redis.call('HSET', KEYS[1], member, new)
      move(class(new), 1)
    end
  end
end
for c, n in pairs(moved) do
  if n ~= 0 then redis.call('HINCRBY', KEYS[2], c, n) end
end
redis.call('EXPIRE', KEYS[1], 1209600)
return 1
"""

Resolution = Literal["sent", "not_sent", "unknown"]


class Resolver(Protocol):
    """A channel that can tell whether a call that may have left reached the member (SMS)."""

    async def resolve(self, messages: Sequence[Message]) -> list[Resolution]: ...


EventMaker = Callable[[str, str, str, str], Event]  # (kind, member, channel, reason) -> Event


class BatchLedger:
    """The write-ahead and outcome records of one batch; also the router's ``SendHooks``."""

    def __init__(self, *, client: redis.Redis, events: RedisStreamSink, campaign_id: str,
                 batch_no: int, make_event: EventMaker,
                 gate: Callable[[], bool] = lambda: True,
                 on_before: Callable[[str], None] = lambda channel: None,
                 on_after: Callable[[str], None] = lambda channel: None,
                 throttle: Callable[[int], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._events = events
        self._wal = wal_key(campaign_id, batch_no)
        self._sent = sent_key(campaign_id, batch_no)
        self._counts = counts_key(campaign_id)
        self._settle = client.register_script(_SETTLE)
        self._make_event = make_event
        self._gate = gate
        self._on_before = on_before
        self._on_after = on_after
        self._throttle = throttle
        self._clock = clock
        self._recorded: set[str] = set()  # wal fields known to exist (read by open_calls)

    def settled(self, member_ids: Sequence[str]) -> dict[str, str]:
        """Members of ``member_ids`` whose outcome is recorded -> that outcome."""
        if not member_ids:
            return {}
        values: list[Any] = self._client.hmget(self._sent, list(member_ids))
        return {m: v.decode() for m, v in zip(member_ids, values, strict=True) if v is not None}

    def open_calls(self) -> dict[str, dict[str, float]]:
        """Member -> {channel: first attempt epoch} of the calls recorded as leaving."""
        out: dict[str, dict[str, float]] = {}
        raw: Any = self._client.hgetall(self._wal)
        self._recorded = {field.decode() for field in raw}
        for field, value in raw.items():
            member, _, channel = field.decode().rpartition("|")
            out.setdefault(member, {})[channel] = float(value)
        return out

    def settle(self, outcomes: Mapping[str, str], events: Sequence[Event]) -> None:
        """Record outcomes (member -> outcome) and their events in one transaction."""
        if not outcomes and not events:
            return
        pipe = self._client.pipeline(transaction=True)
        if outcomes:
            args: list[str] = [x for pair in outcomes.items() for x in pair]
            self._settle(keys=[self._sent, self._counts], args=args, client=pipe)
        self._events.emit_in(pipe, list(events))
        pipe.execute()

    def forget(self, member: str, channel: str) -> None:
        """The call to ``member`` on ``channel`` certainly did not reach the provider."""
        self._client.hdel(self._wal, f"{member}|{channel}")
        self._recorded.discard(f"{member}|{channel}")

    # The router's hooks. They use the synchronous client on the shared event loop: one short
    # Redis round trip per provider request, which must be durable before the request leaves.
    async def before(self, channel: str, messages: Sequence[Message]) -> bool:
        if not self._gate():
            return False
        if self._throttle is not None:
            await self._throttle(len(messages))
            if not self._gate():  # paused or cancelled while waiting for the rate
                return False
        # One HSET of the calls not yet recorded: an open call keeps its first attempt's time
        # (the dedupe windows count from it). The batch lease makes this worker the only
        # writer, so what ``open_calls`` read stays true.
        stamp = f"{self._clock():.3f}"
        fields = {f"{m.member_id}|{channel}": stamp for m in messages}
        fresh = {k: v for k, v in fields.items() if k not in self._recorded}
        if fresh:
            pipe = self._client.pipeline(transaction=False)
            pipe.hset(self._wal, mapping=cast("Mapping[Any, Any]", fresh))
            pipe.expire(self._wal, KEEP_S)
            pipe.execute()
            self._recorded.update(fresh)
        self._on_before(channel)
        return True

    async def after(self, channel: str, messages: Sequence[Message],
                    results: Sequence[SendResult]) -> None:
        self._on_after(channel)
        outcomes = {r.member_id: channel for r in results if r.status == "sent"}
        events = [self._make_event("sent", r.member_id, channel, "") for r in results
                  if r.status == "sent"]
        self.settle(outcomes, events)
        # A definite refusal never reached a member: the call is closed. Timeouts and network
        # errors stay open, to be resolved before a resend.
        closed = [f"{r.member_id}|{channel}" for r in results
                  if r.status != "sent" and r.code not in ("timeout", "network")]
        if closed:
            self._client.hdel(self._wal, *closed)
            self._recorded.difference_update(closed)


async def resolve_open_calls(
    ledger: BatchLedger, open_calls: Mapping[str, Mapping[str, float]],
    messages: Mapping[str, Mapping[str, Message]], *, resolvers: Mapping[str, Resolver],
    now: float,
) -> tuple[dict[str, str], dict[str, str]]:
    """Decide each open call: returns (settled member -> outcome, in-doubt member -> channel).
    Members in neither may be sent (again, with the same key where the provider dedupes).
    ``messages`` is member -> channel -> the message that would be sent there."""
    sent: dict[str, str] = {}
    doubt: dict[str, str] = {}
    to_query: dict[str, list[Message]] = {}
    for member, calls in open_calls.items():
        for channel, first in calls.items():
            message = messages.get(member, {}).get(channel)
            if channel in DEDUPE_WINDOW_S:
                if now - first > DEDUPE_WINDOW_S[channel] - MARGIN_S:
                    doubt[member] = channel
                continue  # inside the window: the same key makes a resend safe
            if channel in resolvers and message is not None:
                to_query.setdefault(channel, []).append(message)
            else:
                doubt[member] = channel
    for channel, batch in to_query.items():
        answers = await resolvers[channel].resolve(batch)
        for message, answer in zip(batch, answers, strict=True):
            if answer == "sent":
                sent[message.member_id] = channel
            elif answer == "unknown":
                doubt[message.member_id] = channel
            else:
                ledger.forget(message.member_id, channel)
    for member in sent:
        doubt.pop(member, None)
    return sent, doubt
