"""Operator-facing language: zh-CN by default, English on request (``QUANPAI_LANG``).

Each package keeps its own words beside the code that prints them, as ``Words`` tables keyed by
a stable id with the Chinese and the English text; ``Words.get(key, lang)`` picks one. Charts
call ``use_cjk_font`` so Chinese labels render with a CJK font (Debian's ``fonts-noto-cjk``,
installed by scripts/system-deps.sh) instead of empty boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGS = ("zh-CN", "en")
DEFAULT_LANG = "zh-CN"
# fonts tried in order; the first matplotlib knows wins
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Serif CJK SC", "WenQuanYi Zen Hei",
             "Source Han Sans SC", "SimHei", "Microsoft YaHei")


def choose(lang: str, *, zh: str, en: str) -> str:
    """The text for ``lang`` (anything but ``en`` reads Chinese, the default)."""
    return en if lang == "en" else zh


class Words:
    """A table of operator-facing words: ``{key: (zh-CN, en)}``."""

    def __init__(self, table: Mapping[str, tuple[str, str]]) -> None:
        self._table = dict(table)

    def get(self, key: str, lang: str) -> str:
        """The word for ``key`` in ``lang``; an unknown key is shown as itself."""
        pair = self._table.get(key)
        if pair is None:
            return key
        return choose(lang, zh=pair[0], en=pair[1])

    def headers(self, keys: list[str], lang: str) -> list[str]:
        """Column headers of a table, in order."""
        return [self.get(k, lang) for k in keys]


def use_cjk_font(matplotlib: Any) -> str | None:
    """Point matplotlib's sans-serif family at an installed CJK font; returns its name, or
    None when none is installed (labels then fall back to matplotlib's default font)."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    if not installed.intersection(CJK_FONTS):
        # matplotlib's font cache predates the fonts (installed after it was first built):
        # register the system's CJK font files directly
        for path in font_manager.findSystemFonts():
            if "CJK" in path or "wqy" in path.lower():
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError):
                    continue
        installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONTS:
        if name in installed:
            families = list(matplotlib.rcParams["font.sans-serif"])
            matplotlib.rcParams["font.sans-serif"] = [name, *[f for f in families if f != name]]
            matplotlib.rcParams["font.family"] = "sans-serif"
            matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts lack U+2212
            return name
    return None
