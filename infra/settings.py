"""Typed settings from environment variables and an optional TOML file.

Precedence: environment variable > TOML file (``QUANPAI_CONFIG`` or ``./quanpai.toml``) > default.
Defaults need no setup: the embedded Redis under ``./var`` (started by ``quanpai services up``),
embedded chDB under ``./var/chdb``, and the local channel simulators. This module is the only place
that reads the environment (DESIGN.md §3).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.errors import SettingsError


@dataclass(frozen=True)
class WeChatSettings:
    base_url: str = "http://127.0.0.1:18701"
    appid: str = "wx0000000000demo"
    secret: str = "demo-wechat-secret"
    template_id: str = "TPL_COUPON_ISSUED"
    card_id: str = "pDemoCard000000000000000000"
    callback_token: str = "demo-wechat-callback-token"  # server URL token (signs event pushes)
    daily_quota: int = 100_000  # template messages per day (rises with followers)
    requests_per_s: int = 300  # shared by all workers; no documented QPS (~100-400 seen)
    pipelining: str = "auto"  # HTTP/1.1 pipelining: on, off, auto (on for loopback hosts)


@dataclass(frozen=True)
class SmsSettings:
    base_url: str = "http://127.0.0.1:18702"
    access_key_id: str = "LTAIdemo0000000"
    access_key_secret: str = "demo-sms-secret"
    sign_name: str = "券派"
    template_code: str = "SMS_100000001"
    quiet_hours: str = "21:00-08:00"  # merchant-local; "" or "off" turns the rule off
    per_number_daily: int = 0  # same sign+template+number per rolling 24 h (Aliyun: 50); 0 off


@dataclass(frozen=True)
class AlipaySettings:
    base_url: str = "http://127.0.0.1:18703/gateway.do"
    app_id: str = "2021000000000000"
    private_key_path: str = ""
    alipay_public_key_path: str = ""
    voucher_template_id: str = "20261101000730012345"  # alipay.marketing.voucher.send
    crowd_no: str = "CROWD_DEMO_0001"  # alipay.marketing.campaign.cash.trigger
    requests_per_s: int = 1000  # shared by all workers
    pipelining: str = "auto"  # HTTP/1.1 pipelining: on, off, auto (on for loopback hosts)


@dataclass(frozen=True)
class AnalyticsSettings:
    margin_permille: int = 300  # gross margin on incremental revenue, for ROI
    attribution_days: int = 14  # orders this long after a campaign starts count for it
    pre_days: int = 28  # pre-campaign spend (CUPED covariate) from this long before
    min_holdout: int = 100  # fewer held-out members: no uplift interval is claimed


@dataclass(frozen=True)
class PrinterSettings:
    """The store printer agent (``quanpai printer-agent``); see docs/printer.md."""

    service_url: str = "http://127.0.0.1:8080"  # the catalog API
    token: str = ""  # the store's ``printer`` bearer token (``quanpai serve --print-token``)
    device: str = "file:var/printer/receipts.bin"  # tcp://host:9100, usb://VID:PID, serial://...
    paper_mm: int = 80  # 58 or 80
    encoding: str = "gb18030"  # code page of Chinese text
    native_qr: bool = True  # GS ( k; false sends the QR as a raster image
    spool: str = "var/printer/spool.sqlite3"
    listen: str = "127.0.0.1:8631"  # the local endpoint the POS calls
    claim_url: str = ""  # "https://m.example.com/claim?t={token}"; default: on service_url
    store_name: str = ""
    templates: str = ""  # a directory of <kind>.toml overriding the packaged receipts


@dataclass(frozen=True)
class Settings:
    """Everything a Quanpai process needs to know about its surroundings."""

    var_dir: Path = Path("var")
    redis_url: str | None = None  # None: the private redis-server of ``quanpai services``
    broker_url: str | None = None  # Dramatiq's queues on their own Redis; None: redis_url
    redis_port: int = 0  # port for the private redis-server; 0 picks a free one
    clickhouse_url: str | None = None  # None: embedded chDB under var_dir/chdb
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    merchant_id: str = "demo"
    secret_key: str = "quanpai-dev-secret-change-me"
    batch_size: int = 1000
    events_stream: str = "quanpai:events"
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    test_kill_at: str = ""  # crash tests only: a worker SIGKILLs itself there (killpoints.py)
    # price per message in fen for `channels: auto` ("wechat=0,alipay=0,sms=5"); "" : defaults
    channel_prices: str = ""
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR or CRITICAL
    metrics_host: str = "127.0.0.1"  # where each process serves /metrics
    metrics_port: int = 0  # 0: no /metrics listener (``--metrics-port`` per process)
    redis_pool_size: int = 256  # Redis connections per API process; more requests wait for one
    lang: str = "zh-CN"  # operator-facing text: zh-CN (default) or en
    segment_rules: Path | None = None  # rules file whose data /v1/segments evaluates
    wechat: WeChatSettings = field(default_factory=WeChatSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    alipay: AlipaySettings = field(default_factory=AlipaySettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    printer: PrinterSettings = field(default_factory=PrinterSettings)

    @property
    def chdb_path(self) -> Path:
        return self.var_dir / "chdb"


def _redis_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
        raise ValueError("expected redis://host:port/db")
    if parts.scheme != "unix":
        _ = parts.port  # raises ValueError on a non-numeric port
    return value


def _clickhouse_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "clickhouse" or not parts.hostname:
        raise ValueError("expected clickhouse://host:9000/database")
    _ = parts.port
    return value


def _timezone(value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("expected an IANA timezone such as Asia/Shanghai") from exc


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("expected an integer") from None


def _port(value: str) -> int:
    port = _integer(value)
    if not 0 <= port <= 65535:
        raise ValueError("expected a port between 0 and 65535")
    return port


def _positive(value: str) -> int:
    number = _integer(value)
    if number <= 0:
        raise ValueError("expected a positive integer")
    return number


def _non_negative(value: str) -> int:
    number = _integer(value)
    if number < 0:
        raise ValueError("expected 0 (off) or a positive integer")
    return number


def _time_window(value: str) -> str:
    """``HH:MM-HH:MM`` in the merchant's timezone, or ``off``."""
    if value.strip().lower() in ("", "off"):
        return value
    start, sep, end = value.partition("-")
    try:
        if not sep:
            raise ValueError
        time.fromisoformat(start.strip())
        time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError("expected HH:MM-HH:MM such as 21:00-08:00, or off") from None
    return value


