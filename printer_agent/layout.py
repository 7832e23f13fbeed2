"""Receipt templates (TOML files, not code) filled into a layout of lines, QR codes and a cut.

A template is a list of ``[[block]]`` tables, each one of::

    text = "会员 {member}"   align = "left|center|right"  bold = true  size = "double"
    pair = ["优惠", "{discount}"]      # label left, value right on one line
    rule = "-"                         # a full-width line of that character
    qr = "{claim_url}"  size = 6       # native QR, module size 1-16
    feed = 2                           # blank lines
    cut = true

``when = "field"`` keeps a block only when that field is not empty. Placeholders are
``{name}`` from ``printer_agent.jobs.fields``; widths are display columns (CJK two wide), so a
layout looks the same on paper (``escpos_render``) and in the preview (``preview``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from printer_agent.columns import align, pair, wrap
from printer_agent.errors import TemplateError

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
REPRINT_BANNER = "** 补打 REPRINT · 可能重复 **"


@dataclass(frozen=True)
class TextLine:
    text: str  # already padded to the line's columns
    bold: bool = False
    double: bool = False  # double width and height: half the columns


@dataclass(frozen=True)
class QrCode:
    data: str
    size: int = 6


@dataclass(frozen=True)
class Feed:
    lines: int = 1


@dataclass(frozen=True)
class Cut:
    pass


Element = TextLine | QrCode | Feed | Cut


@dataclass(frozen=True)
class Layout:
    columns: int  # Font A columns of the paper: 32 (58 mm) or 48 (80 mm)
    elements: tuple[Element, ...]


def load_template(kind: str, *, directory: Path | None = None) -> list[dict[str, Any]]:
    """The blocks of template ``kind``: ``directory/<kind>.toml`` when it exists, else the
    packaged one."""
    path = directory / f"{kind}.toml" if directory else None
    try:
        if path is not None and path.is_file():
            text = path.read_text(encoding="utf-8")
            where = str(path)
        else:
            text = resources.files("printer_agent.receipts").joinpath(f"{kind}.toml").read_text(
                encoding="utf-8")
            where = f"packaged {kind}.toml"
        blocks = tomllib.loads(text).get("block")
    except (OSError, FileNotFoundError):
        raise TemplateError(f"no receipt template for {kind!r}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"template {kind}: {exc}") from None
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise TemplateError(f"{where}: expected [[block]] tables")
    return blocks


def _fill(text: object, values: dict[str, str], kind: str) -> str:
    if not isinstance(text, str):
        raise TemplateError(f"template {kind}: expected text, got {text!r}")

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"template {kind}: unknown placeholder {{{name}}}")
        return values[name]

    return _PLACEHOLDER.sub(one, text)


def render(
    blocks: list[dict[str, Any]], values: dict[str, str], *, columns: int, kind: str,
    reprint: bool = False,
) -> Layout:
    """Fill ``blocks`` with ``values`` into a layout ``columns`` wide. A reprint (a job that may
    have printed before a crash) starts with a banner so a duplicate is recognisable."""
    out: list[Element] = []
    if reprint:
        out.append(TextLine(align(REPRINT_BANNER, columns, "center"), bold=True))
    for block in blocks:
        when = block.get("when")
        if when is not None and not values.get(str(when)):
            continue
        if "text" in block:
            double = block.get("size") == "double"
            width = columns // 2 if double else columns
            how = str(block.get("align", "left"))
            if how not in ("left", "center", "right"):
                raise TemplateError(f"template {kind}: align must be left, center or right")
            for line in wrap(_fill(block["text"], values, kind), width):
                out.append(TextLine(align(line, width, how).rstrip() if how != "right"
                                    else align(line, width, how), bool(block.get("bold")),
                                    double))
        elif "pair" in block:
            parts = block["pair"]
            if not isinstance(parts, list) or len(parts) != 2:
                raise TemplateError(f"template {kind}: pair needs [label, value]")
            left, right = (_fill(p, values, kind) for p in parts)
            out.extend(TextLine(line, bool(block.get("bold")))
                       for line in pair(left, right, columns))
        elif "rule" in block:
            char = str(block["rule"])[:1] or "-"
            out.append(TextLine(char * (columns // (2 if ord(char) > 0x2E7F else 1))))
        elif "qr" in block:
            size = block.get("size", 6)
            if not isinstance(size, int) or not 1 <= size <= 16:
                raise TemplateError(f"template {kind}: qr size must be 1-16")
            data = _fill(block["qr"], values, kind)
            if data:
                out.append(QrCode(data, size))
        elif "feed" in block:
            lines = block["feed"]
            if not isinstance(lines, int) or not 0 <= lines <= 10:
                raise TemplateError(f"template {kind}: feed must be 0-10 lines")
            out.append(Feed(lines))
        elif block.get("cut"):
            out.append(Cut())
        else:
            raise TemplateError(f"template {kind}: a block needs text, pair, rule, qr, feed or "
                                f"cut ({sorted(block)})")
    return Layout(columns=columns, elements=tuple(out))
