"""The scheduler's parts on small hand-made inputs: definitions and their errors, the holiday
calendar against the State Council's notices, lunar lookups, trigger date rules, BG/NBD against
the published CDNOW fit, and the lease with its fencing token on a real Redis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis

from dispatcher.scheduler.bgnbd import BgNbd, fit, log_likelihood
from dispatcher.scheduler.definitions import Trigger, parse_definition, read_definition_file
from dispatcher.scheduler.errors import Fenced, InvalidDefinition
from dispatcher.scheduler.holidays import (
    CalendarUnknown,
    adjusted_workdays,
    is_workday,
    occasions,
)
from dispatcher.scheduler.lease import Lease
from dispatcher.scheduler.store import ScheduleStore
from dispatcher.scheduler.triggers import NO_DAY, MemberDays, evaluate
from segmentation.local_dates import day_number
from segmentation.lunar import lunar_birth_keys, lunar_of_day, solar_of_lunar

CDNOW = Path(__file__).parents[1] / "segmentation" / "data" / "cdnow_summary_calibration.csv"


def source(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "bday", "name": "生日券", "trigger": {"type": "birthday", "days_before": 1},
        "audience": {"transactions": {"path": "tx.parquet"}, "members": {"path": "m.parquet"},
                     "where": {"reachable": ["wechat", "sms"]}},
        "coupon": {"discount_fen": 2000, "threshold_fen": 5000, "valid_days": 7},
        "channels": ["wechat", "sms"], "send_at": "09:30", "lateness": "2d",
    }
    base.update(changes)
    return base


def test_a_valid_definition_parses_with_absolute_paths(tmp_path: Path) -> None:
    parsed = parse_definition(source(), base=tmp_path)
    assert parsed.trigger == Trigger("birthday", days_before=1)
    assert parsed.send_at == dt.time(9, 30) and parsed.lateness == dt.timedelta(days=2)
    assert parsed.name == "生日券" and parsed.campaign.coupon.discount_fen == 2000
    assert parsed.source["audience"]["transactions"]["path"] == str(tmp_path / "tx.parquet")
    # The stored source parses again to the same definition (the scheduler re-reads it).
    again = parse_definition(parsed.source, base=Path("/"))
    assert again.trigger == parsed.trigger and again.audience.members == parsed.audience.members


@pytest.mark.parametrize(("changes", "field"), [
    ({"id": "Bad Id"}, "id"),
    ({"trigger": {"type": "yearly"}}, "trigger.type"),
    ({"trigger": {"type": "birthday", "days_before": 90}}, "trigger.days_before"),
    ({"trigger": {"type": "wake_up", "inactive_days": 30}}, "trigger.cooldown_days"),
    ({"trigger": {"type": "wake_up", "inactive_days": 30, "cooldown_days": 30,
                  "max_p_alive": 1.5}}, "trigger.max_p_alive"),
    ({"trigger": {"type": "holiday", "occasions": ["christmas"]}}, "trigger.occasions"),
    ({"trigger": {"type": "member_day", "weekly": ["wed"], "monthly": [8]}}, "trigger"),
    ({"trigger": {"type": "member_day", "monthly": [32]}}, "trigger.monthly"),
    ({"audience": {"transactions": {"path": "t"}, "members": {"path": "m"},
                   "where": {"tier": ["diamond"]}}}, "audience.where.tier"),
    ({"audience": {"transactions": {"path": "t"}}}, "audience.members"),
    ({"coupon": {"discount_fen": 6000, "threshold_fen": 5000}}, "coupon.discount_fen"),
    ({"channels": ["fax"]}, "channels[0]"),
    ({"budget": {"max_coupons": 0}}, "budget.max_coupons"),
    ({"holdout_permille": 900}, "holdout_permille"),
    ({"send_at": "25:00"}, "send_at"),
    ({"lateness": "soon"}, "lateness"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"start": "yesterday"}, "start"),
    ({"colour": "red"}, "colour"),
])
def test_errors_name_the_field(tmp_path: Path, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(source(**changes), base=tmp_path)
    assert caught.value.field == field


def test_definition_files_in_yaml_json_and_gbk(tmp_path: Path) -> None:
    yaml_file = tmp_path / "bday.yaml"
    yaml_file.write_text("id: bday\nname: 生日券\ntrigger: {type: birthday}\n"
                         "audience: {transactions: {path: t.parquet}, members: {path: m.csv}}\n"
                         "coupon: {discount_fen: 1000}\n", encoding="gb18030")
    assert read_definition_file(yaml_file).name == "生日券"
    json_file = tmp_path / "d.json"
    json_file.write_text('{"id": "x", "trigger": {"type": "birthday"}, "audience": '
                         '{"transactions": {"path": "t"}, "members": {"path": "m"}}, '
                         '"coupon": {"discount_fen": 1000}}', encoding="utf-8-sig")
    assert read_definition_file(json_file).id == "x"
    json_file.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidDefinition, match="not valid JSON"):
        read_definition_file(json_file)


def test_official_calendars_of_2025_and_2026() -> None:
    def starts(year: int) -> dict[str, str]:
        return {o.key: o.day.isoformat() for o in occasions(year) if o.official}

    assert starts(2025) == {
        "new_year": "2025-01-01", "spring_festival": "2025-01-28", "qingming": "2025-04-04",
        "labour_day": "2025-05-01", "dragon_boat": "2025-05-31", "mid_autumn": "2025-10-01",
        "national_day": "2025-10-01"}
    assert starts(2026) == {
        "new_year": "2026-01-01", "spring_festival": "2026-02-15", "qingming": "2026-04-04",
        "labour_day": "2026-05-01", "dragon_boat": "2026-06-19", "mid_autumn": "2026-09-25",
        "national_day": "2026-10-01"}
    # 调休: weekend days worked.
    assert [d.isoformat() for d in adjusted_workdays(2025)] == [
        "2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"]
    assert [d.isoformat() for d in adjusted_workdays(2026)] == [
        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
    assert is_workday(dt.date(2026, 2, 14)) and not is_workday(dt.date(2026, 2, 16))
    lunar = {o.key: o.day.isoformat() for o in occasions(2026) if not o.official}
    assert lunar == {"lantern": "2026-03-03", "qixi": "2026-08-19",
                     "double_ninth": "2026-10-18"}
    with pytest.raises(CalendarUnknown, match="2031"):
        occasions(2031)


def test_lunar_lookups_and_birthday_rules() -> None:
    assert lunar_of_day(dt.date(2025, 1, 29))[:4] == (2025, 1, 1, False)  # 春节 2025
    assert lunar_of_day(dt.date(2025, 7, 25))[:4] == (2025, 6, 1, True)  # 闰六月
    assert lunar_of_day(dt.date(1978, 9, 17))[1:3] == (8, 15)  # 中秋 1978 (lunardate: 8/14)
    assert solar_of_lunar(2025, 8, 15) == dt.date(2025, 10, 6)
    # A birth in a leap month folds into the ordinary month.
    month, day = lunar_birth_keys(np.array([day_number(dt.date(2023, 3, 22))]))  # 闰二月初一
    assert (int(month[0]), int(day[0])) == (2, 1)


def members(births: list[dt.date], lunar: list[bool]) -> MemberDays:
    n = len(births)
    none = np.full(n, NO_DAY, np.int64)
    return MemberDays(np.array([f"m{i}" for i in range(n)]),
                      np.array([day_number(b) for b in births], np.int64), np.array(lunar),
                      none, none, np.zeros(n, np.int64), none)


def test_birthday_dates_29_february_and_day_30() -> None:
    base = members([dt.date(2000, 2, 29), dt.date(1990, 6, 1)], [False, False])
    trigger = Trigger("birthday")
    due = evaluate(trigger, base, dt.date(2025, 2, 28))
    assert due.groups[0].period == "2025" and due.groups[0].mask.tolist() == [True, False]
    assert not evaluate(trigger, base, dt.date(2024, 2, 28)).groups[0].mask.any()
    assert evaluate(trigger, base, dt.date(2024, 2, 29)).groups[0].mask.tolist()[0]
    # Lunar day 30 of a month that has 29 days this year is celebrated on day 29.
    born = dt.date(1990, 1, 26)  # 1989 lunar 12/30
    assert lunar_of_day(born)[1:3] == (12, 30)
    lunar = members([born], [True])
    year_of_29 = next(y for y in range(2025, 2035)
                      if lunar_of_day(solar_of_lunar(y, 12, 1))[4] == 29)
    day_29 = solar_of_lunar(year_of_29, 12, 29)
    due = evaluate(trigger, lunar, day_29)
    assert due.groups[1].mask.tolist() == [True] and due.groups[1].period == f"lunar-{year_of_29}"


def test_member_day_monthly_falls_on_the_last_day_of_short_months() -> None:
    trigger = Trigger("member_day", month_days=frozenset({31}))
    base = members([dt.date(2000, 1, 1)], [False])
    assert evaluate(trigger, base, dt.date(2025, 4, 30)).groups
    assert not evaluate(trigger, base, dt.date(2025, 4, 29)).groups
    weekly = Trigger("member_day", weekdays=frozenset({2}))
    assert evaluate(weekly, base, dt.date(2026, 12, 2)).groups  # a Wednesday


def test_bgnbd_reproduces_the_published_cdnow_fit() -> None:
    data = pd.read_csv(CDNOW)
    x, t_x, big_t = (data[c].to_numpy(np.float64) for c in ("x", "t_x", "T"))
    model = fit(x, t_x, big_t)
    published = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)  # Fader, Hardie & Lee (2005)
    for ours, theirs in zip((model.r, model.alpha, model.a, model.b),
                            (published.r, published.alpha, published.a, published.b),
                            strict=True):
        assert ours == pytest.approx(theirs, rel=0.01)
    assert log_likelihood(model, x, t_x, big_t) == pytest.approx(-9582.4, abs=0.5)
    alive = model.p_alive(x, t_x, big_t)
    assert np.all(alive[x == 0] == 1.0)
    # A frequent buyer who stopped long ago is less likely alive than one who just bought.
    gone, fresh = model.p_alive(np.array([10.0, 10.0]), np.array([5.0, 38.0]),
                                np.array([39.0, 39.0]))
    assert gone < 0.1 < 0.9 < fresh


def test_lease_hands_over_and_fences_the_old_holder(redis_client: redis.Redis) -> None:
    first = Lease(client=redis_client, merchant_id="m", holder="a", ttl=0.3)
    second = Lease(client=redis_client, merchant_id="m", holder="b", ttl=10)
    store = ScheduleStore(client=redis_client, merchant_id="m")
    token_a = first.acquire()
    assert token_a and second.acquire() is None
    store.set_cursor(token_a, "x", dt.date(2026, 1, 1))
    # a stops renewing (killed or stalled); b takes over once the lease lapses
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while (token_b := second.acquire()) is None:
        assert dt.datetime.now() < deadline
    assert token_b > token_a
    with pytest.raises(Fenced):
        store.set_cursor(token_a, "x", dt.date(2026, 1, 2))
    with pytest.raises(Fenced):
        store.take(token_a, schedule_id="x", period="p", run_id="x-1", day_number=1,
                   cooldown_days=0, members=["m1"])
    assert first.acquire() is None  # the old holder now stands by
    store.set_cursor(token_b, "x", dt.date(2026, 1, 2))
    assert store.cursor("x") == dt.date(2026, 1, 2)


def test_take_is_once_per_period_and_respects_the_cooldown(redis_client: redis.Redis) -> None:
    lease = Lease(client=redis_client, merchant_id="m", holder="a")
    token = lease.acquire()
    assert token
    store = ScheduleStore(client=redis_client, merchant_id="m")
    first = store.take(token, schedule_id="w", period="wake", run_id="w-1", day_number=100,
                       cooldown_days=30, members=["a", "b"])
    assert first == ["a", "b"]
    # The same run again (a restart) keeps its members; another run within the cooldown not.
    assert store.take(token, schedule_id="w", period="wake", run_id="w-1", day_number=100,
                      cooldown_days=30, members=["a", "b"]) == ["a", "b"]
    assert store.take(token, schedule_id="w", period="wake", run_id="w-2", day_number=129,
                      cooldown_days=30, members=["a", "c"]) == ["c"]
    assert store.take(token, schedule_id="w", period="wake", run_id="w-3", day_number=130,
                      cooldown_days=30, members=["a", "b"]) == ["a", "b"]
    assert store.run_members("w-2") == {"c"}