def _log_level(value: str) -> str:
    if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value.strip().upper()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL")
    return value


def _prices(value: str) -> str:
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, _, fen = part.partition("=")
        if not name.strip() or not fen.strip().isdigit():
            raise ValueError("expected channel=fen pairs such as wechat=0,alipay=0,sms=5")
    return value


def _origin_url(value: str) -> str:
    """WeChat's and Aliyun SMS's base URL is an origin: the client appends the API paths."""
    _http_url(value)
    if urlsplit(value).path not in ("", "/"):
        raise ValueError("expected the API origin without a path, such as "
                         "https://api.weixin.qq.com or https://dysmsapi.aliyuncs.com")
    return value


def _alipay_gateway(value: str) -> str:
    """Alipay's base URL is its gateway, one path that every method is posted to."""
    _http_url(value)
    if not urlsplit(value).path.endswith("/gateway.do"):
        raise ValueError("expected the gateway URL ending in /gateway.do, such as "
                         "https://openapi.alipay.com/gateway.do")
    return value


def _paper(value: str) -> int:
    if value.strip() not in ("58", "80"):
        raise ValueError("expected 58 or 80 (mm)")
    return int(value)


def _flag(value: str) -> bool:
    if value.strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ValueError("expected true or false")
    return value.strip().lower() in ("1", "true", "yes", "on")


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _merchant(value: str) -> str:
    # merchant ids go into Redis hash tags and token payloads: the same alphabet as other ids
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", value):
        raise ValueError("expected 1-32 letters, digits, '_' or '-'")
    return value


def _switch(value: str) -> str:
    if value not in ("on", "off", "auto"):
        raise ValueError("expected on, off or auto")
    return value


def _lang(value: str) -> str:
    if value not in ("zh-CN", "en"):
        raise ValueError("expected zh-CN or en")
    return value


