"""Member tags (标签): manual tags (CSV import, the API) and rule tags saved from a segment.

Storage on Redis, compact for a million members: a tag's integer member ids (0 <= id < 2^28)
are one bitmap string from the smallest id on (8 bytes of base id, then a bit per id: a million
ids in a range of a million cost 125 KB), other ids (text, or very large numbers) a set beside
it. A hash of definitions records each tag's kind (manual or rule), size, last update and, for
rule tags, the rules file and segment that refresh it. Every key carries the merchant's hash
tag, so a tag changes in one MULTI. ``MemoryTags`` is the in-process implementation with the
same behaviour (tests, notebooks).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import redis

from segmentation.behaviour import TAG_NAME
from segmentation.errors import InvalidInput

BITMAP_LIMIT = 1 << 28


def check_tag(name: str, field_name: str = "tag") -> str:
    """A tag name: 1-32 characters, no spaces, ``:``, ``{`` or ``}`` (they go into keys)."""
    if not isinstance(name, str) or not TAG_NAME.match(name):
        raise InvalidInput(field_name, f"{name!r} is not a tag name (1-32 characters, no spaces, "
                           "':', '{' or '}')")
    return name


@dataclass(frozen=True)
class TagMembers:
    """A tag's members: integer ids (sorted) and other ids as text."""

    ints: npt.NDArray[np.int64]
    others: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.ints) + len(self.others)

    def mask(self, member_ids: pd.Series) -> npt.NDArray[np.bool_]:
        """Which of ``member_ids`` carry the tag."""
        values = member_ids.to_numpy()
        if values.dtype.kind in "iu":
            hit = np.isin(values.astype(np.int64), self.ints)
        else:
            text = member_ids.astype(str)
            ints = pd.to_numeric(text, errors="coerce").to_numpy()
            hit = np.isin(ints, self.ints.astype(np.float64)) if len(self.ints) else np.zeros(
                len(values), bool)
            if self.others:
                hit |= text.isin(self.others).to_numpy()
        return np.asarray(hit, dtype=bool)


def sorted_ids(ids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Distinct ids, ascending (sort and drop repeats: numpy 2.4's ``np.unique`` hashes and
    is a hundred times slower on half a million ids)."""
    ordered = np.sort(ids)
    keep = np.ones(len(ordered), bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def split_ids(ids: Iterable[Any]) -> TagMembers:
    """Integer-looking ids below the bitmap limit go to the bitmap, the rest stay text."""
    values = ids if isinstance(ids, np.ndarray) else list(ids)
    array = np.asarray(values) if len(values) else np.zeros(0, np.int64)
    if array.dtype.kind in "iu":  # a segment's integer ids: no per-id Python work
        array = array.astype(np.int64, copy=False)
        small = (array >= 0) & (array < BITMAP_LIMIT)
        return TagMembers(sorted_ids(array[small]), frozenset(str(v) for v in array[~small]))
    ints: list[int] = []
    others: set[str] = set()
    for raw in values:
        text = str(raw).strip()
        if not text:
            continue
        if text.isdigit() and int(text) < BITMAP_LIMIT and (text == "0" or text[0] != "0"):
            ints.append(int(text))
        else:
            others.add(text)
    return TagMembers(sorted_ids(np.asarray(ints, dtype=np.int64)), frozenset(others))


@dataclass(frozen=True)
class TagInfo:
    """A tag's definition: kind, size, when it changed, and the rule behind a rule tag."""

    name: str
    kind: str  # manual or rule
    count: int
    updated: str
    rules: str = ""  # a rule tag from a rules file: its path and segment
    segment: str = ""
    where: str = ""  # a rule tag saved from the console: the condition, as JSON

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "count": self.count,
                "updated": self.updated, "rules": self.rules, "segment": self.segment,
                "where": self.where}


