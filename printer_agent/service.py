"""The agent's client of the catalog service (aiohttp): the job feed by long-poll, the
acknowledgements, status reports and requests for points-QR receipts.

Every call sends the store's ``printer`` bearer token. A network failure or a 5xx is
``ServiceUnavailable`` (the caller waits and retries with ``Backoff``); a 4xx is
``ServiceRefused`` and names what the service said.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import aiohttp

from printer_agent.errors import ServiceRefused, ServiceUnavailable
from printer_agent.jobs import Job, parse_job

POLL_WAIT = 25  # seconds the service holds a long-poll open when no job is waiting


class Backoff:
    """Exponential backoff with full jitter (0 .. min(cap, base·2ⁿ)), so many stores coming back
    after an outage do not reconnect in step."""

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None
                 ) -> None:
        self._base, self._cap, self._n = base, cap, 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = self._rng.uniform(0, min(self._cap, self._base * 2 ** self._n))
        self._n = min(self._n + 1, 16)
        return delay

    def reset(self) -> None:
        self._n = 0


def store_of_token(token: str) -> str:
    """The store a ``printer`` bearer token is bound to (read, not verified: the service
    verifies every request)."""
    try:
        body = token.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        store = payload.get("s", "")
    except (IndexError, ValueError, AttributeError):
        store = ""
    if not isinstance(store, str) or not store or payload.get("r") != "printer":
        raise ValueError("expected the store's printer token (quanpai serve --print-token "
                         "printer --store S001)")
    return store


class ServiceClient:
    def __init__(self, *, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session
        self.store_id = store_of_token(token)

    async def _call(self, method: str, path: str, *, timeout: float = 15.0,
                    **kwargs: Any) -> Any:
        url = f"{self._base}{path}"
        try:
            async with self._session.request(
                    method, url, headers=self._headers,
                    timeout=aiohttp.ClientTimeout(total=timeout), **kwargs) as response:
                text = await response.text()
                if response.status >= 500:
                    raise ServiceUnavailable(f"{method} {path}: HTTP {response.status}")
                if response.status >= 400:
                    try:
                        message = json.loads(text).get("message", text)
                    except ValueError:
                        message = text
                    raise ServiceRefused(response.status, f"{method} {path}: {message}")
                return json.loads(text) if text else {}
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise ServiceUnavailable(f"{method} {path}: {exc or type(exc).__name__}") from None

    async def poll(self, *, after: str, wait: int = POLL_WAIT) -> tuple[list[Job], str]:
        """Jobs queued for this store after ``after`` (the service's cursor when empty),
        waiting up to ``wait`` seconds for one; returns them and the new cursor."""
        params = {"wait": str(wait), "limit": "50"}
        if after:
            params["after"] = after
        data = await self._call("GET", f"/v1/stores/{self.store_id}/print-jobs",
                                params=params, timeout=wait + 15)
        jobs = [parse_job(j) for j in data.get("jobs", [])]
        return jobs, str(data.get("cursor") or after)

    async def ack_received(self, cursor: str) -> None:
        await self._call("POST", f"/v1/stores/{self.store_id}/print-jobs/ack",
                         json={"received_up_to": cursor})

    async def ack_done(self, printed: list[str], failed: list[str]) -> None:
        await self._call("POST", f"/v1/stores/{self.store_id}/print-jobs/ack",
                         json={"printed": printed, "failed": failed})

    async def report_status(self, status: dict[str, Any]) -> None:
        await self._call("PUT", f"/v1/stores/{self.store_id}/printer", json=status)

    async def request_points_qr(self, body: dict[str, Any]) -> dict[str, Any]:
        """Ask the service for a points-QR receipt job (it mints the signed claim token and
        queues the job for this store's feed)."""
        result: dict[str, Any] = await self._call(
            "POST", f"/v1/stores/{self.store_id}/print-jobs",
            json={"kind": "points_qr", **body})
        return result
