"""Per-member coupon facts for segmentation, read from the compact store.

``coupon_facts`` returns one row per issued coupon as plain columns (lists), which
``pandas.DataFrame(...)`` and ``pyarrow.table(...)`` take as they are:

| column | meaning |
|---|---|
| member_id, template_id, campaign_id | who holds it, of which template, issued by which campaign |
| state | active, used, void, inactive, transferring, transferred |
| issued, valid_from, expires | merchant-local dates; ``expires`` None when open-ended |
| redeemed | the last day a redemption of it stood (not refunded), else None |

It reads each template's record buckets, campaign table and redemption hashes in one pipeline
per template (all in the template's cluster slot); nothing is written. Segmentation gets this
through a provider the composition root builds, never by importing the store's layout.
"""

from __future__ import annotations

from typing import Any

import redis

from catalog.store import BUCKET, STATES, issue_day_of, parse_days, parse_record
from catalog.templates import CouponTemplate, day_of, load_templates, tag

COLUMNS = ("member_id", "template_id", "campaign_id", "state", "issued", "valid_from", "expires",
           "redeemed")
_OPEN_ENDED = 1 << 29


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _template_rows(client: redis.Redis, template: CouponTemplate,
                   out: dict[str, list[Any]]) -> None:
    prefix = tag(template.merchant_id, template.number)
    seq_raw, rdseq_raw = client.hmget(prefix + "meta", ["seq", "rdseq"])  # type: ignore[misc]
    seq, rdseq = int(seq_raw or 0), int(rdseq_raw or 0)
    if not seq:
        return
    pipe = client.pipeline(transaction=False)
    pipe.get(prefix + "days")
    pipe.hgetall(prefix + "camps")
    for bucket in range(seq // BUCKET + 1):
        pipe.hgetall(f"{prefix}r:{bucket}")
    for n in range(1, rdseq + 1):
        pipe.hmget(f"{prefix}rd:{n}", ["serial", "day", "state"])
    replies = pipe.execute()
    days = parse_days(replies[0])
    campaigns = {_text(k)[1:]: _text(v) for k, v in replies[1].items() if _text(k).startswith("#")}
    buckets = replies[2:2 + seq // BUCKET + 1]
    redeemed: dict[int, int] = {}
    for serial, day, state in replies[2 + len(buckets):]:
        if serial is not None and _text(state) == "ok":
            s = int(serial)
            redeemed[s] = max(redeemed.get(s, 0), int(day))
    for bucket, records in enumerate(buckets):
        for field, raw in records.items():
            serial = bucket * BUCKET + int(field)
            issue_day = issue_day_of(serial, days)
            record = parse_record(serial, raw, issue_day)
            expiry = template.expiry_day(issue_day)
            out["member_id"].append(record.member_id)
            out["template_id"].append(template.template_id)
            out["campaign_id"].append(campaigns.get(str(record.campaign_number), ""))
            out["state"].append(STATES.get(record.state, record.state))
            out["issued"].append(day_of(issue_day))
            out["valid_from"].append(day_of(template.first_day(issue_day)))
            out["expires"].append(None if expiry >= _OPEN_ENDED else day_of(expiry))
            used = redeemed.get(serial)
            out["redeemed"].append(None if used is None else day_of(used))


def coupon_facts(client: redis.Redis, merchant_id: str) -> dict[str, list[Any]]:
    """Every coupon of the merchant, one row each, as the columns listed in ``COLUMNS``."""
    out: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    templates = load_templates(client, merchant_id)
    for template in sorted(templates.values(), key=lambda t: t.number):
        _template_rows(client, template, out)
    return out

