"""``quanpai doctor``: checks every dependency these settings name and says what to fix.

One row per dependency (Redis, ClickHouse, each provider base URL, keys, clock), so an operator
sees at a glance which one is broken; a dependency that cannot be reached gets one failing row,
not one per property nobody could read. Read-only: nothing is started, created or changed.
Exit code 1 when any row fails, 0 otherwise (warnings included).
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from infra.cli_support import EXIT_FAILED, EXIT_OK
from infra.errors import QuanpaiError
from infra.settings import Settings

Status = Literal["ok", "warn", "fail", "skip"]
_RANK = {"ok": 0, "skip": 0, "warn": 1, "fail": 2}
_LABEL = {"zh": {"ok": "正常", "warn": "警告", "fail": "失败", "skip": "跳过"},
          "en": {"ok": "ok", "warn": "warning", "fail": "FAILED", "skip": "skipped"}}
_HEADERS = {"zh": ("检查项", "状态", "详情", "如何修复"),
            "en": ("check", "status", "detail", "how to fix")}
TIMEOUT_S = 3.0
SKEW_WARN_S, SKEW_FAIL_S = 1.0, 30.0


@dataclass(frozen=True)
class Check:
    """One dependency's verdict."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("doctor", help="check every configured dependency")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.set_defaults(func=run)


def _worst(problems: list[tuple[Status, str, str]]) -> tuple[Status, str, str]:
    worst: Status = max((p[0] for p in problems), key=_RANK.__getitem__, default="ok")
    details = "; ".join(p[1] for p in problems if p[0] == worst)
    fixes = "; ".join(p[2] for p in problems if p[0] == worst and p[2])
    return worst, details, fixes


def check_redis(settings: Settings, *, broker: bool = False) -> tuple[Check, float | None]:
    """Role, eviction policy and AOF of the Redis in ``REDIS_URL`` (or of the broker's, in
    ``QUANPAI_BROKER_URL``); also its clock offset."""
    import redis

    from infra.services import resolve_redis_url

    name, variable = ("Redis broker", "QUANPAI_BROKER_URL") if broker else ("Redis", "REDIS_URL")
    try:
        url = settings.broker_url if broker and settings.broker_url else resolve_redis_url(
            settings)
    except QuanpaiError as exc:
        return Check(name, "fail", str(exc),
                     "运行 `quanpai services up`，或设置 REDIS_URL"), None
    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S,
                                  socket_timeout=TIMEOUT_S)
    try:
        before = time.time()
        seconds, micros = client.time()
        offset = seconds + micros / 1e6 - (before + time.time()) / 2
        info = client.info()
        try:
            config = {**client.config_get("maxmemory-policy"), **client.config_get("appendonly")}
        except redis.ResponseError:  # CONFIG disabled (managed Redis): say so, do not guess
            config = {}
    except redis.RedisError as exc:
        return Check(name, "fail", f"{_safe(url)} 无法连接: {exc}",
                     f"启动 Redis（`quanpai services up`）或改正 {variable}；检查防火墙"), None
    finally:
        client.close()
    version = str(info.get("redis_version", "?"))
    problems: list[tuple[Status, str, str]] = [
        ("ok", f"{_safe(url)} Redis {version}, role={info.get('role')}, "
               f"maxmemory-policy={config.get('maxmemory-policy', '?')}, "
               f"appendonly={config.get('appendonly', '?')}", "")]
    if info.get("role") != "master":
        problems.append(("fail", f"role={info.get('role')}: 这是只读副本",
                         "REDIS_URL 指向主节点（primary）"))
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 7:
        problems.append(("warn", f"Redis {version} 低于 7", "升级到 Redis 7"))
    if not config:
        problems.append(("warn", "CONFIG GET 被禁用，无法确认淘汰策略与 AOF",
                         "在 Redis 配置中确认 maxmemory-policy noeviction 与 appendonly yes"))
    else:
        if config.get("maxmemory-policy") != "noeviction":
            problems.append(("fail", f"maxmemory-policy={config.get('maxmemory-policy')}: "
                             "内存满时会丢弃队列消息与已发券记录",
                             "CONFIG SET maxmemory-policy noeviction（并写入 redis.conf）"))
        if config.get("appendonly") != "yes":
            problems.append(("warn", "appendonly=no: 重启会丢失已发券与活动进度",
                             "CONFIG SET appendonly yes（并写入 redis.conf）"))
    return Check(name, *_worst(problems)), offset


def check_clickhouse(settings: Settings) -> tuple[Check, float | None]:
    """The ClickHouse server of ``CLICKHOUSE_URL`` answers (its version and clock), or chDB
    is importable when no URL is set."""
    if not settings.clickhouse_url:
        try:
            import chdb
        except ImportError:
            return Check("ClickHouse", "fail", "未设置 CLICKHOUSE_URL，且未安装 chDB",
                         "pip install 'quanpai[analytics]'，或设置 CLICKHOUSE_URL"), None
        return Check("ClickHouse", "ok", f"chDB {getattr(chdb, '__version__', '?')} "
                     f"(嵌入式, {settings.chdb_path})"), None
    from infra.clickhouse import DriverClient

    target = _safe(settings.clickhouse_url)
    try:
        client = DriverClient(url=settings.clickhouse_url)
        try:
            before = time.time()
            version, now = client.query("SELECT version(), toUnixTimestamp(now())")[0]
            offset = whole_second_offset(int(now), before=before, after=time.time())
        finally:
            client.close()
    except (QuanpaiError, OSError, EOFError) as exc:
        return Check("ClickHouse", "fail", f"{target} 无法连接: {exc}",
                     "改正 CLICKHOUSE_URL（clickhouse://host:9000/db），确认服务已启动"), None
    return Check("ClickHouse", "ok", f"{target} ClickHouse {version}"), offset


