"""Print jobs for the stores' printer agents: one queue per store in Redis, acknowledgements,
``printed`` events and each store's agent and printer status.

Keys (the merchant's hash tag keeps a store's keys on one Redis Cluster slot):

- ``qp:{m}:pq:<store>``      stream of jobs in print order; the entry id is the feed's cursor
- ``qp:{m}:pqids:<store>``   job id -> entry id: a job created twice is queued once
- ``qp:{m}:pqdone:<store>``  job id -> ``printed|<epoch>`` or ``failed|<epoch>``
- ``qp:{m}:printers``        ``<store>`` -> the agent's last status report (JSON),
                             ``<store>:cursor`` -> the last entry the agent has spooled,
                             ``<store>:seen`` -> when the agent last asked for jobs

The three queue keys hold the same jobs: the last ``QUEUE_MAX`` of the store, trimmed together.
An agent long-polls for entries after its cursor, spools them, then
acknowledges receipt; after printing it acknowledges each job, which emits one ``printed``
event (its id is the job's, so a repeated acknowledgement counts once; an id the queue does not
hold is ignored).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime
from typing import Any

import redis

from analytics.events import Event
from catalog.claims import mint_claim
from catalog.codes import display, qr_payload
from catalog.context import Catalog
from catalog.errors import CatalogError, InvalidInput, NotFound
from catalog.redemption import Redemption, lookup, parse_code, redemption_slip
from catalog.templates import CouponTemplate, check_id

log = logging.getLogger("quanpai.catalog.print_jobs")
KINDS = ("points_qr", "redemption_slip", "coupon_voucher")
QUEUE_MAX = 10_000  # jobs kept per store, with their ids and outcomes (printed ones stay for
# the operators' view); older jobs are forgotten together with their id and outcome entries
POLL_EVERY = 0.5  # seconds between two looks at a waiting store's queue
AGENT_ONLINE_FOR = 60.0  # seconds since the last poll or report an agent counts as online
# Queue a job once per id. Past ``keep`` jobs (checked every ``keep / 100`` jobs, so a busy
# store pays one trim per hundred receipts) the oldest entries go, and their job ids leave the
# id and outcome hashes with them: without this the hashes grew by one field per receipt forever.
ENQUEUE = """
local found = redis.call('HGET', KEYS[2], ARGV[1])
if found then return {0, found} end
local id = redis.call('XADD', KEYS[1], '*', 'j', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], id)
local keep = tonumber(ARGV[3])
local over = redis.call('XLEN', KEYS[1]) - keep
if over >= math.max(1, math.floor(keep / 100)) then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', over)) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'j' then
        local job_id = cjson.decode(fields[i + 1])['job_id']
        redis.call('HDEL', KEYS[2], job_id)
        redis.call('HDEL', KEYS[3], job_id)
      end
    end
  end
  redis.call('XTRIM', KEYS[1], 'MAXLEN', keep)
end
return {1, id}
"""

def queue_keys(merchant_id: str, store_id: str) -> tuple[str, str, str]:
    base = f"qp:{{{merchant_id}}}:"
    return base + f"pq:{store_id}", base + f"pqids:{store_id}", base + f"pqdone:{store_id}"


def printers_key(merchant_id: str) -> str:
    return f"qp:{{{merchant_id}}}:printers"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_cursor(value: str, field: str = "after") -> str:
    """A stream entry id such as ``1733212800000-0``."""
    head, _, tail = value.partition("-")
    if not (head.isdigit() and (tail.isdigit() or not tail)) or len(value) > 40:
        raise InvalidInput(field, "expected a cursor such as 1733212800000-0")
    return value


def _id_key(entry_id: str) -> tuple[int, int]:
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


async def enqueue(catalog: Catalog, *, merchant_id: str, store_id: str, job_id: str, kind: str,
                  data: dict[str, Any], keep: int = QUEUE_MAX) -> dict[str, Any]:
    """Queue a job for a store once per ``job_id``; returns the job and whether it was new.
    The store keeps its last ``keep`` jobs (about; see ``ENQUEUE``)."""
    stream, ids, done = queue_keys(merchant_id, store_id)
    job = {"job_id": job_id, "kind": kind, "store_id": store_id,
           "created_at": catalog.now().isoformat(timespec="seconds"), "data": data}
    fresh, entry = await catalog.client.eval(  # type: ignore[misc]
        ENQUEUE, 3, stream, ids, done, job_id, json.dumps(job, ensure_ascii=False), keep)
    return {**job, "seq": _text(entry), "created": bool(fresh)}


def _describe(t: CouponTemplate) -> str:
    """The coupon's value in a few words: 满100减20, 立减10元, 8.5折, 储值卡 ￥200."""
    def yuan(fen: int) -> str:
        return f"{fen // 100}" if fen % 100 == 0 else f"{fen / 100:.2f}".rstrip("0")

    if t.kind == "gift_card":
        return f"礼品卡 ￥{yuan(t.face_value_fen)}"
    if t.kind == "count_card":
        return f"次卡 {t.uses} 次"
    if t.kind == "duration_card":
        return f"时长卡 {t.duration_days} 天"
    if t.rate_permille < 1000:
        rate = f"{t.rate_permille / 100:.2f}".rstrip("0").rstrip(".")
        return f"满{yuan(t.threshold_fen)}元{rate}折" if t.threshold_fen else f"{rate}折"
    if t.discount_fen:
        return (f"满{yuan(t.threshold_fen)}减{yuan(t.discount_fen)}" if t.threshold_fen
                else f"立减{yuan(t.discount_fen)}元")
    return t.name


