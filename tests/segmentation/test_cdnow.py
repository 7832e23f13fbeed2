"""A public real dataset: the CDNOW sample (2,357 customers, 6,919 purchases, same-day repeats).

Fader, Hardie & Lee published the per-customer BG/NBD summary of its 39-week calibration period
(to 1997-09-30): repeat purchases, recency and age in weeks, mean repeat spend. Our features in
the BG/NBD convention must reproduce every one of them, which pins same-day merging, the as-of
cut-off, first/last purchase days and spend sums on real data. RFM over the whole sample is then
checked for internal consistency with the same data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segmentation.features import bgnbd_frame
from segmentation.rfm import rfm_scores, transaction_features

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(
        DATA / "cdnow_sample.txt", sep=r"\s+", header=None,
        names=["master_id", "customer", "date", "cds", "dollars"], dtype={"date": str},
    ).assign(day=lambda t: pd.to_datetime(t.date, format="%Y%m%d"))


def test_bgnbd_convention_matches_the_published_calibration_summary(cdnow: pd.DataFrame) -> None:
    assert cdnow.groupby(["customer", "date"]).size().max() > 1  # same-day repeats exist
    features = transaction_features(
        cdnow, as_of=dt.date(1997, 9, 30), member_col="customer", time_col="day",
        amount_col="dollars", amount_unit="yuan", first_day_spend=True,
    )
    ours = bgnbd_frame(features).set_index("member_id").sort_index()
    published = pd.read_csv(DATA / "cdnow_summary_calibration.csv").set_index("ID").sort_index()
    assert list(ours.index) == list(published.index)
    assert (ours.frequency.to_numpy() == published.x.to_numpy()).all()
    # Published in weeks rounded to 2 decimals; ours are whole days.
    assert np.abs(ours.recency.to_numpy() / 7 - published.t_x.to_numpy()).max() <= 0.005 + 1e-9
    assert np.abs(ours["T"].to_numpy() / 7 - published["T"].to_numpy()).max() <= 0.005 + 1e-9
    # Mean repeat spend in cents vs published dollars (2 decimals).
    assert np.abs(ours.monetary_value.to_numpy() / 100 - published.zbar.to_numpy()).max() <= 0.0051


def test_rfm_over_the_whole_sample(cdnow: pd.DataFrame) -> None:
    scores = rfm_scores(cdnow, member_col="customer", time_col="day", amount_col="dollars",
                        amount_unit="yuan")
    assert len(scores) == 2357
    # The default as-of date is the last purchase day, 1998-06-30: someone has recency 0.
    assert scores.recency_days.min() == 0
    first = cdnow.groupby("customer").day.min()
    assert scores.recency_days.max() == (pd.Timestamp("1998-06-30") - first.min()).days
    # Spend sums to the dataset's total to the cent.
    assert scores.monetary_total.sum() == round(cdnow.dollars.sum() * 100)
    # About half the customers bought on one day only: they share F = 1, the two-day buyers
    # start at 1 + floor(5 * share of one-timers), and the bins between stay empty.
    one_timers = scores.frequency == 1
    assert 0.4 < one_timers.mean() < 0.6
    assert set(scores.f_score[one_timers]) == {1}
    two_day = int(1 + 5 * one_timers.sum() // len(scores))
    assert set(scores.f_score[scores.frequency == 2]) == {two_day}
    assert not scores.f_score.isin(range(2, two_day)).any() and two_day > 2
    for column, score in (("recency_days", "r_score"), ("frequency", "f_score"),
                          ("monetary_total", "m_score")):
        assert (scores.groupby(column)[score].nunique() == 1).all()
    assert scores.segment.notna().all()
    assert {"Champions", "Lost", "At Risk"} <= set(scores.segment)
