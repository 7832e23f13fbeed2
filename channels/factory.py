"""Build the channel clients of one process from ``Settings`` (called by composition roots)."""

from __future__ import annotations

import aiohttp
import redis.asyncio

from channels.base import Channel
from channels.receipts import ReceiptIndex
from channels.sms import AliyunSmsChannel, SmsConfig
from infra.settings import Settings


def sms_config(settings: Settings) -> SmsConfig:
    s = settings.sms
    return SmsConfig(base_url=s.base_url, access_key_id=s.access_key_id,
                     access_key_secret=s.access_key_secret, sign_name=s.sign_name,
                     template_code=s.template_code)


def build_channels(settings: Settings, *, session: aiohttp.ClientSession,
                   redis: redis.asyncio.Redis) -> dict[str, Channel]:
    """The channels keyed ``"sms"``, ``"wechat"``, ``"alipay"``, sharing ``session`` and
    ``redis`` (tokens, rate limits, quotas and receipt lookups live there)."""
    channels: dict[str, Channel] = {
        "sms": AliyunSmsChannel(config=sms_config(settings), session=session,
                                receipts=ReceiptIndex(redis=redis, channel="sms")),
    }
    return channels