async def points_qr_job(catalog: Catalog, *, merchant_id: str, store_id: str, order_id: str,
                        amount_fen: int, claim: dict[str, Any] | None = None) -> dict[str, Any]:
    """A points-QR receipt for a payment by cash, card or Alipay: a signed claim token (the
    same as ``POST /v1/points/claims`` mints, or ``claim`` when one was minted already) with the
    points a new member would earn."""
    if claim is None:
        claim = mint_claim(catalog, merchant_id=merchant_id, store_id=store_id,
                           order_id=order_id, amount_fen=amount_fen)
    points = (await catalog.rules(merchant_id)).earn_points("", amount_fen)
    return await enqueue(catalog, merchant_id=merchant_id, store_id=store_id,
                         job_id=f"points:{store_id}:{order_id}", kind="points_qr",
                         data={"order_id": order_id, "amount_fen": amount_fen, "points": points,
                               "token": claim["token"], "expires_at": claim["expires_at"]})


async def queue_join_offer(catalog: Catalog, *, merchant_id: str, payment: dict[str, Any]
                           ) -> None:
    """A non-member's payment prints its join offer as a points QR at the store (queued once
    per store and order, so the POS asking the agent for the same receipt prints nothing
    more). A Redis failure does not fail the payment: it is logged."""
    offer = payment.get("join_offer")
    if not offer:
        return
    try:
        await points_qr_job(catalog, merchant_id=merchant_id, store_id=offer["store_id"],
                            order_id=offer["order_id"], amount_fen=offer["amount_fen"],
                            claim=offer)
    except (redis.RedisError, CatalogError) as exc:
        log.error("points QR for order %s not queued: %s", offer["order_id"], exc)


def slip_data(slip: dict[str, Any], *, redeemed_at: str, cashier: str = "",
              coupon_name: str = "") -> dict[str, Any]:
    return {"redemption_id": slip["redemption_id"], "coupon_name": coupon_name,
            "code": slip["code"], "member_id": slip.get("member_id", ""),
            "discount_fen": slip["discount_fen"], "amount_fen": slip["amount_fen"],
            "order_id": slip["order_id"], "redeemed_at": redeemed_at, "cashier": cashier}


async def queue_slip(catalog: Catalog, *, merchant_id: str, redemption: Redemption,
                     cashier: str = "") -> None:
    """The slip every redemption prints at its store (job ``slip:<redemption>``, queued once).

    A Redis failure here does not fail the redemption, which has happened: it is logged, and a
    retried redemption (its replay) queues the slip again."""
    try:
        template = await catalog.template(merchant_id, redemption.template_id)
        slip = {"redemption_id": redemption.redemption_id, "code": display(redemption.code),
                "member_id": redemption.member_id, "discount_fen": redemption.discount_fen,
                "amount_fen": redemption.amount_fen, "order_id": redemption.order_id}
        await enqueue(catalog, merchant_id=merchant_id, store_id=redemption.store_id,
                      job_id=f"slip:{redemption.redemption_id}", kind="redemption_slip",
                      data=slip_data(slip, redeemed_at=catalog.now().isoformat(
                          timespec="seconds"), cashier=cashier, coupon_name=template.name))
    except (redis.RedisError, CatalogError) as exc:
        log.error("slip for redemption %s not queued: %s", redemption.redemption_id, exc)


