"""Channels: the provider adapters a campaign sends coupons through, and their simulators.

Map of the package (``specs/channels.md`` is the protocol reference):

- ``base``: the ``Channel`` protocol, ``Message``, ``SendResult`` (sent / failed_permanent /
  failed_retryable / quota_exhausted); ``errors``: ``ChannelUnavailable`` (retry the batch),
  ``ChannelConfigError`` and ``ContentError`` (permanent).
- ``sms`` (+ ``aliyun_signature``): Aliyun SendSms / SendBatchSms.
- ``wechat`` (+ ``wechat_token``): template messages and wxcard mass send;
  the access token shared through Redis.
- ``alipay`` (+ ``alipay_signature``, ``alipay_keys``): voucher send and cash trigger, RSA2.
- ``content``: templates and the checks a campaign's content passes at creation.
- ``routing``: first reachable channel per member, fallback on permanent failure or quota.
- ``ratelimit`` and ``policy``: shared rate limits, quotas, per-number limits, frequency caps
  and quiet hours (Redis, keys ``ch:``), applied by ``LimitedChannel``.
- ``receipts`` and ``callbacks``: provider receipts back to members, as delivered/failed
  events (and the WeChat push signature and XML the simulator shares).
- ``transport``: how clients POST (aiohttp, or the lean HTTP/1.1 pool for per-message paths).
- ``factory``: ``build_channels`` / ``build_callback_receiver`` for composition roots.
- ``simulators`` and ``cli``: strict local simulators, ``quanpai simulate``.
"""
