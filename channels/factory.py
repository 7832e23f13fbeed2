"""Build the channel clients of one process from ``Settings`` (called by composition roots)."""

from __future__ import annotations

from dataclasses import replace

import aiohttp

from analytics.events import EventSink
from channels.alipay import AlipayCashChannel, AlipayConfig, AlipayVoucherChannel
from channels.alipay_keys import load_keys
from channels.base import Channel, RedisClient
from channels.callbacks import CallbackReceiver
from channels.content import DEFAULT_WECHAT
from channels.policy import LimitedChannel
from channels.ratelimit import DailyQuota, FrequencyCap, QuietHours, RateLimiter, RollingLimit
from channels.receipts import ReceiptIndex
from channels.sms import AliyunSmsChannel, SmsConfig, TimeoutLedger
from channels.transport import LeanPoster, origin_of, pipelining_allowed
from channels.wechat import WeChatConfig, WeChatMassCardChannel, WeChatTemplateChannel
from channels.wechat_token import TokenConfig, TokenManager
from infra.errors import SettingsError
from infra.settings import Settings

# Aliyun's documented SendSms limit per account (spec §3.1); WeChat and Alipay rates are
# settings (WECHAT_REQUESTS_PER_S, ALIPAY_REQUESTS_PER_S).
SMS_REQUESTS_PER_S = 5000.0


def sms_config(settings: Settings) -> SmsConfig:
    s = settings.sms
    return SmsConfig(base_url=s.base_url, access_key_id=s.access_key_id,
                     access_key_secret=s.access_key_secret, sign_name=s.sign_name,
                     template_code=s.template_code)


def wechat_config(settings: Settings) -> WeChatConfig:
    w = settings.wechat
    return WeChatConfig(base_url=w.base_url, card_id=w.card_id,
                        template=replace(DEFAULT_WECHAT, template_id=w.template_id))


def build_callback_receiver(settings: Settings, *, redis: RedisClient,
                            sink: EventSink) -> CallbackReceiver:
    """The receiver for provider callbacks (mount with ``channels.callbacks.add_routes``)."""
    return CallbackReceiver(
        sink=sink, merchant_id=settings.merchant_id,
        sms_index=ReceiptIndex(redis=redis, channel="sms"),
        wechat_index=ReceiptIndex(redis=redis, channel="wechat"),
        alipay_index=ReceiptIndex(redis=redis, channel="alipay"),
        wechat_token=settings.wechat.callback_token,
        alipay_public=load_keys(settings).alipay_public)


def build_channels(settings: Settings, *, session: aiohttp.ClientSession,
                   redis: RedisClient, frequency_cap: int = 0) -> dict[str, Channel]:
    """The channels keyed ``"sms"``, ``"wechat"`` (template messages), ``"wechat_mass"``
    (card mass send), ``"alipay"`` (voucher) and ``"alipay_cash"`` (red packet), sharing
    ``session`` and ``redis`` (tokens, rate limits, quotas and receipt lookups live there).

    Shared limits wrap them (``channels.policy.LimitedChannel``): the WeChat daily quota, SMS
    quiet hours and the optional per-number limit, and with ``frequency_cap`` > 0 at most that
    many messages per member per merchant-local day across all channels.
    Raises ``SettingsError`` for an unusable limit setting."""
    w, s, a, tz = settings.wechat, settings.sms, settings.alipay, settings.timezone
    try:
        quiet = QuietHours.parse(s.quiet_hours, tz)
    except ValueError as exc:
        raise SettingsError(f"SMS_QUIET_HOURS: {exc}") from None
    if s.per_number_daily < 0:
        raise SettingsError("SMS_PER_NUMBER_DAILY must be zero (off) or a positive integer")
    cap = FrequencyCap(redis=redis, limit=frequency_cap, tz=tz) if frequency_cap > 0 else None
    tokens = TokenManager(config=TokenConfig(base_url=w.base_url, appid=w.appid,
                                             secret=w.secret),
                          session=session, redis=redis)
    wechat_rate = RateLimiter(redis=redis, name=f"wechat:{w.appid}", rate=w.requests_per_s)
    wechat_receipts = ReceiptIndex(redis=redis, channel="wechat")
    sms = AliyunSmsChannel(
        config=sms_config(settings), session=session,
        receipts=ReceiptIndex(redis=redis, channel="sms"), timeouts=TimeoutLedger(redis=redis),
        rate=RateLimiter(redis=redis, name=f"sms:{s.access_key_id}", rate=SMS_REQUESTS_PER_S))
    per_number = RollingLimit(redis=redis, name=f"sms:{s.sign_name}:{s.template_code}",
                              limit=s.per_number_daily) if s.per_number_daily else None
    # per-message hot paths (WeChat template send, Alipay gateway); pipelined only where allowed
    lean = LeanPoster(pipelined=frozenset(
        origin_of(c.base_url) for c in (w, a) if pipelining_allowed(c.base_url, c.pipelining)))
    template = WeChatTemplateChannel(config=wechat_config(settings), session=session,
                                     tokens=tokens, receipts=wechat_receipts, rate=wechat_rate,
                                     poster=lean)
    mass = WeChatMassCardChannel(config=wechat_config(settings), session=session,
                                 tokens=tokens, receipts=wechat_receipts, rate=wechat_rate)
    keys = load_keys(settings)
    alipay_config = AlipayConfig(base_url=a.base_url, app_id=a.app_id,
                                 voucher_template_id=a.voucher_template_id, crowd_no=a.crowd_no)
    alipay_rate = RateLimiter(redis=redis, name=f"alipay:{a.app_id}", rate=a.requests_per_s)
    voucher = AlipayVoucherChannel(config=alipay_config, keys=keys, session=session,
                                   rate=alipay_rate, poster=lean,
                                   receipts=ReceiptIndex(redis=redis, channel="alipay"))
    cash = AlipayCashChannel(config=alipay_config, keys=keys, session=session, rate=alipay_rate,
                             poster=lean)
    quota = DailyQuota(redis=redis, name=f"wechat:{w.appid}", limit=w.daily_quota, tz=tz)
    return {
        "sms": LimitedChannel(sms, quiet=quiet, per_address=per_number, frequency=cap, tz=tz),
        "wechat": LimitedChannel(template, quota=quota, frequency=cap, tz=tz),
        "wechat_mass": LimitedChannel(mass, frequency=cap, tz=tz),
        "alipay": LimitedChannel(voucher, frequency=cap, tz=tz),
        "alipay_cash": LimitedChannel(cash, frequency=cap, tz=tz),
    }
