"""Campaigns and their lifecycle, kept in Redis so every worker host sees the same state.

States::

    draft -> scheduled -> running <-> paused -> completed | completed_with_failures
                  \\__________\\___________\\__-> cancelled

The worker that finishes the last batch completes the campaign (one script: the batch joins
the done set and, when it was the last, the state moves on), so no watcher is needed.
``completed_with_failures`` when a batch went to the dead-letter set or a member failed.
Keys carry the campaign's hash tag (``{cmp:<id>}``) so they live in one Redis Cluster slot.
Progress counts each batch once, however often the broker delivers it, with the batch's
planned size (a batch finished after a deferral counts whole).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

import redis

from dispatcher.errors import CampaignError, CampaignStateError

Status = Literal["draft", "scheduled", "running", "paused", "completed",
                 "completed_with_failures", "cancelled"]
STATUSES: tuple[str, ...] = get_args(Status)
FINAL = ("completed", "completed_with_failures", "cancelled")
# "wechat" sends one template message per member; "wechat_mass" puts the card in the members'
# card packages by mass send (up to 10,000 openids a request, at most 4 a month per member).
CHANNELS = ("wechat", "wechat_mass", "sms", "alipay", "alipay_cash")

# KEYS: done set, processed counter, deferred set, sizes hash, status, dead-letter hash, counts
# ARGV: batch number, size if unknown, total batches
# Marks a batch done once, adds its planned size, and completes the campaign on the last one.
_MARK_DONE = """
redis.call('SREM', KEYS[3], ARGV[1])
local size = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or ARGV[2])
local processed
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  processed = redis.call('INCRBY', KEYS[2], size)
else
  processed = tonumber(redis.call('GET', KEYS[2]) or '0')
end
local status = redis.call('GET', KEYS[5])
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) and
   (status == 'running' or status == 'paused' or status == 'scheduled') then
  local failed = redis.call('HLEN', KEYS[6]) > 0
  if not failed then
    for _, v in ipairs(redis.call('HGETALL', KEYS[7])) do
      if (string.sub(v, 1, 7) == 'failed:' or string.sub(v, 1, 9) == 'in_doubt:') then
        local n = tonumber(redis.call('HGET', KEYS[7], v) or '0')
        if n > 0 then failed = true end
      end
    end
  end
  if failed then status = 'completed_with_failures' else status = 'completed' end
  redis.call('SET', KEYS[5], status)
end
return processed
"""

# KEYS: status. ARGV: new status, then the states it may come from. Returns the old status.
_TRANSITION = """
local old = redis.call('GET', KEYS[1])
if not old then return false end
for i = 2, #ARGV do
  if old == ARGV[i] then
    redis.call('SET', KEYS[1], ARGV[1])
    return old
  end
