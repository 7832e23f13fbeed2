"""WeChat template messages against the simulator: messages/second and client CPU per message
(one HTTP call per member; token from Redis; receipt index; daily quota and rate limiter), plus
a mass send of a card to 10,000 openids per call. Simulator CPU is reported apart."""

from __future__ import annotations

from bench.report import Result
from bench.scenarios.channels_sms import BATCH, Harness, drive, results
from channels.base import Message

SIZES = {"quick": 10_000, "full": 100_000}  # full = one account's default daily quota
MASS_SIZES = {"quick": 20_000, "full": 200_000}
VARIABLES = {"name": "会员", "coupon": "满100减20券", "code": "QP7K2M9X4B6N8R3T",
             "value": "20元", "expiry": "2026-12-31",
             "store": "南京西路店", "link": "https://m.example.cn/c/1"}


def _messages(count: int, prefix: str) -> list[Message]:
    return [Message(member_id=f"M{i:08d}", address=f"o{prefix}{i:010d}AbCdEfGhIjKlMn",
                    coupon_code=f"C{i}", idempotency_key=f"{prefix}:M{i:08d}",
                    variables=VARIABLES, campaign_id="bench") for i in range(count)]


def run(*, size: str) -> list[Result]:
    count, mass_count = SIZES[size], MASS_SIZES[size]
    template = _messages(count, "tpl")
    batch = min(BATCH, 500)
    mass = _messages(mass_count, "mass")
    with Harness() as harness:
        measured = drive(harness, "wechat", [template[i:i + batch]
                                             for i in range(0, count, batch)], parallel=2)
        mass_run = drive(harness, "wechat_mass", [mass[i:i + 10_000]
                                                  for i in range(0, mass_count, 10_000)])
    if measured.count != count or mass_run.count != mass_count:
        raise RuntimeError(f"sent {measured.count}/{count} templates, "
                           f"{mass_run.count}/{mass_count} mass recipients")
    return (results("channels_wechat", "template message", measured, target_us=50.0)
            + results("channels_wechat", "mass-send recipient", mass_run, target_us=None))
