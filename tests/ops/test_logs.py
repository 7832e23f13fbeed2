"""Structured, masked logs: the formatter and filter alone, then every process of a campaign."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from infra.logs import configure_logging, log_context, mask
from tests.ops.conftest import CampaignRun

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
MASKED_PHONE = re.compile(r"(?<!\d)1[3-9]\d\*{4}\d{4}(?!\d)")


def test_mask_keeps_the_ends_and_hides_the_middle() -> None:
    assert mask("call 13800000000 now") == "call 138****0000 now"
    assert mask("+8613912345678") == "+86139****5678"
    assert mask("uid 2088123456789012") == "uid 2088********9012"
    openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
    assert mask(f'"touser": "{openid}"') == f'"touser": "oUpF{"*" * 20}eS6o"'
    # Longer digit runs (order numbers, millisecond timestamps) are not phone numbers.
    assert mask("ts 1764733212345678 order 213800000000") == (
        "ts 1764733212345678 order 213800000000")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging(level="INFO", process_name="test", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_lines_are_json_with_context_ids_and_masked_arguments(captured: io.StringIO) -> None:
    log = logging.getLogger("quanpai.test")
    with log_context(campaign_id="c1", batch_id="c1:7"):
        log.info("sent to %s", "13800001111", extra={"openid": "o" + "a" * 27})
    log.debug("not at INFO")
    try:
        raise ValueError("bad number 13912345678")
    except ValueError:
        log.exception("failed for uid %s", "2088000011112222")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["msg"] == "sent to 138****1111"
    assert first["campaign_id"] == "c1" and first["batch_id"] == "c1:7"
    assert first["openid"] == "oaaa" + "*" * 20 + "aaaa"
    assert first["level"] == "INFO" and first["process"] == "test"
    assert "campaign_id" not in second  # the context ended with the block
    assert second["msg"] == "failed for uid 2088********2222"
    assert "139****5678" in second["exc"] and "13912345678" not in second["exc"]


def test_bad_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="LOUD")


def test_no_personal_data_in_any_process_log(demo_campaign: CampaignRun) -> None:
    logs = demo_campaign.logs
    assert {"worker", "sim", "callbacks", "loader", "api", "launcher"} <= set(logs)
    members = demo_campaign.members
    phones = set(members["phone"].dropna())
    openids = set(members["wechat_openid"].dropna())
    alipay = set(members["alipay_user_id"].dropna())
    for process, text in logs.items():
        assert not PHONE.search(text), (process, PHONE.search(text))
        found = [value for value in (*phones, *openids, *alipay) if value in text]
        assert not found, (process, found[:3])
    # The worker did log whole batches (Dramatiq at DEBUG): what it wrote was masked, not absent.
    worker = logs["worker"]
    assert len(MASKED_PHONE.findall(worker)) >= len(phones) // 2
    assert demo_campaign.campaign_id in worker
    structured = [json.loads(line) for line in worker.splitlines() if line.startswith("{")]
    assert any(line.get("campaign_id") == demo_campaign.campaign_id for line in structured)
