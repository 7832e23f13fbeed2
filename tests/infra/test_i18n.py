"""Chinese by default, English on request, and charts that draw Chinese with a CJK font."""

from __future__ import annotations

import warnings
from pathlib import Path

from infra.i18n import Words, choose, use_cjk_font

WORDS = Words({"issued": ("已发放", "issued"), "redeemed": ("已核销", "redeemed")})


def test_words_pick_the_language() -> None:
    assert WORDS.headers(["issued", "redeemed"], "zh-CN") == ["已发放", "已核销"]
    assert WORDS.headers(["issued", "redeemed"], "en") == ["issued", "redeemed"]
    assert WORDS.get("other", "zh-CN") == "other"
    assert choose("zh-CN", zh="券", en="coupon") == "券"


def test_chart_labels_render_with_a_cjk_font(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = use_cjk_font(matplotlib)
    assert font is not None and "CJK" in font  # fonts-noto-cjk, from scripts/system-deps.sh
    figure, axes = plt.subplots()
    axes.bar(["已发放", "已核销"], [10, 3])
    axes.set_title("活动效果")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph ... missing from font" would be a warning
        figure.savefig(tmp_path / "chart.png")
    plt.close(figure)
    assert (tmp_path / "chart.png").stat().st_size > 1000
