"""Alipay voucher send against the gateway simulator: vouchers/second and client CPU per
voucher, next to the cost of the RSA-2048 SHA256 signatures the client made in the same run
(measured inside the run with the thread's CPU clock, so both figures see the same machine
load). Target: the whole client path costs at most 15% more than its signing.
Simulator CPU (it verifies and signs too) is reported apart."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from bench.report import Result
from bench.scenarios.channels_sms import Harness, drive, results
from channels.base import Channel, Message

SIZES = {"quick": 2_000, "full": 20_000}
BATCH = 200


class TimedKey:
    """Wraps the app private key; adds up the CPU its ``sign`` calls take."""

    def __init__(self, key: Any) -> None:
        self._key = key
        self.cpu_s = 0.0
        self.calls = 0

    def sign(self, *args: Any) -> bytes:
        started = time.thread_time()
        signature: bytes = self._key.sign(*args)
        self.cpu_s += time.thread_time() - started
        self.calls += 1
        return signature


def run(*, size: str) -> list[Result]:
    count = SIZES[size]
    messages = [Message(member_id=f"M{i:08d}", address=f"2088{i:012d}", coupon_code=f"C{i}",
                        idempotency_key=f"bench_M{i:08d}", variables={"coupon": "满100减20券"},
                        campaign_id="bench") for i in range(count)]
    timed: list[TimedKey] = []

    async def instrument(channel: Channel) -> None:
        inner: Any = getattr(channel, "inner", channel)
        key = TimedKey(inner._keys.app_private)
        inner._keys = replace(inner._keys, app_private=key)
        timed.append(key)

    with Harness() as harness:
        drive(harness, "alipay", [messages[:BATCH]])  # connections and key loading
        measured = drive(harness, "alipay", [messages[i:i + BATCH]
                                             for i in range(BATCH, count, BATCH)],
                         before=instrument)
    expected = count - BATCH
    if measured.count != expected:
        raise RuntimeError(f"only {measured.count} of {expected} vouchers were sent")
    sign_us = timed[0].cpu_s / timed[0].calls * 1e6
    client_us = measured.client_cpu_s / measured.count * 1e6
    return [
        *results("channels_alipay", "voucher", measured, target_us=None),
        Result("channels_alipay", "RSA-2048 SHA256 sign (same run)", round(sign_us, 1), "µs"),
        Result("channels_alipay", "client CPU per voucher over its signing cost",
               round((client_us / sign_us - 1) * 100, 1), "%", target=15.0),
    ]
