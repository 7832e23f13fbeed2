"""Sign-in, roles, the session cookie, CSRF, sign-out, language, keyboard and phone layout."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from tests.console.conftest import ConsolePage, Stack

NAV_OPERATOR = ["会员分群", "优惠券", "营销活动", "周期任务", "效果分析", "门店"]


def _nav(console: ConsolePage) -> list[str]:
    console.page.wait_for_selector("nav.qp-nav a")
    return [text.strip() for text in console.page.locator("nav.qp-nav a").all_inner_texts()]


def _session_cookie(console: ConsolePage) -> dict[str, Any] | None:
    cookies = console.page.context.cookies()
    return next((c for c in cookies if c["name"] == "qp_session"), None)


def test_operator_signs_in_gets_a_strict_httponly_cookie_and_signs_out(
        console: ConsolePage, console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    assert _nav(console) == NAV_OPERATOR
    assert "运营" in console.page.locator('[data-test="who"]').inner_text()
    cookie = _session_cookie(console)
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP here; Secure is set when served over TLS
    assert console.page.evaluate("document.cookie") == ""  # scripts cannot read the session
    console.screenshot("signed-in")

    console.page.reload()  # the session survives a reload (cookie, not page memory)
    assert _nav(console) == NAV_OPERATOR

    console.page.locator('[data-test="sign-out"]').click()
    console.page.get_by_label("角色令牌").wait_for()
    assert _session_cookie(console) is None
    status = console.page.evaluate("fetch('/v1/templates').then(r => r.status)")
    assert status == 401


def test_cashier_and_member_tokens_are_refused(console: ConsolePage, console_stack: Stack
                                               ) -> None:
    console.sign_in(console_stack.token("cashier", "--store", "S001"))
    error = console.page.locator(".el-form-item__error")
    error.wait_for()
    assert "cashier" in error.inner_text()
    assert _session_cookie(console) is None
    assert console.page.locator("nav.qp-nav").count() == 0
    console.screenshot("sign-in-refused")

    console.sign_in("qp1.forged.token")
    console.page.get_by_text("not valid").wait_for()
    assert _session_cookie(console) is None


def test_analyst_sees_only_what_an_analyst_may_do(console: ConsolePage, console_stack: Stack
                                                  ) -> None:
    console.sign_in(console_stack.token("analyst"))
    assert _nav(console) == ["效果分析"]
    # the API agrees: an analyst session changes nothing
    status = console.page.evaluate("""async () => {
        const s = await (await fetch('/console/session')).json();
        const r = await fetch('/v1/templates', {method: 'POST', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token},
            body: JSON.stringify({kind: 'cash', name: 'x', total_stock: 1, discount_fen: 100,
                                  valid_days: 3})});
        return r.status; }""")
    assert status == 403


def test_state_changes_without_the_csrf_token_are_refused(console: ConsolePage,
                                                          console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    _nav(console)
    result = console.page.evaluate("""async () => {
        const body = JSON.stringify({kind: 'cash', name: '无CSRF', total_stock: 5,
                                     discount_fen: 500, valid_days: 7});
        const post = (headers) => fetch('/v1/templates', {method: 'POST',
            headers: {'Content-Type': 'application/json', ...headers}, body});
        const without = await post({});
        const wrong = await post({'X-CSRF-Token': 'not-the-token'});
        const s = await (await fetch('/console/session')).json();
        const right = await post({'X-CSRF-Token': s.csrf_token});
        const signOut = await fetch('/console/session', {method: 'DELETE'});
        return {without: without.status, withoutBody: await without.json(),
                wrong: wrong.status, right: right.status, signOut: signOut.status,
                list: (await (await fetch('/v1/templates')).json()).templates.map(t => t.name)};
    }""")
    assert result["without"] == 403 and result["wrong"] == 403
    assert result["withoutBody"]["field"] == "X-CSRF-Token"
    assert result["right"] == 201
    assert result["signOut"] == 403  # signing out is a state change too
    assert result["list"].count("无CSRF") == 1  # only the request with the token made one


def test_english_switch_and_keyboard_only_sign_in(console: ConsolePage, console_stack: Stack
                                                  ) -> None:
    page = console.page
    console.open()
    page.get_by_label("角色令牌").wait_for()
    # Tab to the token field, type, Enter: no mouse
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "signin-token":
            break
    assert page.evaluate("document.activeElement.id") == "signin-token"
    page.keyboard.type(console_stack.token("operator"))
    page.keyboard.press("Enter")
    assert _nav(console) == NAV_OPERATOR
    # navigation links are reachable and followed with the keyboard
    page.locator('nav a[data-page="templates"]').focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="新建优惠券模板").wait_for()
    page.locator('[data-test="lang"]').click()
    assert _nav(console) == ["Segments", "Coupons", "Campaigns", "Schedules", "Results", "Stores"]
    page.get_by_role("heading", name="New coupon template").wait_for()
    page.locator('[data-test="lang"]').click()
    assert _nav(console)[0] == "会员分群"


def test_every_input_has_a_label(console: ConsolePage, console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    _nav(console)
    for route in ("segments", "templates", "campaigns", "schedules", "results", "stores"):
        console.go(route)
        console.page.wait_for_timeout(300)
        unlabelled = console.page.evaluate("""() => [...document.querySelectorAll(
            'main input:not([type=hidden]), main textarea, main select')]
            .filter(el => el.offsetParent !== null)
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby') && !el.closest('label'))
            .map(el => el.outerHTML.slice(0, 120))""")
        assert unlabelled == [], f"{route}: {unlabelled}"


def test_phone_layout_has_no_sideways_scroll(browser: Any, console_stack: Stack) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, locale="zh-CN")
    page = ConsolePage(context.new_page(), console_stack)
    try:
        page.sign_in(console_stack.token("operator"))
        page.page.wait_for_selector("nav.qp-nav a")
        for route in ("templates", "segments", "campaigns"):
            page.go(route)
            page.page.wait_for_timeout(500)
            width = page.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 392, f"{route} is {width}px wide on a 390px phone"
            page.screenshot(f"phone-{route}")
    finally:
        context.close()
    assert page.errors == []


def test_stores_page_shows_each_printer_agent_report(console: ConsolePage,
                                                     console_stack: Stack) -> None:
    report = {"printer": {"state": "paper_out", "detail": "纸卷用完", "target": "tcp:9100"}}
    request = urllib.request.Request(
        f"{console_stack.url}/v1/stores/S777/printer", method="PUT",
        data=json.dumps(report).encode(), headers={
            "Authorization": f"Bearer {console_stack.token('printer', '--store', 'S777')}",
            "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).close()
    console.sign_in(console_stack.token("operator"))
    console.go("stores")
    row = console.page.locator('[data-test="store-table"] tbody tr', has_text="S777")
    row.wait_for()
    assert "缺纸" in row.inner_text() and "纸卷用完" in row.inner_text()
    console.screenshot("stores")


def test_schedules_page_lists_next_runs_and_previews_a_day(console: ConsolePage,
                                                           console_stack: Stack) -> None:
    data = console_stack.var / "data"
    definition = {"id": "bday-console", "name": "生日券", "trigger": {"type": "birthday"},
                  "audience": {"transactions": {"path": str(data / "transactions.parquet")},
                               "members": {"path": str(data / "members.parquet")}},
                  "coupon": {"threshold_fen": 5000, "discount_fen": 2000, "valid_days": 7},
                  "channels": ["sms"], "send_at": "10:00"}
    console_stack.api("POST", "/v1/schedules", definition)
    console.sign_in(console_stack.token("operator"))
    console.go("schedules")
    row = console.page.locator('[data-test="schedule-table"] tbody tr', has_text="bday-console")
    row.wait_for()
    assert "生日" in row.inner_text() and "10:00" in row.inner_text()
    box = console.page.get_by_role("combobox", name="ID", exact=True)
    box.focus()
    console.page.keyboard.press("Enter")
    console.page.locator(".el-select-dropdown__item:visible", has_text="bday-console").click()
    console.page.get_by_role("button", name="预览").click()
    count = console.page.locator('[data-test="would-send"]')
    count.wait_for(timeout=60_000)
    assert count.inner_text().isdigit()
    console.screenshot("schedules")


def test_a_schedule_is_made_with_the_form_on_the_servers_member_data(
        console: ConsolePage, console_stack: Stack) -> None:
    console.sign_in(console_stack.token("operator"))
    console.go("schedules")
    page = console.page
    form = page.locator('[data-test="schedule-form"]')
    # a bad id is refused by /v1 and shown beside the field; nothing is stored
    page.locator("#sch-new-id").fill("Member Day")
    page.get_by_role("radio", name="会员日").check(force=True)
    form.get_by_role("button", name="创建").click()
    error = form.locator(".el-form-item", has=page.locator("#sch-new-id")).locator(
        ".el-form-item__error")
    error.wait_for()
    assert "a-z" in error.inner_text()
    page.locator("#sch-new-id").fill("member-wed")
    page.locator("#sch-new-name").fill("周三会员日")
    page.locator("#sch-discount").fill("12.5")
    form.get_by_role("button", name="创建").click()
    page.locator('[data-test="form-notice"]').wait_for()
    row = page.locator('[data-test="schedule-table"] tbody tr', has_text="member-wed")
    row.wait_for()
    assert "会员日" in row.inner_text() and "周三会员日" in row.inner_text()
    stored = console_stack.api("GET", "/v1/schedules/member-wed")
    source = stored["definition"]
    assert source["trigger"] == {"type": "member_day", "weekly": ["wed"]}
    assert source["coupon"] == {"threshold_fen": 10000, "discount_fen": 1250, "valid_days": 7}
    data = console_stack.var / "data"
    assert source["audience"]["members"]["path"] == str(data / "members.parquet")
    assert source["audience"]["transactions"]["path"] == str(data / "transactions.parquet")
    console.screenshot("schedule-form")