class TagStore(Protocol):
    """Where tags live."""

    def members(self, tag: str) -> TagMembers:
        """The tag's members (empty for an unknown tag)."""
        ...

    def add(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        """Tag these members (manual tags); returns the new definition."""
        ...

    def remove(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        """Untag these members."""
        ...

    def replace(self, tag: str, ids: Iterable[Any], *, rules: str = "", segment: str = "",
                where: str = "") -> TagInfo:
        """Set the tag to exactly these members; with ``rules`` (and ``segment``) or ``where``
        it is a rule tag, recomputed by ``segmentation.rule_tags.refresh_rule_tags``."""
        ...

    def tags(self) -> list[TagInfo]:
        """Every tag's definition, by name."""
        ...


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _union(a: TagMembers, b: TagMembers) -> TagMembers:
    return TagMembers(sorted_ids(np.concatenate([a.ints, b.ints])), a.others | b.others)


def _minus(a: TagMembers, b: TagMembers) -> TagMembers:
    return TagMembers(a.ints[~np.isin(a.ints, b.ints)], a.others - b.others)


@dataclass
class MemoryTags:
    """Tags in process memory."""

    _members: dict[str, TagMembers] = field(default_factory=dict)
    _info: dict[str, TagInfo] = field(default_factory=dict)

    def members(self, tag: str) -> TagMembers:
        return self._members.get(tag, TagMembers(np.zeros(0, np.int64)))

    def _set(self, tag: str, members: TagMembers, kind: str, rules: str = "",
             segment: str = "", where: str = "") -> TagInfo:
        check_tag(tag)
        self._members[tag] = members
        info = TagInfo(tag, kind, len(members), _now(), rules, segment, where)
        self._info[tag] = info
        return info

    def add(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        return self._set(tag, _union(self.members(tag), split_ids(ids)), "manual")

    def remove(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        return self._set(tag, _minus(self.members(tag), split_ids(ids)), "manual")

    def replace(self, tag: str, ids: Iterable[Any], *, rules: str = "", segment: str = "",
                where: str = "") -> TagInfo:
        return self._set(tag, split_ids(ids), "rule" if rules or where else "manual", rules,
                         segment, where)

    def tags(self) -> list[TagInfo]:
        return [self._info[name] for name in sorted(self._info)]


def _pack(ints: npt.NDArray[np.int64]) -> bytes:
    """8 bytes of base id (a multiple of 8), then one bit per id from the base on."""
    base = int(ints[0]) // 8 * 8
    bits = np.zeros(int(ints[-1]) - base + 1, np.uint8)
    bits[ints - base] = 1
    return base.to_bytes(8, "big") + np.packbits(bits).tobytes()


def _unpack(raw: bytes | None) -> npt.NDArray[np.int64]:
    if not raw:
        return np.zeros(0, np.int64)
    base = int.from_bytes(raw[:8], "big")
    bits = np.unpackbits(np.frombuffer(raw, np.uint8, offset=8))
    return np.flatnonzero(bits).astype(np.int64) + base


class RedisTags:
    """Tags on Redis: a bitmap and a set per tag, a hash of definitions per merchant."""

    def __init__(self, *, client: redis.Redis, merchant_id: str) -> None:
        self._client = client
        self._prefix = f"qp:{{{merchant_id}}}:tag"

    def _keys(self, tag: str) -> tuple[str, str]:
        check_tag(tag)
        return f"{self._prefix}:{tag}:bits", f"{self._prefix}:{tag}:ids"

    def _read(self, client: Any, tag: str) -> TagMembers:
        bits_key, ids_key = self._keys(tag)
        raw, others = client.get(bits_key), client.smembers(ids_key)
        return TagMembers(_unpack(raw), frozenset(v.decode() for v in others))

    def members(self, tag: str) -> TagMembers:
        return self._read(self._client, tag)

    def _update(self, tag: str, change: Any, kind: str, rules: str = "",
                segment: str = "", where: str = "") -> TagInfo:
        """Apply ``change(current) -> new`` atomically (WATCH: a concurrent edit retries)."""
        bits_key, ids_key = self._keys(tag)
        with self._client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(bits_key, ids_key)
                    members: TagMembers = change(self._read(pipe, tag))
                    info = TagInfo(tag, kind, len(members), _now(), rules, segment, where)
                    pipe.multi()
                    pipe.delete(bits_key, ids_key)
                    if len(members.ints):
                        pipe.set(bits_key, _pack(members.ints))
                    if members.others:
                        pipe.sadd(ids_key, *sorted(members.others))
                    pipe.hset(f"{self._prefix}s", tag,
                              json.dumps(info.to_json(), ensure_ascii=False))
                    pipe.execute()
                    return info
                except redis.WatchError:
                    continue

    def add(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        added = split_ids(ids)
        return self._update(tag, lambda current: _union(current, added), "manual")

    def remove(self, tag: str, ids: Iterable[Any]) -> TagInfo:
        removed = split_ids(ids)
        return self._update(tag, lambda current: _minus(current, removed), "manual")

    def replace(self, tag: str, ids: Iterable[Any], *, rules: str = "", segment: str = "",
                where: str = "") -> TagInfo:
        members = split_ids(ids)
        return self._update(tag, lambda _current: members, "rule" if rules or where else
                            "manual", rules, segment, where)

    def tags(self) -> list[TagInfo]:
        raw: dict[bytes, bytes] = self._client.hgetall(f"{self._prefix}s")  # type: ignore[assignment]
        infos = [TagInfo(**json.loads(v)) for v in raw.values()]
        return sorted(infos, key=lambda i: i.name)
