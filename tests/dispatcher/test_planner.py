from __future__ import annotations

import pandas as pd

from dispatcher.campaigns import Campaign
from dispatcher.planner import plan


def members(n: int) -> pd.DataFrame:
    i = pd.RangeIndex(n)
    return pd.DataFrame({
        "member_id": [f"M{k}" for k in i],
        "name": ["王芳"] * n,
        # every third member follows the account, every second has a phone with SMS consent
        "wechat_openid": [f"o{k:027d}" if k % 3 == 0 else None for k in i],
        "wechat_subscribed": [k % 3 == 0 for k in i],
        "phone": [f"139{k:08d}" if k % 2 == 0 else None for k in i],
        "consent_sms": [True] * n,
        "alipay_user_id": [f"2088{k:012d}" if k % 5 == 0 else None for k in i],
        "consent_alipay": [k % 10 == 0 for k in i],
    })


def campaign(**changes: object) -> Campaign:
    fields: dict[str, object] = {"campaign_id": "c1", "merchant_id": "m", "name": "n",
                                 "template_id": "t", "coupon_title": "券",
                                 "channels": ("wechat_mass", "sms", "alipay")}
    return Campaign(**{**fields, **changes})  # type: ignore[arg-type]


def test_routes_to_first_reachable_channel_and_keeps_every_address() -> None:
    p = plan(members(30), campaign=campaign(), batch_size=4)
    rows = {r[0]: r for b in p.batches for r in b}
    assert rows["M0"][2:] == (f"o{0:027d}", f"2088{0:012d}", "13900000000", "wechat_mass")
    assert rows["M2"][5] == "sms" and rows["M2"][2] == ""
    assert rows["M5"][5] == "" and rows["M5"][3] == ""  # Alipay user without consent
    assert rows["M10"][5] == "sms"  # SMS comes before Alipay in this campaign's order
    assert p.routed == {"wechat_mass": 10, "sms": 10, "none": 10}
    assert all(len({r[5] for r in batch}) == 1 for batch in p.batches)
    assert max(len(b) for b in p.batches if b[0][5] != "wechat_mass") == 4


def test_mass_send_batches_are_bigger() -> None:
    p = plan(members(30_000), campaign=campaign(), batch_size=1000)
    sizes = {b[0][5]: len(b) for b in p.batches}
    assert sizes["wechat_mass"] == 10_000 and sizes["sms"] == 1000


def test_holdout_is_stable_and_near_its_share() -> None:
    frame = members(20_000)
    first = plan(frame, campaign=campaign(holdout_permille=100), batch_size=1000)
    again = plan(frame.sample(frac=1, random_state=1), campaign=campaign(holdout_permille=100),
                 batch_size=1000)
    assert sorted(first.held_out) == sorted(again.held_out)
    assert 1700 <= len(first.held_out) <= 2300
    assert first.treated + len(first.held_out) == 20_000
    other = plan(frame, campaign=campaign(campaign_id="c2", holdout_permille=100),
                 batch_size=1000)
    assert set(other.held_out) != set(first.held_out)


def test_channels_batches_are_spread_over_the_send() -> None:
    """Each channel's batches are spread evenly over the whole send (a provider's rate then
    overlaps with the others'), each channel's members still in their own order."""
    p = plan(members(60_000), campaign=campaign(), batch_size=1000)
    order = [b[0][5] for b in p.batches]
    assert order[:3] != [order[0]] * 3
    for channel in ("sms", "wechat_mass", ""):
        at = [i for i, c in enumerate(order) if c == channel]
        n = len(at)
        assert n >= 2
        # the k-th of n batches sits within one batch-gap of (k + 1/2) / n of the way
        gap = len(order) / n
        assert all(abs(i - (k + 0.5) * gap) <= gap for k, i in enumerate(at)), channel
        ids = [r[0] for i in at for r in p.batches[i]]
        assert ids == sorted(ids, key=lambda m: int(m[1:]))
