"""Signing out of the console revokes the session on the server: a copy of the cookie taken
before sign-out is refused afterwards by /v1 and /console/session, while the operator's own
token and the operator's other sessions keep working. Real API app on a real Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from infra.tokens import unsign
from infra.web_session import SESSION_COOKIE, SESSION_SECONDS
from tests.catalog.conftest import SECRET, ApiServer


async def _call(session: aiohttp.ClientSession, method: str, url: str, *, cookie: str = "",
                bearer: str = "", csrf: str = "", body: Any = None) -> tuple[int, Any, str]:
    """(status, JSON body, the session cookie the answer set or '')."""
    headers = {}
    if cookie:
        headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    if csrf:
        headers["X-CSRF-Token"] = csrf
    async with session.request(method, url, json=body, headers=headers) as resp:
        morsel = resp.cookies.get(SESSION_COOKIE)
        return resp.status, await resp.json(content_type=None), morsel.value if morsel else ""


def test_sign_out_revokes_the_session_everywhere(single_api: ApiServer) -> None:
    server = single_api
    operator = server.token("operator")  # minted for a year, as `--print-token` does

    async def scenario() -> dict[str, Any]:
        base = server.url
        async with aiohttp.ClientSession() as s:
            status, body, cookie = await _call(s, "POST", f"{base}/console/session",
                                               body={"token": operator})
            assert status == 200 and cookie
            _, _, other = await _call(s, "POST", f"{base}/console/session",
                                      body={"token": operator})
            stolen = cookie  # a copy taken before sign-out
            seen = {"cookie": cookie, "other": other,
                    "before": (await _call(s, "GET", f"{base}/v1/templates", cookie=cookie))[0]}
            seen["sign_out"] = (await _call(s, "DELETE", f"{base}/console/session",
                                            cookie=cookie, csrf=body["csrf_token"]))[0]
            seen["stolen_v1"] = (await _call(s, "GET", f"{base}/v1/templates",
                                             cookie=stolen))[:2]
            seen["stolen_session"] = (await _call(s, "GET", f"{base}/console/session",
                                                  cookie=stolen))[0]
            seen["other_v1"] = (await _call(s, "GET", f"{base}/v1/templates", cookie=other))[0]
            seen["bearer_v1"] = (await _call(s, "GET", f"{base}/v1/templates",
                                             bearer=operator))[0]
            return seen

    seen = asyncio.run(scenario())
    # the cookie is a session token of its own, never the pasted year-long token
    assert seen["cookie"] != operator and seen["cookie"] != seen["other"]
    payload, problem = unsign(seen["cookie"], secret=SECRET, purpose="qp1")
    assert payload is not None and not problem
    assert payload["e"] <= time.time() + SESSION_SECONDS + 1
    assert seen["before"] == 200 and seen["sign_out"] == 200
    status, body = seen["stolen_v1"]
    assert status == 401 and "signed out" in body["message"]
    assert seen["stolen_session"] == 401
    assert seen["other_v1"] == 200  # another browser's session is its own
    assert seen["bearer_v1"] == 200  # signing out does not revoke the operator's token