end
return {err = 'STATE ' .. old}
"""

# Which states an operation may start from.
TRANSITIONS: dict[str, tuple[Status, tuple[Status, ...]]] = {
    "start": ("running", ("draft", "scheduled")),
    "pause": ("paused", ("scheduled", "running")),
    "resume": ("running", ("paused",)),
    "cancel": ("cancelled", ("draft", "scheduled", "running", "paused")),
    "requeue": ("running", ("running", "paused", "completed_with_failures")),
}


@dataclass(frozen=True)
class Campaign:
    """A launched (or drafted) campaign; ``status`` is read from its own key."""

    campaign_id: str
    merchant_id: str
    name: str
    template_id: str
    coupon_title: str
    channels: tuple[str, ...] = ("wechat", "sms")
    holdout_permille: int = 0
    created_at: str = ""
    status: Status = "draft"
    total_batches: int = 0
    total_members: int = 0
    held_out: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [c for c in self.channels if c not in CHANNELS and c != "auto"]
        if unknown:
            raise CampaignError(f"channels: unknown channel {unknown[0]!r} (use {CHANNELS})")
        if not 0 <= self.holdout_permille <= 500:
            raise CampaignError("holdout_permille: must be between 0 and 500")


@dataclass(frozen=True)
class Progress:
    batches_done: int
    members_processed: int
    batches_deferred: int  # waiting for a later window; not done yet
    dead_letters: int = 0
    counts: dict[str, int] = field(default_factory=dict)  # "sent:sms" -> n, "in_doubt:wechat"
    # delivery receipts: "delivered:sms" -> n, "undelivered:wechat_mass" -> n
    receipts: dict[str, int] = field(default_factory=dict)


def _key(campaign_id: str, part: str) -> str:
    return f"{{cmp:{campaign_id}}}:{part}"


def sent_key(campaign_id: str, batch_no: int) -> str:
    """Hash of the members of one batch whose message is settled (member -> outcome)."""
    return _key(campaign_id, f"sent:{batch_no}")


def wal_key(campaign_id: str, batch_no: int) -> str:
    """Hash of provider calls about to leave (member -> ``channel|first attempt epoch``)."""
    return _key(campaign_id, f"wal:{batch_no}")


def counts_key(campaign_id: str) -> str:
    """Per-channel outcome counts (``sent:sms``, ``failed:wechat``, ``in_doubt:sms``)."""
    return _key(campaign_id, "counts")


def receipts_key(campaign_id: str) -> str:
    """Per-channel delivery receipt counts (``delivered:sms``, ``undelivered:wechat_mass``),
    apart from ``counts_key``: a receipt is about a member already counted as sent."""
    return _key(campaign_id, "receipts")


def dead_letter_key(campaign_id: str) -> str:
    """Dead-letter hash: batch number -> JSON {reason, members}."""
    return _key(campaign_id, "dead")


class CampaignStore:
    def __init__(self, *, client: redis.Redis) -> None:
        self._client = client
        self._mark_done = client.register_script(_MARK_DONE)
        self._transition = client.register_script(_TRANSITION)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def save(self, campaign: Campaign) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.set(_key(campaign.campaign_id, "meta"), json.dumps(asdict(campaign)))
        pipe.set(_key(campaign.campaign_id, "status"), campaign.status)
        pipe.sadd("cmp:index", campaign.campaign_id)
        pipe.execute()

    def save_sizes(self, campaign_id: str, sizes: list[int]) -> None:
        """The planned size of every batch, so a batch counts whole however it finishes."""
        if sizes:
            self._client.hset(_key(campaign_id, "sizes"),
                              mapping={str(i): n for i, n in enumerate(sizes)})

    def get(self, campaign_id: str) -> Campaign:
        values: Any = self._client.mget([_key(campaign_id, "meta"), _key(campaign_id, "status")])
        raw, status = values
        if raw is None:
            raise CampaignError(f"campaign {campaign_id!r} does not exist")
        data = json.loads(raw)
        data["channels"] = tuple(data["channels"])
        if status is not None:
            data["status"] = status.decode()
        return Campaign(**data)

    def status(self, campaign_id: str) -> str:
        """The campaign's state alone (one GET: workers read it before each provider call)."""
        raw: Any = self._client.get(_key(campaign_id, "status"))
        return raw.decode() if raw is not None else ""

    def list_ids(self) -> list[str]:
        """Every campaign id, newest first (ids start with the local start time)."""
        ids: Any = self._client.smembers("cmp:index")
        return sorted((m.decode() for m in ids), reverse=True)

    def update(self, campaign_id: str, **changes: Any) -> Campaign:
        campaign = replace(self.get(campaign_id), **changes)
        self.save(campaign)
        return campaign

    def transition(self, campaign_id: str, operation: str) -> str:
        """Apply ``operation`` (start, pause, resume, cancel, requeue); returns the new state.
        Raises ``CampaignStateError`` when the campaign's state does not allow it."""
        new, allowed = TRANSITIONS[operation]
        try:
            old = self._transition(keys=[_key(campaign_id, "status")], args=[new, *allowed])
        except redis.ResponseError as exc:
            current = str(exc).removeprefix("STATE ").strip()
            raise CampaignStateError(
                f"campaign {campaign_id} is {current}: cannot {operation} it "
                f"(only from {', '.join(allowed)})") from None
        if old is None:
            raise CampaignError(f"campaign {campaign_id!r} does not exist")
        return new

    def mark_batch_done(self, campaign_id: str, batch_no: int, size: int,
                        total_batches: int) -> int:
        """Record a finished batch (completing the campaign on the last one); returns members
        processed so far."""
        keys = [_key(campaign_id, "done"), _key(campaign_id, "processed"),
                _key(campaign_id, "deferred"), _key(campaign_id, "sizes"),
                _key(campaign_id, "status"), dead_letter_key(campaign_id),
                counts_key(campaign_id)]
        return int(self._mark_done(keys=keys, args=[batch_no, size, total_batches]))

    def mark_batch_deferred(self, campaign_id: str, batch_no: int, *, until: datetime,
                            reason: str) -> None:
        """Part of a batch waits for a later window (quiet hours, tomorrow's quota)."""
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(_key(campaign_id, "deferred"), batch_no)
        pipe.hset(_key(campaign_id, "deferred_why"), str(batch_no),
                  json.dumps({"reason": reason, "until": until.isoformat()}))
        pipe.execute()

    def deferrals(self, campaign_id: str) -> dict[int, dict[str, str]]:
        """Deferred batches still waiting: batch number -> {reason, until}."""
        waiting = {int(b) for b in self._client.smembers(_key(campaign_id, "deferred"))}
        why = self._client.hgetall(_key(campaign_id, "deferred_why"))
        return {int(k): json.loads(v) for k, v in why.items() if int(k) in waiting}

    def dead_letter(self, campaign_id: str, batch_no: int, *, reason: str,
                    members: list[list[str]]) -> None:
        """Put a batch that cannot finish into the dead-letter set (its members failed)."""
        self._client.hset(dead_letter_key(campaign_id), str(batch_no),
                          json.dumps({"reason": reason, "members": members}, ensure_ascii=False))

    def dead_letters(self, campaign_id: str) -> dict[int, dict[str, Any]]:
        """Batch number -> {reason, members} of the dead-lettered batches."""
        raw = self._client.hgetall(dead_letter_key(campaign_id))
        return {int(k): json.loads(v) for k, v in raw.items()}

    def take_for_requeue(self, campaign_id: str, batch_no: int) -> None:
        """Forget a dead-lettered batch's end (done mark, failures) so it can run again."""
        sent: Any = self._client.hgetall(sent_key(campaign_id, batch_no))
        failed = [m for m, v in sent.items() if v.startswith(b"x:")]
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(dead_letter_key(campaign_id), str(batch_no))
        pipe.srem(_key(campaign_id, "done"), batch_no)
        pipe.decrby(_key(campaign_id, "processed"),
                    int(self._client.hget(_key(campaign_id, "sizes"), str(batch_no)) or 0))
        for member in failed:
            channel = sent[member].decode().split(":")[1]
            pipe.hincrby(counts_key(campaign_id), f"failed:{channel}", -1)
        if failed:
            pipe.hdel(sent_key(campaign_id, batch_no), *failed)
        pipe.execute()

    def progress(self, campaign_id: str) -> Progress:
        pipe = self._client.pipeline(transaction=False)
        pipe.scard(_key(campaign_id, "done"))
        pipe.get(_key(campaign_id, "processed"))
        pipe.scard(_key(campaign_id, "deferred"))
        pipe.hlen(dead_letter_key(campaign_id))
        pipe.hgetall(counts_key(campaign_id))
        pipe.hgetall(receipts_key(campaign_id))
        done, processed, deferred, dead, counts, receipts = pipe.execute()
        return Progress(int(done), int(processed or 0), int(deferred), int(dead),
                        {k.decode(): int(v) for k, v in counts.items() if int(v)},
                        {k.decode(): int(v) for k, v in receipts.items() if int(v)})


def new_campaign_id(now: datetime) -> str:
    """Sortable, readable ids: the local start time plus a random suffix."""
    return now.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
