"""Reading a tag file an operator exported from Excel or a CRM: ``member_id,tag`` rows.

Chinese Excel saves CSV as GBK (GB18030 covers it) unless told otherwise, and "CSV UTF-8" with a
byte-order mark; both are accepted (``infra.textfiles`` detects which, or ``quanpai --encoding``
names it). The header names the two
columns in English or Chinese (``member_id``/``会员ID``/``会员号``, ``tag``/``标签``); a file
with anything wrong is refused whole, naming the line, so an import never half-applies.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from infra.errors import InvalidInput as FileProblem
from infra.textfiles import read_text
from segmentation.errors import InvalidInput
from segmentation.tags import check_tag

MEMBER_HEADERS = ("member_id", "会员id", "会员号", "会员编号", "member")
TAG_HEADERS = ("tag", "标签", "tags")


def parse_tag_rows(text: str, *, name: str) -> list[tuple[str, str]]:
    """(member id, tag) pairs of a tag CSV; ``InvalidInput`` names the file and line."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise InvalidInput(name, "is empty; expected a header member_id,tag")
    lowered = [h.strip().lower() for h in header]
    try:
        member_at = next(i for i, h in enumerate(lowered) if h in MEMBER_HEADERS)
        tag_at = next(i for i, h in enumerate(lowered) if h in TAG_HEADERS)
    except StopIteration:
        raise InvalidInput(name, f"line 1: expected a header with member_id and tag (or 会员ID "
                           f"and 标签), got {','.join(header)!r}") from None
    rows: list[tuple[str, str]] = []
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(member_at, tag_at):
            raise InvalidInput(name, f"line {line}: expected {len(header)} columns")
        member, tag = row[member_at].strip(), row[tag_at].strip()
        if not member:
            raise InvalidInput(name, f"line {line}: empty member id")
        check_tag(tag, f"{name}: line {line}: tag")
        rows.append((member, tag))
    return rows


def read_tag_csv(path: Path) -> list[tuple[str, str]]:
    """(member id, tag) pairs of a tag CSV file in UTF-8 (BOM or not) or GBK."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot read: {exc.strerror or exc}") from None
    except FileProblem as exc:
        raise InvalidInput(exc.field, exc.message) from None
    return parse_tag_rows(text, name=path.name)
