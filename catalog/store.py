"""The compact store's layout on Redis, shared by the Python side of every script.

Everything of one template lives under one hash tag (``qp:{<merchant>:t<n>}:``), so each script
touches one Redis Cluster slot:

- ``meta``      counters: stock, budget, per-member limit, serial sequence, card parameters
- ``camps``     campaign id -> small campaign number (records store the number, not the id)
- ``r:<k>``     records of serials 128k..128k+127: field ``serial % 128``, value
                ``<state><campaign#>|<member>[|<card state>]``
- ``m:<b>``     member index: field = 13 bits of the member's hash, value = serials (collisions are
                resolved by the member id in each record)
- ``days``      ``<first serial>:<day>;`` once per issue day: serials grow with time, so the issue
                day of a serial is that of the last boundary at or below it
- ``rd:<id>``   one hash per redemption (for refunds), ``idem:<key>`` the first answer of a request

Small hashes stay in Redis's listpack encoding (≤ 128 entries, values ≤ 64 bytes), which is what
brings an issued coupon to about 31 bytes at 1M coupons, against ~137 for a small hash per coupon
(``bench/scenarios/catalog_store.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

BUCKET = 128
STATES = {"i": "inactive", "a": "active", "r": "used", "v": "void", "g": "transferring",
          "t": "transferred"}


@cache
def lua(name: str) -> str:
    """Source of ``catalog/<name>.lua`` (package data)."""
    return resources.files("catalog").joinpath(f"{name}.lua").read_text(encoding="utf-8")


def member_hash(member_id: str) -> int:
    """48 bits of the member id's hash: ``% buckets`` picks the index hash, ``>> 32`` the field.
    48 bits stay exact in Lua's doubles."""
    digest = hashlib.blake2b(member_id.encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class Record:
    """One issued coupon as the store holds it."""

    serial: int
    state: str  # a key of STATES
    issue_day: int
    campaign_number: int
    member_id: str
    extra: tuple[int, ...]  # card state: count card (uses left,), gift card (balance, transfers),
    # duration card (expiry day or 0 before first use, last use day, uses that day, days bought)


@lru_cache(maxsize=4096)  # one value per template, read for every coupon of it
def parse_days(raw: bytes | str | None) -> list[tuple[int, int]]:
    """The ``days`` key as sorted (first serial, day) boundaries."""
    text = (raw.decode() if isinstance(raw, bytes) else raw) or ""
    pairs = [tuple(int(x) for x in part.split(":")) for part in text.split(";") if part]
    return sorted((p[0], p[1]) for p in pairs)


def issue_day_of(serial: int, days: list[tuple[int, int]]) -> int:
    day = days[0][1] if days else 0
    for first, number in days:
        if first > serial:
            break
        day = number
    return day


def parse_record(serial: int, raw: bytes | str, issue_day: int) -> Record:
    text = raw.decode() if isinstance(raw, bytes) else raw
    head, rest = text.split("|", 1)
    member, _, extra = rest.partition("|")
    return Record(
        serial=serial,
        state=head[0],
        issue_day=issue_day,
        campaign_number=int(head[1:]),
        member_id=member,
        extra=tuple(int(x) for x in extra.split(",")) if extra else (),
    )


def flat_pairs(reply: Any) -> list[tuple[Any, Any]]:
    """A Lua reply ``[a1, b1, a2, b2, ...]`` as pairs."""
    items = list(reply)
    return list(zip(items[0::2], items[1::2], strict=True))
