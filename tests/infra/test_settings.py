from __future__ import annotations

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
