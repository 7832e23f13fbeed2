"""issue_batch on a real Redis and on a real three-master Redis Cluster."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from catalog.codes import make_codes, verify_code
from catalog.errors import InvalidInput, NotFound
from catalog.issuance import issue_batch
from catalog.templates import CouponTemplate, save_template, stock_left

from .conftest import SECRET

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


@pytest.fixture(params=["single", "cluster"])
def client(request: pytest.FixtureRequest) -> redis.Redis:
    name = "redis_client" if request.param == "single" else "cluster_client"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def _template(**overrides: object) -> CouponTemplate:
    values: dict[str, object] = dict(
        merchant_id="m1", kind="threshold", name="满100减20", total_stock=1000,
        threshold_fen=10000, discount_fen=2000, valid_days=30,
    )
    values.update(overrides)
    return CouponTemplate(**values)  # type: ignore[arg-type]


def _issue(client: redis.Redis, tid: str, members: list[str], campaign: str = "c1"):
    return issue_batch(client, merchant_id="m1", campaign_id=campaign, template_id=tid,
                       member_ids=members, now=NOW, secret=SECRET)


def test_new_then_redelivered_batch_is_existing(client: redis.Redis) -> None:
    tid = save_template(client, _template())
    members = [f"M{i:06d}" for i in range(1000)]
    first = _issue(client, tid, members)
    assert [r.status for r in first] == ["new"] * 1000
    assert len({r.code for r in first}) == 1000
    again = _issue(client, tid, members)
    assert [r.status for r in again] == ["existing"] * 1000
    assert [r.code for r in again] == [r.code for r in first]
    assert stock_left(client, "m1", tid) == (0, None)
    for r in first[:20]:
        ref = verify_code(r.code, secret=SECRET, merchant_id="m1")
        assert ref is not None and ref.template_id == tid
        assert len(r.code) == 16


def test_stock_and_budget_never_below_zero(client: redis.Redis) -> None:
    tid = save_template(client, _template(total_stock=5))
    got = _issue(client, tid, [f"M{i}" for i in range(8)])
    assert [r.status for r in got] == ["new"] * 5 + ["out_of_stock"] * 3
    assert all(r.code == "" for r in got[5:])
    budgeted = save_template(client, _template(total_stock=100, budget_fen=5000))
    got = _issue(client, budgeted, [f"M{i}" for i in range(4)])
    assert [r.status for r in got] == ["new", "new", "out_of_stock", "out_of_stock"]
    assert stock_left(client, "m1", budgeted) == (98, 1000)


def test_per_member_limit_across_campaigns(client: redis.Redis) -> None:
    tid = save_template(client, _template(per_member_limit=2))
    assert _issue(client, tid, ["A"], "c1")[0].status == "new"
    assert _issue(client, tid, ["A"], "c2")[0].status == "new"
    third = _issue(client, tid, ["A", "B"], "c3")
    assert [r.status for r in third] == ["limit_reached", "new"]
    # a member twice in one batch is issued once
    dup = _issue(client, tid, ["C", "C"], "c4")
    assert [r.status for r in dup] == ["new", "existing"] and dup[0].code == dup[1].code


def test_unknown_template_and_bad_input(client: redis.Redis) -> None:
    with pytest.raises(NotFound):
        _issue(client, "t999", ["A"])
    tid = save_template(client, _template())
    with pytest.raises(InvalidInput) as err:
        _issue(client, tid, ["bad|id"])
    assert err.value.field == "member_ids"
    with pytest.raises(InvalidInput) as err:
        issue_batch(client, merchant_id="m1", campaign_id="c", template_id=tid,
                    member_ids=["A"], now=datetime(2026, 1, 1), secret=SECRET)
    assert err.value.field == "now"
    assert stock_left(client, "m1", tid) == (1000, None)


def test_codes_of_other_merchant_or_mistyped_do_not_verify(client: redis.Redis) -> None:
    tid = save_template(client, _template())
    code = _issue(client, tid, ["A"])[0].code
    assert verify_code(code, secret=SECRET, merchant_id="m2") is None
    assert verify_code(code, secret=b"other", merchant_id="m1") is None
    swapped = code[:5] + ("X" if code[5] != "X" else "Y") + code[6:]
    assert verify_code(swapped, secret=SECRET, merchant_id="m1") is None
    typed = "-".join(code[i:i + 4] for i in range(0, 16, 4)).lower()
    assert verify_code(typed, secret=SECRET, merchant_id="m1") is not None


def test_batch_codes_are_the_codes_one_at_a_time(client: redis.Redis) -> None:
    """Issuance spells its codes in one pass (``make_codes``); each is the code ``make_code``
    gives for its serial, verifies, and points at the serial the store holds."""
    from catalog.codes import make_code

    tid = save_template(client, _template(total_stock=3))
    issued = _issue(client, tid, ["A", "B", "C", "D"])
    assert [c.status for c in issued] == ["new", "new", "new", "out_of_stock"]
    assert issued[3].code == ""
    number = int(tid[1:])
    refs = [verify_code(c.code, secret=SECRET, merchant_id="m1") for c in issued[:3]]
    assert [r.template_number if r else None for r in refs] == [number] * 3
    assert [make_code(secret=SECRET, merchant_id="m1", template_number=number,
                      serial=r.serial) for r in refs if r] == [c.code for c in issued[:3]]
    with pytest.raises(ValueError):
        make_codes(secret=SECRET, merchant_id="m1", template_number=number, serials=[0])