async def slip_job(catalog: Catalog, *, merchant_id: str, redemption_id: str, cashier: str = "",
                   store_id: str = "", copy: int = 0) -> dict[str, Any]:
    """A redemption slip (核销小票) for the store that redeemed; ``store_id`` (a cashier's or
    printer's store) must be that store. Copy 0 is the slip every redemption gets once;
    ``copy`` > 0 prints it again."""
    slip = await redemption_slip(catalog, merchant_id=merchant_id, redemption=redemption_id)
    if store_id and slip["store_id"] != store_id:
        raise NotFound(f"redemption {redemption_id} was not made at store {store_id}")
    return await enqueue(
        catalog, merchant_id=merchant_id, store_id=slip["store_id"],
        job_id=f"slip:{redemption_id}" + (f":{copy}" if copy else ""),
        kind="redemption_slip",
        data=slip_data(slip, redeemed_at=catalog.now().isoformat(timespec="seconds"),
                       cashier=cashier, coupon_name=slip["template_name"]))


async def voucher_job(catalog: Catalog, *, merchant_id: str, store_id: str, code: str,
                      copy: int = 0) -> dict[str, Any]:
    """A coupon voucher with the coupon's QR for a walk-in member (``copy`` > 0 prints again)."""
    coupon = await lookup(catalog, merchant_id=merchant_id, code=code)
    ref = parse_code(catalog, merchant_id, code)
    template = await catalog.template(merchant_id, ref.template_id)
    from catalog.codes import make_code

    canonical = make_code(secret=catalog.secret, merchant_id=merchant_id,
                          template_number=ref.template_number, serial=ref.serial)
    return await enqueue(
        catalog, merchant_id=merchant_id, store_id=store_id,
        job_id=f"voucher:{canonical}" + (f":{copy}" if copy else ""), kind="coupon_voucher",
        data={"code": display(canonical), "qr_payload": qr_payload(canonical),
              "coupon_name": template.name, "value_text": _describe(template),
              "valid_until": coupon.get("valid_until") or "",
              "member_id": coupon.get("member_id", "")})


async def poll(catalog: Catalog, *, merchant_id: str, store_id: str, after: str, wait_s: int,
               limit: int = 50) -> dict[str, Any]:
    """Jobs after ``after`` (the agent's cursor; empty: the last one it acknowledged), waiting
    up to ``wait_s`` seconds for one to arrive."""
    stream, _, _ = queue_keys(merchant_id, store_id)
    client = catalog.client
    if not after:
        stored = await client.hget(printers_key(merchant_id), f"{store_id}:cursor")  # type: ignore[misc]
        after = _text(stored) if stored else "0-0"
    await client.hset(printers_key(merchant_id), f"{store_id}:seen", str(time.time()))  # type: ignore[misc]
    entries: Any = await client.xrange(stream, min=f"({after}", max="+", count=limit)
    deadline = time.monotonic() + wait_s
    while not entries and (left := deadline - time.monotonic()) > 0:
        # a short read every half second rather than XREAD BLOCK: a blocked read would hold
        # one of the API's pooled Redis connections per waiting store for the whole wait
        await asyncio.sleep(min(left, POLL_EVERY))
        entries = await client.xrange(stream, min=f"({after}", max="+", count=limit)
    jobs = []
    for entry_id, fields in entries:
        job = json.loads(fields[b"j"])
        job["seq"] = _text(entry_id)
        jobs.append(job)
    return {"jobs": jobs, "cursor": jobs[-1]["seq"] if jobs else after}


