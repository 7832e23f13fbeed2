"""``/metrics`` scraped during and after a campaign through the real processes: the counters
equal the campaign's own counts (kept exactly once per member in Redis) and the events that
reached ClickHouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import redis

from analytics.schema import EVENTS_TABLE
from dispatcher.campaigns import CampaignStore
from dispatcher.local_stack import stop_process
from dispatcher.operations import issued_count
from infra.clickhouse import ChdbClient
from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from tests.ops.conftest import CHANNELS, CampaignRun, total

MEMBERS_METRIC = "quanpai_campaign_members_total"


def test_worker_counters_equal_the_campaign_counts(demo_campaign: CampaignRun) -> None:
    progress = demo_campaign.progress
    assert progress is not None
    counts = progress.counts
    worker = demo_campaign.after["m_worker"]  # the sum over both worker processes
    assert total(worker, MEMBERS_METRIC, event="issued") == issued_count(progress) > 0
    for channel in CHANNELS.split(","):
        sent = counts.get(f"sent:{channel}", 0)
        assert total(worker, MEMBERS_METRIC, event="sent", channel=channel) == sent
        assert total(worker, MEMBERS_METRIC, event="failed", channel=channel) == counts.get(
            f"failed:{channel}", 0)
        assert total(worker, "quanpai_provider_results_total", channel=channel,
                     status="sent") == sent
    assert sum(v for k, v in counts.items() if k.startswith("sent:")) > 0
    # Members no channel reaches: failed without a channel, skipped in the campaign's counts.
    unreachable = counts.get("skipped:unreachable", 0)
    assert total(worker, MEMBERS_METRIC, event="failed", channel="") == unreachable > 0
    assert total(worker, "quanpai_provider_results_total", status="failed_permanent") > 0
    assert total(worker, MEMBERS_METRIC, event="in_doubt") == sum(
        v for k, v in counts.items() if k.startswith("in_doubt:"))
    # Dramatiq's own middleware: every batch processed once, none failed.
    assert progress.batches_done == demo_campaign.total_batches
    assert total(worker, "dramatiq_messages_total", actor_name="process_batch") == (
        demo_campaign.total_batches)
    assert total(worker, "dramatiq_message_errors_total") == 0
    assert total(worker, "dramatiq_message_duration_milliseconds_count") == total(
        worker, "dramatiq_messages_total")
    assert total(worker, "quanpai_provider_call_seconds_count", channel="sms") >= 1


def test_counters_scraped_during_the_campaign_lie_between_its_counts(
    demo_campaign: CampaignRun,
) -> None:
    progress = demo_campaign.progress
    assert progress is not None
    final = {c: progress.counts.get(f"sent:{c}", 0) for c in CHANNELS.split(",")}
    mid = [d for d in demo_campaign.during
           if 0 < total(d.samples, MEMBERS_METRIC, event="sent") < sum(final.values())]
    assert mid, "no scrape landed while the campaign was sending"
    for scrape in demo_campaign.during:
        for channel, last in final.items():
            seen = total(scrape.samples, MEMBERS_METRIC, event="sent", channel=channel)
            assert scrape.counts_before.get(f"sent:{channel}", 0) <= seen <= last


def test_callback_and_loader_counters_equal_what_reached_clickhouse(
    demo_campaign: CampaignRun,
) -> None:
    ch = ChdbClient(path=demo_campaign.var_dir / "chdb")
    try:
        delivered = dict(ch.query(
            f"SELECT channel, uniqExact(event_id) FROM {EVENTS_TABLE} "
            f"WHERE event_type = 'delivered' AND campaign_id = '{demo_campaign.campaign_id}' "
            "GROUP BY channel"))
        rows = ch.query(f"SELECT count() FROM {EVENTS_TABLE}")[0][0]
    finally:
        ch.close()
    callbacks = demo_campaign.after["m_callbacks"]
    assert sum(delivered.values()) > 0
    client = redis.Redis.from_url(demo_campaign.redis_url)
    receipts = CampaignStore(client=client).progress(demo_campaign.campaign_id).receipts
    client.close()
    for channel in ("wechat", "sms", "alipay"):
        assert total(callbacks, MEMBERS_METRIC, event="delivered", channel=channel) == int(
            delivered.get(channel, 0))
        # campaign status's delivered column counts the same receipts
        assert receipts.get(f"delivered:{channel}", 0) == int(delivered.get(channel, 0))
    loader = demo_campaign.after["m_loader"]
    assert total(loader, "quanpai_loader_rows_total") == int(rows) > 0
    assert total(loader, "quanpai_loader_stream_length") == 0


def test_api_counts_requests_per_route_and_status(demo_campaign: CampaignRun) -> None:
    api = demo_campaign.after["api"]
    requests = "quanpai_http_requests_total"
    assert total(api, requests, route="/v1/health", method="GET", status="200") == 2
    assert total(api, requests, route="/v1/ready", status="200") == 1
    assert total(api, requests, route="unmatched", status="404") == 1
    assert total(api, "quanpai_http_request_seconds_count", route="/v1/health") == 2


def test_ready_is_503_naming_clickhouse_when_its_server_is_unreachable(
    redis_server: RedisServer, tmp_path
) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url, "QUANPAI_VAR": str(tmp_path),
           "CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}/default"}
    api = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "serve", "--port",
                            str(port)], env=env, stderr=subprocess.DEVNULL)
    try:
        assert wait_port("127.0.0.1", port, timeout=60)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/ready", timeout=20)
            raise AssertionError("ready answered 200 with ClickHouse down")
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            body = json.loads(exc.read())
        assert body["ready"] is False
        assert body["checks"]["redis"] == "ok"
        assert body["checks"]["clickhouse"] != "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=20) as reply:
            assert reply.status == 200  # alive, just not ready
            assert reply.headers["X-Request-Id"]
    finally:
        stop_process(api)


def test_the_dashboard_shows_only_metrics_the_processes_export(
    demo_campaign: CampaignRun,
) -> None:
    from tests.ops.test_deploy import dashboard_metrics

    exported = {name for samples in demo_campaign.after.values() for name, _ in samples}
    wanted = dashboard_metrics()
    # A labelled series appears once something happens: no scheduler ran, no batch failed or
    # was retried and no rate limiter made anyone wait in this campaign.
    not_happened = {"quanpai_scheduler_next_run_timestamp_seconds", "quanpai_scheduler_lease_held",
                    "dramatiq_message_errors_total", "dramatiq_message_retries_total",
                    "quanpai_ratelimit_wait_seconds_count", "quanpai_ratelimit_wait_seconds_bucket"}
    assert wanted - exported <= not_happened, wanted - exported
    assert len(wanted & exported) >= 12
