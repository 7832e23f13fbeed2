"""Rule tags: a segment of a rules file saved as a tag, and refreshed (daily, by the scheduler,
with ``as_of`` that day) by evaluating the same rules file and segment again.

The caller evaluates (it owns the clients: ClickHouse, tags, coupon facts), so the scheduler and
the CLI share this code while each builds its own clients.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from infra.clickhouse import ClickHouse
from segmentation.audience import Evaluation, evaluate_conditions
from segmentation.conditions import parse_condition
from segmentation.coupon_conditions import CouponFacts
from segmentation.errors import InvalidInput
from segmentation.rules import RulesFile, vocabulary
from segmentation.tags import TagInfo, TagStore, check_tag


def save_rule_tag(store: TagStore, *, tag: str, rules_path: Path, segment: str,
                  evaluation: Evaluation) -> TagInfo:
    """Set ``tag`` to the members of ``segment`` in an evaluation of ``rules_path``, and remember
    the rule so ``refresh_rule_tags`` can recompute it."""
    check_tag(tag)
    members = evaluation.members_of(segment).member_id
    return store.replace(tag, members.tolist(), rules=str(rules_path.resolve()), segment=segment)


def save_condition_tag(store: TagStore, *, tag: str, where: dict[str, Any],
                       members: Sequence[Any]) -> TagInfo:
    """Set ``tag`` to ``members``, the members the console's condition ``where`` selected,
    remembering the condition so ``refresh_rule_tags`` can recompute it."""
    check_tag(tag)
    return store.replace(tag, members, where=json.dumps(where, ensure_ascii=False,
                                                        sort_keys=True))


def condition_members(rules: RulesFile, where: dict[str, Any], *, as_of: dt.date,
                      clickhouse: ClickHouse | None = None,
                      coupon_facts: CouponFacts | None = None,
                      tags: TagStore | None = None) -> list[Any]:
    """The members a console condition selects on the data of ``rules`` as of ``as_of``."""
    condition = parse_condition(where, "where", vocabulary(
        rules.segment_map, bins=rules.bins, clusters=rules.clusters is not None))
    frame, masks, _, _ = evaluate_conditions(rules, [condition], as_of=as_of,
                                             clickhouse=clickhouse, coupon_facts=coupon_facts,
                                             tags=tags)
    return list(frame["member_id"][masks[0]].tolist())


def refresh_rule_tags(
    store: TagStore, *, evaluate: Callable[[Path], Evaluation],
    select: Callable[[dict[str, Any]], Sequence[Any]] | None = None,
) -> list[TagInfo]:
    """Recompute every rule tag: rules-file tags with ``evaluate(rules_path)``, console tags
    with ``select(where)`` (the members a condition selects); both fix as_of. Tags that cannot
    be refreshed (rules file gone, no ``select``) are named by one ``InvalidInput`` after the
    others were refreshed."""
    refreshed: list[TagInfo] = []
    missing: list[str] = []
    for info in store.tags():
        if info.kind != "rule":
            continue
        if info.where:
            if select is None:
                missing.append(f"{info.name} (a console condition: no segment data configured)")
                continue
            where = json.loads(info.where)
            refreshed.append(save_condition_tag(store, tag=info.name, where=where,
                                                members=select(where)))
            continue
        path = Path(info.rules)
        if not path.is_file():
            missing.append(f"{info.name} (rules file {info.rules} is gone)")
            continue
        refreshed.append(save_rule_tag(store, tag=info.name, rules_path=path,
                                       segment=info.segment, evaluation=evaluate(path)))
    if missing:
        raise InvalidInput("tags", f"not refreshed: {', '.join(missing)}")
    return refreshed