# (environment variable, TOML key path, field path, parser)
_FIELDS: list[tuple[str, str, str, Callable[[str], Any]]] = [
    ("QUANPAI_VAR", "var_dir", "var_dir", Path),
    ("REDIS_URL", "redis_url", "redis_url", _redis_url),
    ("QUANPAI_BROKER_URL", "broker_url", "broker_url", _redis_url),
    ("QUANPAI_REDIS_PORT", "redis_port", "redis_port", _port),
    ("CLICKHOUSE_URL", "clickhouse_url", "clickhouse_url", _clickhouse_url),
    ("QUANPAI_TIMEZONE", "timezone", "timezone", _timezone),
    ("QUANPAI_MERCHANT", "merchant_id", "merchant_id", _merchant),
    ("QUANPAI_SECRET", "secret_key", "secret_key", _text),
    ("QUANPAI_BATCH_SIZE", "batch_size", "batch_size", _positive),
    ("QUANPAI_EVENTS_STREAM", "events_stream", "events_stream", _text),
    ("QUANPAI_API_HOST", "api_host", "api_host", _text),
    ("QUANPAI_API_PORT", "api_port", "api_port", _port),
    ("QUANPAI_TEST_KILL_AT", "test_kill_at", "test_kill_at", str),
    ("QUANPAI_CHANNEL_PRICES", "channel_prices", "channel_prices", _prices),
    ("QUANPAI_LOG_LEVEL", "log_level", "log_level", _log_level),
    ("QUANPAI_METRICS_HOST", "metrics_host", "metrics_host", _text),
    ("QUANPAI_METRICS_PORT", "metrics_port", "metrics_port", _port),
    ("QUANPAI_REDIS_POOL", "redis_pool_size", "redis_pool_size", _positive),
    ("QUANPAI_LANG", "lang", "lang", _lang),
    ("QUANPAI_SEGMENT_RULES", "segment_rules", "segment_rules", Path),
    ("WECHAT_BASE_URL", "wechat.base_url", "wechat.base_url", _origin_url),
    ("WECHAT_APPID", "wechat.appid", "wechat.appid", _text),
    ("WECHAT_SECRET", "wechat.secret", "wechat.secret", _text),
    ("WECHAT_TEMPLATE_ID", "wechat.template_id", "wechat.template_id", _text),
    ("WECHAT_CARD_ID", "wechat.card_id", "wechat.card_id", _text),
    ("WECHAT_CALLBACK_TOKEN", "wechat.callback_token", "wechat.callback_token", _text),
    ("WECHAT_DAILY_QUOTA", "wechat.daily_quota", "wechat.daily_quota", _positive),
    ("WECHAT_REQUESTS_PER_S", "wechat.requests_per_s", "wechat.requests_per_s", _positive),
    ("WECHAT_PIPELINING", "wechat.pipelining", "wechat.pipelining", _switch),
    ("SMS_BASE_URL", "sms.base_url", "sms.base_url", _origin_url),
    ("SMS_ACCESS_KEY_ID", "sms.access_key_id", "sms.access_key_id", _text),
    ("SMS_ACCESS_KEY_SECRET", "sms.access_key_secret", "sms.access_key_secret", _text),
    ("SMS_SIGN_NAME", "sms.sign_name", "sms.sign_name", _text),
    ("SMS_TEMPLATE_CODE", "sms.template_code", "sms.template_code", _text),
    ("SMS_QUIET_HOURS", "sms.quiet_hours", "sms.quiet_hours", _time_window),
    ("SMS_PER_NUMBER_DAILY", "sms.per_number_daily", "sms.per_number_daily", _non_negative),
    ("ALIPAY_BASE_URL", "alipay.base_url", "alipay.base_url", _alipay_gateway),
    ("ALIPAY_APP_ID", "alipay.app_id", "alipay.app_id", _text),
    ("ALIPAY_PRIVATE_KEY_PATH", "alipay.private_key_path", "alipay.private_key_path", str),
    ("ALIPAY_PUBLIC_KEY_PATH", "alipay.alipay_public_key_path",
     "alipay.alipay_public_key_path", str),
    ("ALIPAY_VOUCHER_TEMPLATE_ID", "alipay.voucher_template_id", "alipay.voucher_template_id",
     _text),
    ("ALIPAY_CROWD_NO", "alipay.crowd_no", "alipay.crowd_no", _text),
    ("ALIPAY_REQUESTS_PER_S", "alipay.requests_per_s", "alipay.requests_per_s", _positive),
    ("ALIPAY_PIPELINING", "alipay.pipelining", "alipay.pipelining", _switch),
    ("ANALYTICS_MARGIN_PERMILLE", "analytics.margin_permille", "analytics.margin_permille",
     _non_negative),
    ("ANALYTICS_ATTRIBUTION_DAYS", "analytics.attribution_days", "analytics.attribution_days",
     _positive),
    ("ANALYTICS_PRE_DAYS", "analytics.pre_days", "analytics.pre_days", _positive),
    ("ANALYTICS_MIN_HOLDOUT", "analytics.min_holdout", "analytics.min_holdout", _positive),
    ("PRINTER_SERVICE_URL", "printer.service_url", "printer.service_url", _http_url),
    ("PRINTER_TOKEN", "printer.token", "printer.token", _text),
    ("PRINTER_DEVICE", "printer.device", "printer.device", _text),
    ("PRINTER_PAPER_MM", "printer.paper_mm", "printer.paper_mm", _paper),
    ("PRINTER_ENCODING", "printer.encoding", "printer.encoding", _text),
    ("PRINTER_NATIVE_QR", "printer.native_qr", "printer.native_qr", _flag),
    ("PRINTER_SPOOL", "printer.spool", "printer.spool", _text),
    ("PRINTER_LISTEN", "printer.listen", "printer.listen", _text),
    ("PRINTER_CLAIM_URL", "printer.claim_url", "printer.claim_url", _text),
    ("PRINTER_STORE_NAME", "printer.store_name", "printer.store_name", _text),
    ("PRINTER_TEMPLATES", "printer.templates", "printer.templates", str),
]


