"""Print jobs as the catalog service sends them, and the fields a receipt template may use.

A job is JSON: ``{"job_id", "kind", "store_id", "created_at", "data": {...}}``. ``kind`` picks
the template (``points_qr``, ``redemption_slip``, ``coupon_voucher``); ``data`` carries the
facts (money in integer fen, times as ISO 8601 with their offset). ``fields`` turns them into
the strings a template shows: money as ``￥12.34``, phones masked, times in the merchant's zone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from printer_agent.errors import JobInvalid

KINDS = ("points_qr", "redemption_slip", "coupon_voucher")
_PHONE = re.compile(r"^(?:\+?86)?(1\d{2})\d{4}(\d{4})$")


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    store_id: str
    data: dict[str, Any]
    created_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "store_id": self.store_id,
                "created_at": self.created_at, "data": self.data}

    def encode(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))


def parse_job(raw: object) -> Job:
    """A ``Job`` from decoded JSON; ``JobInvalid`` naming the field otherwise."""
    if not isinstance(raw, dict):
        raise JobInvalid("job", "expected a JSON object")
    for name in ("job_id", "kind", "store_id"):
        value = raw.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= 128:
            raise JobInvalid(name, "expected a string of 1-128 characters")
    if raw["kind"] not in KINDS:
        raise JobInvalid("kind", f"expected one of {', '.join(KINDS)}")
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise JobInvalid("data", "expected a JSON object")
    created = raw.get("created_at", "")
    return Job(job_id=raw["job_id"], kind=raw["kind"], store_id=raw["store_id"], data=data,
               created_at=created if isinstance(created, str) else "")


def yuan(fen: object, field: str) -> str:
    """Integer fen as ``￥12.34``, never through a float (the fullwidth yen is in GB2312, so
    every head prints it)."""
    if not isinstance(fen, int) or isinstance(fen, bool):
        raise JobInvalid(f"data.{field}", "expected an integer amount in fen")
    sign = "-" if fen < 0 else ""
    return f"{sign}￥{abs(fen) // 100}.{abs(fen) % 100:02d}"


def mask_member(value: str) -> str:
    """A phone as ``138****5678``; any other member id keeps its first and last few characters."""
    match = _PHONE.match(value.replace(" ", "").replace("-", ""))
    if match:
        return f"{match.group(1)}****{match.group(2)}"
    if len(value) <= 4:
        return value[:1] + "*" * (len(value) - 1)
    keep = max(2, len(value) // 4)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]


def local_time(text: object, field: str) -> str:
    """An ISO 8601 time as ``2026-12-03 17:40`` in its own offset (the merchant's zone)."""
    if not isinstance(text, str):
        raise JobInvalid(f"data.{field}", "expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise JobInvalid(f"data.{field}", "expected an ISO 8601 time") from None
    return moment.strftime("%Y-%m-%d %H:%M")


def _text(data: dict[str, Any], name: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if value is None:
        raise JobInvalid(f"data.{name}", "required")
    return str(value)


def claim_url(pattern: str, token: str) -> str:
    """The URL a member scans to claim the points: ``pattern`` with ``{token}`` filled in."""
    return pattern.replace("{token}", quote(token, safe=".-_~"))


def fields(job: Job, *, store_name: str, claim_pattern: str) -> dict[str, str]:
    """Every placeholder a template of ``job.kind`` may use, as display strings."""
    d = job.data
    out = {"job_id": job.job_id, "store_id": job.store_id, "store_name": store_name or
           job.store_id, "created": local_time(job.created_at, "created_at")
           if job.created_at else ""}
    if job.kind == "points_qr":
        token = _text(d, "token")
        out.update(order_id=_text(d, "order_id"), amount=yuan(d.get("amount_fen"), "amount_fen"),
                   points=str(d["points"]) if isinstance(d.get("points"), int) else "扫码查看",
                   token=token, claim_url=claim_url(claim_pattern, token),
                   expires=local_time(d["expires_at"], "expires_at")
                   if d.get("expires_at") else "")
    elif job.kind == "redemption_slip":
        member = _text(d, "phone", "") or _text(d, "member_id", "")
        out.update(redemption_id=_text(d, "redemption_id"),
                   coupon_name=_text(d, "coupon_name", ""), code=_text(d, "code"),
                   member=mask_member(member) if member else "非会员",
                   discount=yuan(d.get("discount_fen", 0), "discount_fen"),
                   amount=yuan(d.get("amount_fen", 0), "amount_fen"),
                   order_id=_text(d, "order_id"),
                   time=local_time(d.get("redeemed_at") or job.created_at, "redeemed_at"),
                   cashier=_text(d, "cashier", "") or "-")
    else:  # coupon_voucher
        member = _text(d, "member_id", "")
        out.update(code=_text(d, "code"), qr_payload=_text(d, "qr_payload"),
                   coupon_name=_text(d, "coupon_name", ""),
                   value=_text(d, "value_text", ""),
                   valid_until=local_time(d["valid_until"], "valid_until")[:10]
                   if d.get("valid_until") else "长期有效",
                   member=mask_member(member) if member else "")
    return out
