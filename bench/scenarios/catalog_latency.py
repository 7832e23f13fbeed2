"""Catalog API latency at a sustained request rate: quote over a 20-coupon wallet, redemption.

``quanpai serve`` runs in its own process(es) on a private Redis with AOF on; an open-loop load
generator runs in another process: request i is due at ``start + i / rate`` whatever happened
to earlier requests, and its latency counts from that due time, so a stall shows up in the
percentiles instead of silently lowering the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.report import Result

SECRET = "bench-secret"
MERCHANT = "bench"
RATE = 2000
LIGHT_RATE = 500  # what this 2-core machine sustains beside its own load generator
SECONDS = {"quick": 5, "full": 20}
WALLET_MEMBERS = 500


def _seed(redis_url: str, redemptions: int) -> tuple[list[str], list[str]]:
    """20 templates held by every wallet member; single-use codes for the redemption run."""
    import redis

    from catalog.issuance import issue_batch
    from catalog.templates import CouponTemplate, save_template

    client = redis.Redis.from_url(redis_url)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    members = [f"W{i:05d}" for i in range(WALLET_MEMBERS)]
    for i in range(20):
        kind = ("threshold", "discount", "cash", "exchange")[i % 4]
        fields: dict[str, Any] = {  # type: ignore[assignment]
            "threshold": {"threshold_fen": 5000 + 1000 * i, "discount_fen": 500 + 100 * i},
            "discount": {"rate_permille": 900 - 10 * i, "cap_fen": 3000},
            "cash": {"discount_fen": 200 + 50 * i},
            "exchange": {"item_sku": "SKU1"},
        }[kind]
        template = CouponTemplate.from_json({
            "merchant_id": MERCHANT, "kind": kind, "name": f"券{i}",
            "total_stock": WALLET_MEMBERS, "valid_days": 30, "stacking_group": f"g{i % 5}",
            "exclusive": i == 7, **fields})
        tid = save_template(client, template)
        issue_batch(client, merchant_id=MERCHANT, campaign_id="wallets", template_id=tid,
                    member_ids=members, now=now, secret=SECRET.encode())
    tid = save_template(client, CouponTemplate(
        merchant_id=MERCHANT, kind="cash", name="代金", total_stock=redemptions,
        discount_fen=500, valid_days=30))
    codes: list[str] = []
    for start in range(0, redemptions, 2000):
        ids = [f"R{i:07d}" for i in range(start, min(start + 2000, redemptions))]
        codes += [c.code for c in issue_batch(
            client, merchant_id=MERCHANT, campaign_id="redeem", template_id=tid,
            member_ids=ids, now=now, secret=SECRET.encode())]
    client.close()
    return members, codes


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight at a time.

    The generator shares the machine's two cores with the API and Redis; a client session costs
    it about 0.24 ms of CPU per request, this bare protocol a fraction of that, so the API gets
    the cores it would have on its own. Responses are parsed for real (status line and
    ``Content-Length`` body); anything else counts as an error."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.need = -1  # bytes of the whole response once its head has been read
        self.status = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            self.status = int(head[9:12])
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self._fail(ConnectionError("response without Content-Length"))
                return
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17:stop if stop > 0 else len(head)])
            self.need = end + 4 + length
        if len(buffer) >= self.need:
            del buffer[:self.need]
            self.need = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self.status)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection closed"))


async def _load(url: str, token: str, kind: str, rate: int, seconds: float,
                items: list[str], tag: str) -> dict[str, Any]:
    from urllib.parse import urlsplit

    count = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    target = urlsplit(url)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    opened: list[_Connection] = []
    limit = asyncio.Semaphore(512)  # connections at most, as the client session had

    def describe(i: int) -> tuple[str, dict[str, Any], dict[str, str]]:
        if kind == "quote":
            return "/v1/checkout/quote", {
                "member_id": random.choice(items), "store_id": "S1", "order_id": f"Q{i}",
                "lines": [{"sku": "SKU1", "category": "c1", "quantity": 1,
                           "unit_price_fen": 3000},
                          {"sku": "SKU2", "category": "c2", "quantity": 2,
                           "unit_price_fen": 4500},
                          {"sku": "SKU3", "category": "c1", "quantity": 1,
                           "unit_price_fen": 1200}]}, {}
        return "/v1/redemptions", {"code": items[i], "order_id": f"{tag}-{i}",
                                   "store_id": "S1", "amount_fen": 2000}, {
            "Idempotency-Key": f"{tag}-{i}"}

    def request(i: int) -> bytes:
        path, body, extra = describe(i)
        raw = json.dumps(body).encode()
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}",
                f"Authorization: Bearer {token}", "Content-Type: application/json",
                f"Content-Length: {len(raw)}", *(f"{k}: {v}" for k, v in extra.items())]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + raw

    prepared = [request(i) for i in range(count + 50)]  # encoded before the clock starts

    async def one(i: int, due: float) -> None:
        async with limit:
            try:
                if idle:
                    conn = idle.pop()
                else:
                    _, conn = await loop.create_connection(_Connection, host, port)
                    opened.append(conn)
                status = await conn.request(prepared[i])
                if status not in (200, 201):
                    errors[str(status)] = errors.get(str(status), 0) + 1
                if not conn.closed:
                    idle.append(conn)
            except OSError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        latencies.append(time.perf_counter() - due)

    # warm the connection pool and the server before the clock starts
    await asyncio.gather(*(one(i, time.perf_counter()) for i in range(50)))
    latencies.clear()
    errors.clear()
    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(50, count + 50):
        due = start + (i - 50) / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for conn in opened:
        if conn.transport is not None:
            conn.transport.close()
    latencies.sort()
    return {"count": len(latencies), "rate": len(latencies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "max_ms": latencies[-1] * 1000, "errors": errors}


def _loadgen_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--token")
    parser.add_argument("--kind")
    parser.add_argument("--rate", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--items")
    parser.add_argument("--tag", default="run")
    args = parser.parse_args(argv)
    import uvloop

    items = json.loads(Path(args.items).read_text())
    result = uvloop.run(_load(args.url, args.token, args.kind, args.rate, args.seconds, items,
                              args.tag))
    print(json.dumps(result))


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of processes and their children so far."""
    import psutil

    total = 0.0
    for pid in pids:
        process = psutil.Process(pid)
        for p in [process, *process.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
    return total


def _drive(tmp: str, url: str, token: str, kind: str, rate: int, seconds: int,
           items: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One open-loop run by the load generator in its own process."""
    import resource

    items_file = Path(tmp) / f"{kind}-{rate}.json"
    items_file.write_text(json.dumps(items))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.catalog_latency", "--url", url,
         "--token", token, "--kind", kind, "--rate", str(rate), "--seconds", str(seconds),
         "--items", str(items_file), "--tag", f"{kind}{rate}"],
        check=True, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only the generator was reaped
    got: dict[str, Any] = json.loads(out.stdout)
    got["loadgen_cpu"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return got


def _wait_http(url: str, timeout: float = 20) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/v1/openapi.json", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("quanpai serve did not come up")


def run(*, size: str, workers: int = 2) -> list[Result]:
    from infra.ports import free_port
    from infra.redis_server import RedisServer
    from infra.tokens import mint_bearer as mint_token

    seconds = SECONDS[size]
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(directory=Path(tmp) / "redis")
        server.start()
        port = free_port()
        env = {**os.environ, "REDIS_URL": server.url, "QUANPAI_SECRET": SECRET,
               "QUANPAI_MERCHANT": MERCHANT}
        serve = None
        try:
            members, codes = _seed(server.url, (RATE + LIGHT_RATE) * seconds + 300)
            serve = subprocess.Popen(
                [sys.executable, "-m", "dispatcher.cli", "serve", "--port", str(port),
                 "--workers", str(workers)], env=env, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            _wait_http(url)
            token = mint_token(secret=SECRET.encode(), role="cashier", merchant_id=MERCHANT,
                               store_id="S1")
            offset = 0
            for kind, items, target in (("quote", members, 20.0), ("redeem", codes, 10.0)):
                label = "quote (20-coupon wallet)" if kind == "quote" else "redemption"
                for rate in (LIGHT_RATE, RATE):
                    if kind == "redeem":  # each redemption uses a fresh code
                        used = items[offset:offset + rate * seconds + 100]
                        offset += len(used)
                    else:
                        used = items
                    api_cpu, redis_cpu = _cpu([serve.pid]), _cpu([server.pid() or 0])
                    got = _drive(tmp, url, token, kind, rate, seconds, used, env)
                    api_cpu = (_cpu([serve.pid]) - api_cpu) / got["count"] * 1000
                    redis_cpu = (_cpu([server.pid() or 0]) - redis_cpu) / got["count"] * 1000
                    results += [
                        Result("catalog_latency", f"{label} p50 at {rate}/s",
                               round(got["p50_ms"], 2), "ms"),
                        Result("catalog_latency", f"{label} p99 at {rate}/s",
                               round(got["p99_ms"], 2), "ms", target=target, better="lower"),
                        Result("catalog_latency", f"{label} achieved rate (asked {rate}/s)",
                               round(got["rate"]), "req/s", target=rate * 0.98,
                               better="higher"),
                        Result("catalog_latency", f"{label} errors at {rate}/s",
                               sum(got["errors"].values()), "requests", target=0,
                               better="lower"),
                        Result("catalog_latency", f"{label} API CPU per request at {rate}/s",
                               round(api_cpu, 3), "ms"),
                        Result("catalog_latency", f"{label} Redis CPU per request at {rate}/s",
                               round(redis_cpu, 3), "ms"),
                        Result("catalog_latency",
                               f"{label} load generator CPU per request at {rate}/s",
                               round(got["loadgen_cpu"] / got["count"] * 1000, 3), "ms"),
                    ]
        finally:
            if serve is not None:
                serve.terminate()
                serve.wait(10)
            server.stop()
    return results


if __name__ == "__main__":
    _loadgen_main(sys.argv[1:])