def _toml_lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _refuse_unknown_keys(toml: Mapping[str, Any], path: Path) -> None:
    """A misspelt key (``quiet_hour``) must not be ignored silently."""
    known = {key for _, key, _, _ in _FIELDS}
    sections = {key.partition(".")[0] for key in known if "." in key}
    for name, value in toml.items():
        keys = ([f"{name}.{k}" for k in value] if name in sections and isinstance(value, Mapping)
                else [name])
        for key in keys:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise SettingsError(f"config file {path}: unknown key {key}{hint}")


def load_settings(
    environ: Mapping[str, str] | None = None, *, config_file: Path | None = None
) -> Settings:
    """Build ``Settings`` from ``environ`` (default ``os.environ``) and an optional TOML file.

    Raises ``SettingsError`` naming the variable and what it expects on the first bad value.
    """
    env = os.environ if environ is None else environ
    path = config_file or (Path(env["QUANPAI_CONFIG"]) if env.get("QUANPAI_CONFIG") else None)
    if path is None and Path("quanpai.toml").is_file():
        path = Path("quanpai.toml")
    toml: dict[str, Any] = {}
    if path is not None:
        try:
            toml = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except UnicodeDecodeError:
            raise SettingsError(f"config file {path}: not UTF-8 (TOML files are UTF-8; save it "
                                "as UTF-8)") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"config file {path}: {exc}") from exc
        _refuse_unknown_keys(toml, path)

    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {"wechat": {}, "sms": {}, "alipay": {},
                                         "analytics": {}, "printer": {}}
    for env_name, toml_key, field_path, parse in _FIELDS:
        source, raw = env_name, env.get(env_name)
        if raw is None:
            value = _toml_lookup(toml, toml_key)
            if value is None:
                continue
            source, raw = f"{toml_key} in {path}", str(value)
        try:
            parsed = parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{source}={raw!r} is not valid: {exc}") from None
        section, _, name = field_path.rpartition(".")
        (nested[section] if section else top)[name] = parsed
    return Settings(
        **top,
        wechat=WeChatSettings(**nested["wechat"]),
        sms=SmsSettings(**nested["sms"]),
        alipay=AlipaySettings(**nested["alipay"]),
        analytics=AnalyticsSettings(**nested["analytics"]),
        printer=PrinterSettings(**nested["printer"]),
    )
