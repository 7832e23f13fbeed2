from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.errors import SettingsError
from infra.settings import load_settings


def test_defaults_need_no_setup() -> None:
    settings = load_settings({})
    assert settings.redis_url is None
    assert settings.clickhouse_url is None
    assert settings.timezone.key == "Asia/Shanghai"
    assert settings.chdb_path == Path("var/chdb")
    assert settings.sms.base_url.startswith("http://127.0.0.1")


def test_environment_overrides_toml(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text('timezone = "Asia/Urumqi"\nbatch_size = 250\n[sms]\nsign_name = "小店"\n')
    settings = load_settings({"QUANPAI_CONFIG": str(config), "QUANPAI_BATCH_SIZE": "500",
                              "CLICKHOUSE_URL": "clickhouse://ch.example:9000/analytics"})
    assert settings.timezone.key == "Asia/Urumqi"
    assert settings.batch_size == 500
    assert settings.sms.sign_name == "小店"
    assert settings.clickhouse_url == "clickhouse://ch.example:9000/analytics"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_URL", "nonsense", "REDIS_URL='nonsense'"),
        ("REDIS_URL", "redis://host:notaport/0", "REDIS_URL"),
        ("CLICKHOUSE_URL", "http://x:8123", "CLICKHOUSE_URL"),
        ("QUANPAI_TIMEZONE", "Mars/Olympus", "QUANPAI_TIMEZONE"),
        ("QUANPAI_BATCH_SIZE", "0", "QUANPAI_BATCH_SIZE"),
        ("SMS_BASE_URL", "ftp://x", "SMS_BASE_URL"),
        ("SMS_QUIET_HOURS", "night", "SMS_QUIET_HOURS"),
        ("QUANPAI_REDIS_PORT", "abc", "expected an integer"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({name: value})
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text("timezone = \n")
    with pytest.raises(SettingsError, match=r"q\.toml"):
        load_settings({"QUANPAI_CONFIG": str(config)})


@pytest.mark.parametrize(("text", "wanted"), [
    ('[sms]\nquiet_hour = "22:00-08:00"\n', "unknown key sms.quiet_hour (did you mean "
     "sms.quiet_hours?)"),
    ('merchant = "shop"\n', "unknown key merchant"),
    ('[wechat]\nappid = "wx1"\n[nonsense]\nx = 1\n', "unknown key nonsense"),
])
def test_unknown_toml_keys_are_refused(tmp_path: Path, text: str, wanted: str) -> None:
    config = tmp_path / "q.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(wanted)):
        load_settings({}, config_file=config)


def test_toml_with_bom_is_read_and_gbk_is_refused_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_bytes(b"\xef\xbb\xbf" + '[sms]\nsign_name = "券派"\n'.encode())
    assert load_settings({}, config_file=config).sms.sign_name == "券派"
    config.write_bytes('[sms]\nsign_name = "券派"\n'.encode("gbk"))
    with pytest.raises(SettingsError, match="not UTF-8"):
        load_settings({}, config_file=config)


@pytest.mark.parametrize("value", ["", "shop one", "{demo}", "x" * 33, "店铺"])
def test_invalid_merchant_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="QUANPAI_MERCHANT"):
        load_settings({"QUANPAI_MERCHANT": value})


def test_language_and_pool_size() -> None:
    settings = load_settings({"QUANPAI_LANG": "en", "QUANPAI_REDIS_POOL": "32"})
    assert (settings.lang, settings.redis_pool_size) == ("en", 32)
    assert load_settings({}).lang == "zh-CN"
    with pytest.raises(SettingsError, match="QUANPAI_LANG"):
        load_settings({"QUANPAI_LANG": "fr"})


def test_pipelining_switches() -> None:
    settings = load_settings({"ALIPAY_PIPELINING": "off", "WECHAT_PIPELINING": "on"})
    assert (settings.alipay.pipelining, settings.wechat.pipelining) == ("off", "on")
    assert load_settings({}).alipay.pipelining == "auto"
    with pytest.raises(SettingsError, match="ALIPAY_PIPELINING"):
        load_settings({"ALIPAY_PIPELINING": "yes"})


@pytest.mark.parametrize(("name", "value"), [
    ("ALIPAY_BASE_URL", "https://openapi.alipay.com"),
    ("ALIPAY_BASE_URL", "http://127.0.0.1:18703/"),
    ("WECHAT_BASE_URL", "https://api.weixin.qq.com/cgi-bin"),
    ("SMS_BASE_URL", "https://dysmsapi.aliyuncs.com/sms"),
])
def test_a_wrong_provider_url_stops_at_start(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})
    assert load_settings({"ALIPAY_BASE_URL": "https://openapi.alipay.com/gateway.do",
                          "SMS_BASE_URL": "https://dysmsapi.aliyuncs.com/"}).sms.base_url
