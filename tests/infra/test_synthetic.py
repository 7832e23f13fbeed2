from __future__ import annotations

from pathlib import Path

import pandas as pd

from segmentation.synthetic import generate


def test_deterministic_and_skewed(tmp_path: Path) -> None:
    a = generate(members=5000, out_dir=tmp_path / "a", seed=7)
    b = generate(members=5000, out_dir=tmp_path / "b", seed=7)
    c = generate(members=5000, out_dir=tmp_path / "c", seed=8)
    ta, tb = pd.read_parquet(a.transactions), pd.read_parquet(b.transactions)
    pd.testing.assert_frame_equal(ta, tb)
    assert not ta.equals(pd.read_parquet(c.transactions))
    members = pd.read_parquet(a.members)
    assert len(members) == 5000 and members["member_id"].is_unique
    assert 7 <= len(ta) / 5000 <= 15
    assert str(ta["ts"].dt.tz) == "Asia/Shanghai"
    assert ta["amount_fen"].dtype == "int64" and (ta["amount_fen"] > 0).all()
    spend = ta.groupby("member_id")["amount_fen"].sum().sort_values(ascending=False)
    assert spend.head(len(spend) // 10).sum() / spend.sum() > 0.35  # few heavy spenders
    last = members["last_purchase_at"]
    dormant = (ta["ts"].max() - last).dt.days > 180
    assert 0.15 < (dormant | last.isna()).mean() < 0.8  # many dormant members
    assert set(members["tier"]) == {"normal", "silver", "gold", "platinum"}
    assert members["birthday_is_lunar"].between(0, 1).all() and members["birthday_is_lunar"].any()
    assert members["phone"].dropna().str.fullmatch(r"1[3-9]\d{9}").all()
    assert members["wechat_openid"].dropna().str.len().eq(28).all()
    monthly = ta.groupby(ta["ts"].dt.month).size()
    assert monthly.max() / monthly.min() > 1.1  # seasonality
