"""会员分群 and 优惠券 in the browser: a count that follows the conditions, the RFM heatmap drawn,
a snapshot saved; a template created in yuan and stored in fen, a bad field answered beside it."""

from __future__ import annotations

from tests.console.conftest import MEMBERS, ConsolePage, Stack


def _count(console: ConsolePage) -> int:
    text = console.page.locator('[data-test="segment-count"]').inner_text()
    return int(text.replace(",", "")) if text.replace(",", "").isdigit() else -1


def _wait_count(console: ConsolePage, *, equal: int | None = None,
                not_equal: int | None = None) -> None:
    """Wait until the live count shows ``equal`` (or anything but ``not_equal``)."""
    console.page.wait_for_function("""([equal, notEqual]) => {
        const text = document.querySelector('[data-test=segment-count]').innerText;
        const n = Number(text.replace(/,/g, ''));
        if (text === '…' || Number.isNaN(n)) return false;
        return equal !== null ? n === equal : n !== notEqual; }""", arg=[equal, not_equal])


def _error_beside(console: ConsolePage, label: str) -> str:
    """The error message shown under the input labelled ``label`` (waits for it)."""
    error = console.page.locator(".el-form-item", has=console.page.get_by_label(label)).locator(
        ".el-form-item__error")
    error.wait_for()
    return str(error.inner_text())


def _choose(console: ConsolePage, label: str, option: str) -> None:
    # opened from the keyboard, as an operator without a mouse would
    console.page.get_by_role("combobox", name=label, exact=True).focus()
    console.page.keyboard.press("Enter")
    console.page.locator(".el-select-dropdown:visible .el-select-dropdown__item",
                         has_text=option).first.click()
    console.page.keyboard.press("Escape")


def test_segment_count_follows_the_conditions_and_a_snapshot_is_saved(
        console: ConsolePage, console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    console.go("segments")
    page = console.page
    _wait_count(console, equal=MEMBERS)
    assert _count(console) == MEMBERS

    _choose(console, "会员等级", "金卡")
    _wait_count(console, not_equal=MEMBERS)
    page.wait_for_timeout(600)  # the debounced request for the last change
    gold = _count(console)
    expected = console_stack.api("POST", "/v1/segments/preview",
                                 {"where": {"all": [{"tier": ["gold"]}]}})
    assert 0 < gold < MEMBERS and gold == expected["count"]
    sample = page.locator('[data-test="segment-sample"] tbody tr')
    assert sample.count() > 0
    assert "****" in sample.first.inner_text()  # phones are masked

    page.get_by_label("积分不少于").fill("999999999")
    _wait_count(console, equal=0)
    page.get_by_label("积分不少于").fill("")
    _wait_count(console, equal=gold)

    page.wait_for_function("document.querySelector('[data-test=rfm-heatmap] canvas') !== null")
    page.wait_for_timeout(800)  # the chart's entry animation
    assert console.canvas_painted('[data-test="rfm-heatmap"]')

    page.get_by_label("快照标识（字母、数字、- 或 _）").fill("gold-members")
    page.get_by_label("快照名称（中文）").fill("金卡会员")
    page.get_by_role("button", name="保存为快照").click()
    notice = page.locator('[data-test="notice"]')
    notice.wait_for()
    assert f"（{gold} 人）" in notice.inner_text()
    saved = console_stack.api("GET", "/v1/segments/snapshots")["snapshots"]
    assert any(s["name"] == "gold-members" and s["count"] == gold for s in saved)
    console.screenshot("segments")


def test_segment_condition_error_shows_beside_its_field(console: ConsolePage,
                                                       console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    console.go("segments")
    page = console.page
    page.get_by_label("沉睡天数不少于").fill("99999999")
    assert "36500" in _error_beside(console, "沉睡天数不少于").replace(",", "")


def test_templates_of_every_kind_are_created_in_yuan_and_listed(console: ConsolePage,
                                                                console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    console.go("templates")
    page = console.page
    page.get_by_label("券名称").fill("满100减15.5")
    page.get_by_label("使用门槛（元）").fill("100")
    page.get_by_label("减免金额（元）").fill("15.5")
    page.get_by_role("button", name="创建").click()
    page.locator('[data-test="notice"]').wait_for()
    row = page.locator('[data-test="template-table"] tbody tr', has_text="满100减15.5")
    row.wait_for()
    assert "满¥100.00减¥15.50" in row.inner_text()
    stored = [t for t in console_stack.api("GET", "/v1/templates")["templates"]
              if t["name"] == "满100减15.5"]
    assert len(stored) == 1
    assert stored[0]["threshold_fen"] == 10000 and stored[0]["discount_fen"] == 1550

    # a discount above the threshold: the catalog's error lands beside the discount input
    page.get_by_label("券名称").fill("坏的满减")
    page.get_by_label("使用门槛（元）").fill("10")
    page.get_by_label("减免金额（元）").fill("20")
    page.get_by_role("button", name="创建").click()
    assert "threshold" in _error_beside(console, "减免金额（元）")

    for kind, fill, rule in [
        ("折扣券", {"tpl-rate": "8.5", "tpl-cap": "30"}, "8.5折"),
        ("兑换券", {"tpl-item": "SKU-COFFEE"}, "兑换 SKU-COFFEE"),
        ("次卡", {"tpl-uses": "12"}, "12 次"),
        ("时长卡", {"tpl-duration": "90", "tpl-daily": "1"}, "90 天"),
        ("礼品卡", {"tpl-face": "200"}, "面值¥200.00"),
        ("代金券（无门槛）", {"tpl-discount": "5"}, "无门槛¥5.00"),
    ]:
        _choose(console, "券类型", kind)
        name = f"测试{kind}"
        page.get_by_label("券名称").fill(name)
        for element_id, value in fill.items():
            page.locator(f"#{element_id}").fill(value)
        page.get_by_role("button", name="创建").click()
        row = page.locator('[data-test="template-table"] tbody tr', has_text=name)
        row.wait_for()
        assert rule in row.inner_text(), (kind, row.inner_text())
    console.screenshot("templates")
