"""Campaign definitions and progress, kept in Redis so every worker host sees the same state.

Keys carry the campaign's hash tag (``{cmp:<id>}``) so they live in one Redis Cluster slot.
Progress counts each batch once, however often the broker delivers it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import redis

from dispatcher.errors import CampaignError

Status = Literal["draft", "running", "done", "cancelled"]
# "wechat" sends one template message per member; "wechat_mass" puts the card in the members'
# card packages by mass send (up to 10,000 openids a request, at most 4 a month per member).
CHANNELS = ("wechat", "wechat_mass", "sms", "alipay")

# Marks a batch done and adds its size to the processed count, once per batch.
_MARK_DONE = """
redis.call('SREM', KEYS[3], ARGV[1])
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  return redis.call('INCRBY', KEYS[2], ARGV[2])
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


@dataclass(frozen=True)
class Campaign:
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
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown:
            raise CampaignError(f"channels: unknown channel {unknown[0]!r} (use {CHANNELS})")
        if not 0 <= self.holdout_permille <= 500:
            raise CampaignError("holdout_permille: must be between 0 and 500")


@dataclass(frozen=True)
class Progress:
    batches_done: int
    members_processed: int
    batches_deferred: int  # waiting for a later window; not done yet


def _key(campaign_id: str, part: str) -> str:
    return f"{{cmp:{campaign_id}}}:{part}"


def sent_key(campaign_id: str, batch_no: int) -> str:
    """Hash of the members of one batch already handed to a provider (member -> channel)."""
    return _key(campaign_id, f"sent:{batch_no}")


class CampaignStore:
    def __init__(self, *, client: redis.Redis) -> None:
        self._client = client
        self._mark_done = client.register_script(_MARK_DONE)

    def save(self, campaign: Campaign) -> None:
        self._client.set(_key(campaign.campaign_id, "meta"), json.dumps(asdict(campaign)))

    def get(self, campaign_id: str) -> Campaign:
        raw = self._client.get(_key(campaign_id, "meta"))
        if raw is None:
            raise CampaignError(f"campaign {campaign_id!r} does not exist")
        data = json.loads(raw)
        data["channels"] = tuple(data["channels"])
        return Campaign(**data)

    def update(self, campaign_id: str, **changes: Any) -> Campaign:
        campaign = replace(self.get(campaign_id), **changes)
        self.save(campaign)
        return campaign

    def mark_batch_done(self, campaign_id: str, batch_no: int, size: int) -> int:
        """Record a finished batch; returns members processed so far."""
        keys = [_key(campaign_id, "done"), _key(campaign_id, "processed"),
                _key(campaign_id, "deferred")]
        return int(self._mark_done(keys=keys, args=[batch_no, size]))

    def mark_batch_deferred(self, campaign_id: str, batch_no: int) -> None:
        """Part of a batch waits for a later window (quiet hours, tomorrow's quota)."""
        self._client.sadd(_key(campaign_id, "deferred"), batch_no)

    def progress(self, campaign_id: str) -> Progress:
        pipe = self._client.pipeline(transaction=False)
        pipe.scard(_key(campaign_id, "done"))
        pipe.get(_key(campaign_id, "processed"))
        pipe.scard(_key(campaign_id, "deferred"))
        done, processed, deferred = pipe.execute()
        return Progress(int(done), int(processed or 0), int(deferred))


def new_campaign_id(now: datetime) -> str:
    """Sortable, readable ids: the local start time plus a random suffix."""
    import secrets

    return now.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
