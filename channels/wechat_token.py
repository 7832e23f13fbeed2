"""WeChat ``access_token`` shared by every worker process through Redis.

One token per appid lives at ``ch:wx:token:<appid>``; each process also keeps it in memory until
``refresh_margin_s`` before expiry. Exactly one process refreshes at a time (``SET NX`` lock with
a short TTL); the others wait for the new value instead of calling the token API themselves, so
a fleet of workers never stampedes the 2000/day ``/cgi-bin/token`` quota. ``stable_token`` is the
default because its quota is separate and a normal-mode call never invalidates a live token.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from redis.exceptions import RedisError

from channels.base import RedisClient
from channels.errors import ChannelConfigError, ChannelUnavailable

SEP = "\x1f"
# Codes on business APIs that mean "this token is no good": refresh and retry once.
TOKEN_CODES = frozenset({40001, 40014, 42001})
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class TokenConfig:
    base_url: str
    appid: str
    secret: str
    use_stable_token: bool = True
    refresh_margin_s: float = 300.0
    lock_ttl_s: float = 10.0
    wait_step_s: float = 0.05
    timeout_s: float = 10.0


class TokenManager:
    """``await get()`` a valid token; ``await invalidate(token)`` when the API refused it."""

    def __init__(self, *, config: TokenConfig, session: aiohttp.ClientSession,
                 redis: RedisClient) -> None:
        self.config = config
        self._session = session
        self._redis = redis
        self._key = f"ch:wx:token:{config.appid}"
        self._lock_key = f"ch:wx:token:{config.appid}:lock"
        self._token = ""
        self._fresh_until = 0.0
        self._local = asyncio.Lock()
        self.fetches = 0  # provider token calls made by this process (for tests and stats)

    async def get(self) -> str:
        """A token valid for at least ``refresh_margin_s`` more seconds."""
        if self._token and time.time() < self._fresh_until:
            return self._token
        async with self._local:  # one coroutine per process goes to Redis / the provider
            if self._token and time.time() < self._fresh_until:
                return self._token
            await self._load(stale="")
            return self._token

    async def invalidate(self, token: str) -> str:
        """The provider refused ``token``: make sure a newer one is in use and return it."""
        async with self._local:
            if self._token and self._token != token and time.time() < self._fresh_until:
                return self._token  # another coroutine already replaced it
            await self._load(stale=token)
            return self._token

    async def _load(self, *, stale: str) -> None:
        try:
            await self._load_shared(stale=stale)
        except RedisError as exc:
            raise ChannelUnavailable(f"token cache in Redis unavailable: {exc}") from exc

    async def _load_shared(self, *, stale: str) -> None:
        deadline = time.monotonic() + self.config.lock_ttl_s * 3
        while True:
            cached = await self._redis.get(self._key)
            if cached:
                raw = cached.decode() if isinstance(cached, bytes) else str(cached)
                token, _, until_text = raw.partition(SEP)
                if token != stale and time.time() < float(until_text):
                    self._token, self._fresh_until = token, float(until_text)
                    return
            owner = uuid.uuid4().hex
            if await self._redis.set(self._lock_key, owner, nx=True,
                                     px=int(self.config.lock_ttl_s * 1000)):
                try:
                    token, expires_in = await self._fetch(force=False)
                    if token == stale and self.config.use_stable_token:
                        # The platform still hands out the token it just refused: only a
                        # forced refresh (20/day, 30 s apart) replaces it.
                        token, expires_in = await self._fetch(force=True)
                    until = time.time() + expires_in - self.config.refresh_margin_s
                    await self._redis.set(self._key, f"{token}{SEP}{until}",
                                          ex=max(1, int(expires_in)))
                    self._token, self._fresh_until = token, until
                    return
                finally:
                    await self._redis.eval(_RELEASE, 1, self._lock_key, owner)  # type: ignore[misc]
            if time.monotonic() > deadline:
                raise ChannelUnavailable("WeChat access_token refresh did not finish in time "
                                         "(another worker holds the lock); retry the batch")
            await asyncio.sleep(self.config.wait_step_s)

    async def _fetch(self, *, force: bool) -> tuple[str, float]:
        """Call the token API; (token, expires_in)."""
        c = self.config
        timeout = aiohttp.ClientTimeout(total=c.timeout_s)
        self.fetches += 1
        try:
            if c.use_stable_token:
                body: dict[str, Any] = {"grant_type": "client_credential", "appid": c.appid,
                                        "secret": c.secret, "force_refresh": force}
                async with self._session.post(f"{c.base_url}/cgi-bin/stable_token", json=body,
                                              timeout=timeout) as resp:
                    status, payload = resp.status, await resp.json(content_type=None)
            else:
                params = {"grant_type": "client_credential", "appid": c.appid, "secret": c.secret}
                async with self._session.get(f"{c.base_url}/cgi-bin/token", params=params,
                                             timeout=timeout) as resp:
                    status, payload = resp.status, await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            raise ChannelUnavailable(f"WeChat token API unreachable: {exc!r}") from exc
        if status >= 500 or not isinstance(payload, dict):
            raise ChannelUnavailable(f"WeChat token API answered HTTP {status}")
        if payload.get("access_token"):
            return str(payload["access_token"]), float(payload.get("expires_in", 7200))
        code = payload.get("errcode")
        if code in (-1, 45009, 45011):
            raise ChannelUnavailable(f"WeChat token API busy or over quota (errcode {code})")
        raise ChannelConfigError(f"WeChat refused the appid/secret (errcode {code}); "
                                 "check WECHAT_APPID and WECHAT_SECRET")