async def acknowledge(catalog: Catalog, *, merchant_id: str, store_id: str,
                      received_up_to: str = "", printed: list[str] | None = None,
                      failed: list[str] | None = None) -> dict[str, Any]:
    """Receipt up to a cursor, and jobs printed or failed; emits one ``printed`` event a job."""
    client = catalog.client
    stream, ids, done = queue_keys(merchant_id, store_id)
    if received_up_to:
        key = printers_key(merchant_id)
        current = await client.hget(key, f"{store_id}:cursor")  # type: ignore[misc]
        if current is None or _id_key(received_up_to) > _id_key(_text(current)):
            await client.hset(key, f"{store_id}:cursor", received_up_to)  # type: ignore[misc]
    now = str(int(time.time()))
    outcomes = [(j, "printed") for j in printed or []] + [(j, "failed") for j in failed or []]
    newly: list[tuple[str, str]] = []
    for job_id, state in outcomes:
        # only jobs this store's queue holds: an id never queued (or long forgotten) would
        # otherwise add an outcome field for good and count a print that was never asked for
        if not await client.hexists(ids, job_id):  # type: ignore[misc]
            continue
        if await client.hsetnx(done, job_id, f"{state}|{now}"):  # type: ignore[misc]
            newly.append((job_id, state))
    events = []
    for job_id, state in newly:
        if state != "printed":
            continue
        entry = await client.hget(ids, job_id)  # type: ignore[misc]
        rows: Any = await client.xrange(stream, min=_text(entry), max=_text(entry)) \
            if entry else []
        job: dict[str, Any] = json.loads(rows[0][1][b"j"]) if rows else {"data": {}}
        data = job.get("data", {})
        events.append(Event(
            event_id=f"printed:{merchant_id}:{job_id}", event_type="printed",
            merchant_id=merchant_id, store_id=store_id, order_id=str(data.get("order_id", "")),
            member_id=str(data.get("member_id", "")),
            coupon_code=str(data.get("code", "")).replace("-", ""),
            amount_fen=int(data.get("amount_fen", 0) or 0),
            discount_fen=int(data.get("discount_fen", 0) or 0), reason=str(job.get("kind"))))
    if events:
        catalog.emit(events)
    return {"received_up_to": received_up_to, "acknowledged": len(outcomes),
            "new": [j for j, _ in newly]}


async def job_state(catalog: Catalog, *, merchant_id: str, store_id: str, job_id: str) -> str:
    """``queued``, ``printed`` or ``failed``; ``NotFound`` for a job never created."""
    _, ids, done = queue_keys(merchant_id, store_id)
    outcome = await catalog.client.hget(done, job_id)  # type: ignore[misc]
    if outcome is not None:
        return _text(outcome).split("|")[0]
    if await catalog.client.hexists(ids, job_id):  # type: ignore[misc]
        return "queued"
    raise NotFound(f"no print job {job_id} at store {store_id}")


async def save_status(catalog: Catalog, *, merchant_id: str, store_id: str,
                      report: dict[str, Any]) -> None:
    """The agent's latest report (printer state, spool counts), stamped with the service time."""
    body = json.dumps({**report, "store_id": store_id, "received_at": time.time()},
                      ensure_ascii=False)
    if len(body) > 16_384:
        raise InvalidInput("body", "a status report is at most 16 KB")
    await catalog.client.hset(printers_key(merchant_id), store_id, body)  # type: ignore[misc]


async def store_status(catalog: Catalog, *, merchant_id: str,
                       store_id: str | None = None) -> list[dict[str, Any]]:
    """Each store's agent and printer status (one store when ``store_id`` is given)."""
    raw: dict[bytes, bytes] = await catalog.client.hgetall(  # type: ignore[misc,assignment]
        printers_key(merchant_id))
    fields = {_text(k): _text(v) for k, v in raw.items()}
    stores = sorted({k.split(":")[0] for k in fields})
    if store_id is not None:
        check_id("store_id", store_id)
        stores = [store_id]
    now = time.time()
    out = []
    for store in stores:
        report = json.loads(fields[store]) if store in fields else {}
        seen = max(float(fields.get(f"{store}:seen", 0)), float(report.get("received_at", 0)))
        cursor = fields.get(f"{store}:cursor", "0-0")
        stream, _, _ = queue_keys(merchant_id, store)
        waiting: Any = await catalog.client.xrange(stream, min=f"({cursor}", max="+",
                                                   count=1000)
        out.append({
            "store_id": store,
            "agent_online": now - seen < AGENT_ONLINE_FOR,
            "last_seen": datetime.fromtimestamp(seen, catalog.tz).isoformat(timespec="seconds")
            if seen else None,
            "printer": report.get("printer", {"state": "unknown", "detail": "no report yet"}),
            "spool": report.get("spool", {}),
            "service_connected": bool(report.get("service", {}).get("connected")),
            "waiting_on_service": len(waiting),
        })
    return out
