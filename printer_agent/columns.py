"""Text widths in printer columns: a Chinese (wide or fullwidth) character takes two columns of
Font A, everything else one. Receipts are laid out on these widths, never on ``len()``."""

from __future__ import annotations

import unicodedata
from functools import lru_cache


@lru_cache(maxsize=4096)
def char_columns(char: str) -> int:
    """Columns one character takes: 2 for East Asian wide/fullwidth, 0 for combining marks."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_columns(text: str) -> int:
    """Columns ``text`` takes on one line."""
    return sum(char_columns(c) for c in text)


def wrap(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` columns (never splitting a character);
    explicit newlines are kept. ASCII words are not hyphenated: receipts print order ids and
    codes that must stay exact, so a long token is cut at the width, character by character."""
    if width <= 0:
        raise ValueError("width must be positive")
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line, used = "", 0
        for char in paragraph:
            w = char_columns(char)
            if used + w > width:
                lines.append(line)
                line, used = "", 0
            line += char
            used += w
        lines.append(line)
    return lines


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` columns."""
    out, used = "", 0
    for char in text:
        w = char_columns(char)
        if used + w > width:
            break
        out += char
        used += w
    return out


def align(text: str, width: int, how: str) -> str:
    """``text`` padded with spaces to ``width`` columns: left, center or right."""
    gap = max(0, width - text_columns(text))
    if how == "right":
        return " " * gap + text
    if how == "center":
        return " " * (gap // 2) + text + " " * (gap - gap // 2)
    return text + " " * gap


def pair(left: str, right: str, width: int) -> list[str]:
    """A label on the left and a value on the right of one line; when both do not fit, the
    value goes right-aligned on the next line(s)."""
    gap = width - text_columns(left) - text_columns(right)
    if gap >= 1:
        return [left + " " * gap + right]
    return wrap(left, width) + [align(line, width, "right") for line in wrap(right, width)]