def check_provider(name: str, base_url: str, variable: str) -> Check:
    """Any HTTP answer (even 404 or 405) shows the base URL is reachable."""
    parts = urlsplit(base_url)
    probe = f"{parts.scheme}://{parts.netloc}/"
    try:
        with urllib.request.urlopen(probe, timeout=TIMEOUT_S) as reply:
            code = reply.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(name, "fail", f"{base_url} 无法访问: {reason}",
                     f"检查 {variable} 与网络出口；本地模拟器用 `quanpai simulate`")
    return Check(name, "ok", f"{base_url} 可访问 (HTTP {code})")


def check_keys(settings: Settings) -> Check:
    """Alipay key files readable and well-formed; the signing secret not the development one."""
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    problems: list[tuple[Status, str, str]] = [("ok", "密钥可读", "")]
    a = settings.alipay
    for variable, path, loader in (
        ("ALIPAY_PRIVATE_KEY_PATH", a.private_key_path,
         lambda data: load_pem_private_key(data, password=None)),
        ("ALIPAY_PUBLIC_KEY_PATH", a.alipay_public_key_path, load_pem_public_key),
    ):
        if not path:
            problems.append(("warn", f"{variable} 未设置: 使用开发密钥（仅限模拟器）",
                             f"生产环境设置 {variable}"))
            continue
        try:
            loader(Path(path).read_bytes())
        except (OSError, ValueError, TypeError) as exc:
            problems.append(("fail", f"{variable}={path} 不可用: {exc}",
                             f"确认 {variable} 指向可读的 PEM 文件"))
    if settings.secret_key == Settings().secret_key:
        problems.append(("warn", "QUANPAI_SECRET 仍是开发默认值", "设置随机的 QUANPAI_SECRET"))
    return Check("密钥 keys", *_worst(problems))


def whole_second_offset(server_s: int, *, before: float, after: float) -> float:
    """How far a server's whole-second clock reading (``now()``: 18.16 has nothing finer) lies
    outside what agreeing clocks allow: the server read its time between ``before`` and
    ``after`` and dropped the fraction, so any reading in [before - 1, after] is no skew."""
    if server_s > after:
        return server_s - after
    if server_s < before - 1.0:
        return server_s - (before - 1.0)
    return 0.0


def check_clock(offsets: dict[str, float | None]) -> Check:
    """This host's clock against Redis's and ClickHouse's (expiry, quiet hours and leases
    are decided by the clock)."""
    known = {name: value for name, value in offsets.items() if value is not None}
    if not known:
        return Check("时钟 clock", "skip", "没有可比较的服务器时钟")
    name, skew = max(known.items(), key=lambda item: abs(item[1]))
    detail = ", ".join(f"{n} {v:+.3f}s" for n, v in known.items())
    local = datetime.now(UTC).isoformat(timespec="seconds")
    if abs(skew) > SKEW_FAIL_S:
        return Check("时钟 clock", "fail", f"本机 {local}, 与 {name} 相差 {skew:+.1f}s",
                     "启用 NTP（chrony / systemd-timesyncd）")
    if abs(skew) > SKEW_WARN_S:
        return Check("时钟 clock", "warn", detail, "启用 NTP（chrony / systemd-timesyncd）")
    return Check("时钟 clock", "ok", detail)


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order an operator would fix things."""
    redis_row, redis_offset = check_redis(settings)
    broker_rows = [check_redis(settings, broker=True)[0]] if settings.broker_url else []
    ch_row, ch_offset = check_clickhouse(settings)
    providers: list[Callable[[], Check]] = [
        lambda: check_provider("微信 WeChat", settings.wechat.base_url, "WECHAT_BASE_URL"),
        lambda: check_provider("短信 SMS", settings.sms.base_url, "SMS_BASE_URL"),
        lambda: check_provider("支付宝 Alipay", settings.alipay.base_url, "ALIPAY_BASE_URL"),
    ]
    return [redis_row, *broker_rows, ch_row, *(p() for p in providers), check_keys(settings),
            check_clock({"Redis": redis_offset, "ClickHouse": ch_offset})]


def _safe(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url


def run(args: argparse.Namespace, settings: Settings) -> int:
    checks = run_checks(settings)
    if args.format == "json":
        print(json.dumps([asdict(c) for c in checks], ensure_ascii=False, indent=1))
    else:
        labels, headers = _LABEL[args.lang], _HEADERS[args.lang]
        table = Table(*headers, title="quanpai doctor")
        colours = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
        for c in checks:
            table.add_row(c.name, f"[{colours[c.status]}]{labels[c.status]}[/]", c.detail, c.fix)
        Console(width=160).print(table)
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK
