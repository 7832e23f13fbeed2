"""Rule tags: a segment of a rules file saved as a tag, and refreshed (daily, by the scheduler,
with ``as_of`` that day) by evaluating the same rules file and segment again.

The caller evaluates (it owns the clients: ClickHouse, tags, coupon facts), so the scheduler and
the CLI share this code while each builds its own clients.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from segmentation.audience import Evaluation
from segmentation.errors import InvalidInput
from segmentation.tags import TagInfo, TagStore, check_tag


def save_rule_tag(store: TagStore, *, tag: str, rules_path: Path, segment: str,
                  evaluation: Evaluation) -> TagInfo:
    """Set ``tag`` to the members of ``segment`` in an evaluation of ``rules_path``, and remember
    the rule so ``refresh_rule_tags`` can recompute it."""
    check_tag(tag)
    members = evaluation.members_of(segment).member_id
    return store.replace(tag, members.tolist(), rules=str(rules_path.resolve()), segment=segment)


def refresh_rule_tags(store: TagStore, *,
                      evaluate: Callable[[Path], Evaluation]) -> list[TagInfo]:
    """Recompute every rule tag with ``evaluate(rules_path)`` (which fixes as_of). Tags whose
    rules file is gone are named by one ``InvalidInput`` after the others were refreshed."""
    refreshed: list[TagInfo] = []
    missing: list[str] = []
    for info in store.tags():
        if info.kind != "rule":
            continue
        path = Path(info.rules)
        if not path.is_file():
            missing.append(f"{info.name} ({info.rules})")
            continue
        refreshed.append(save_rule_tag(store, tag=info.name, rules_path=path,
                                       segment=info.segment, evaluation=evaluate(path)))
    if missing:
        raise InvalidInput("tags", f"rules files missing for {', '.join(missing)}")
    return refreshed
