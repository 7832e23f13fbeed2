"""The agent against the real service and a network printer emulator: a printer switched off
and out of paper, the agent killed with SIGKILL mid-job, the service stopped and started. Every
job prints, in the service's order; the one job in flight at the kill prints a second time
with the reprint banner and its job id (at least once, docs/printer.md); none is lost."""

from __future__ import annotations

import os
import re
import signal
from typing import Any

import redis

from analytics.events import decode_events
from tests.printer_agent.conftest import MERCHANT, AgentProcess, Service, wait_until
from tests.printer_agent.emulator import PrinterEmulator
from tests.printer_agent.escpos_decode import Receipt, decode

JOB_ID = re.compile(r"单据 #(\S+)")
BANNER = "补打 REPRINT"


def _job_id(receipt: Receipt) -> str:
    found = JOB_ID.search(receipt.text)
    assert found, receipt.text
    return found.group(1)


class Store:
    """The service calls a store makes: coupons redeemed by its cashier, receipts asked for."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.op = service.token("operator")
        self.cashier = service.token("cashier", "S1")
        status, body = service.call("POST", "/v1/templates", {
            "kind": "threshold", "name": "满100减20", "total_stock": 100, "valid_days": 30,
            "threshold_fen": 10000, "discount_fen": 2000}, token=self.op)
        assert status == 201, body
        self.template_id = body["template_id"]
        self.orders = 0

    def coupon(self, member: str) -> str:
        status, body = self.service.call("POST", "/v1/coupons", {
            "template_id": self.template_id, "member_id": member, "campaign_id": "c1"},
            token=self.op)
        assert status == 201, body
        return str(body["coupons"][0]["code"])

    def redeem(self, member: str) -> None:
        self.orders += 1
        status, body = self.service.call("POST", "/v1/redemptions", {
            "code": self.coupon(member), "order_id": f"R{self.orders}", "store_id": "S1",
            "amount_fen": 12000}, token=self.cashier)
        assert status == 201, body

    def points_qr(self) -> None:
        self.orders += 1
        status, body = self.service.call("POST", "/v1/stores/S1/print-jobs", {
            "kind": "points_qr", "order_id": f"P{self.orders}", "amount_fen": 3250},
            token=self.cashier)
        assert status == 201, body

    def voucher(self, member: str) -> None:
        status, body = self.service.call("POST", "/v1/stores/S1/print-jobs", {
            "kind": "coupon_voucher", "code": self.coupon(member)}, token=self.op)
        assert status == 201, body

    def printer(self) -> dict[str, Any]:
        status, body = self.service.call("GET", "/v1/stores/S1/printer", token=self.op)
        assert status == 200, body
        return body  # type: ignore[no-any-return]


def _queued(client: redis.Redis) -> list[str]:
    import json

    entries: Any = client.xrange(f"qp:{{{MERCHANT}}}:pq:S1")
    return [json.loads(fields[b"j"])["job_id"] for _, fields in entries]


def test_every_job_prints_in_order_through_crash_printer_off_and_outage(
    service: Service, emulator: PrinterEmulator, make_agent: Any, redis_client: redis.Redis,
) -> None:
    store = Store(service)
    agent: AgentProcess = make_agent()
    agent.start()

    # a normal morning: two redemptions (a slip each), a points QR and a voucher
    store.redeem("13800138001")
    store.redeem("13800138002")
    store.points_qr()
    store.voucher("13800138003")
    emulator.wait_for(lambda data: data.count(b"\x1dV") >= 4)
    wait_until(lambda: agent.status()["spool"]["printed"] == 4, what="4 printed")

    # the printer is switched off: jobs wait, the service shows the printer offline
    emulator.power_off()
    store.redeem("13800138004")
    store.points_qr()
    wait_until(lambda: store.printer()["printer"]["state"] == "offline", what="offline report")
    assert store.printer()["agent_online"] is True
    assert agent.status()["printer"]["state"] == "offline"
    assert emulator.snapshot().count(b"\x1dV") == 4
    emulator.power_on()
    emulator.wait_for(lambda data: data.count(b"\x1dV") >= 6)
    wait_until(lambda: agent.status()["spool"]["printed"] == 6, what="6 printed")

    # paper runs out: nothing is sent until it is back
    emulator.paper_out = True
    store.points_qr()
    wait_until(lambda: store.printer()["printer"]["state"] == "paper_out", what="paper out")
    assert emulator.snapshot().count(b"\x1dV") == 6
    emulator.paper_out = False
    emulator.wait_for(lambda data: data.count(b"\x1dV") >= 7)
    wait_until(lambda: agent.status()["spool"]["printed"] == 7, what="7 printed")

    # the agent is killed while the printer has the whole job but before it is recorded
    killed_at = emulator.cuts + 2
    emulator.on_cut = lambda n: os.kill(agent.pid, signal.SIGKILL) if n == killed_at else None
    store.points_qr()
    store.redeem("13800138005")
    store.voucher("13800138006")
    assert agent.process is not None
    agent.process.wait(60)
    assert agent.process.returncode == -signal.SIGKILL
    emulator.on_cut = None
    agent.start()
    emulator.wait_for(lambda data: data.count(b"\x1dV") >= 11)  # 10 jobs and one again

    # the service goes down: the POS still asks for a points QR, which prints once it is back
    service.stop()
    status, body = agent.pos({"order_id": "CASH42", "amount_fen": 5000, "payment": "cash"})
    assert status == 202 and body["queued"], body
    status, body = agent.pos({"order_id": "WX43", "amount_fen": 5000, "payment": "wechat"})
    assert status == 200 and body["queued"] is False  # WeChat payers get points by themselves
    status, body = agent.pos({"order_id": "", "amount_fen": 5000})
    assert status == 422 and body["field"] == "order_id"
    wait_until(lambda: not agent.status()["service"]["connected"], what="service lost")
    assert agent.status()["spool"]["outbox"] == 1
    service.start()
    emulator.wait_for(lambda data: data.count(b"\x1dV") >= 12)

    queued = _queued(redis_client)
    assert len(queued) == 11 and queued[-1] == "points:S1:CASH42", " ".join(queued)
    receipts = decode(emulator.snapshot())
    printed = [_job_id(r) for r in receipts]
    first_seen = list(dict.fromkeys(printed))
    assert first_seen == queued, (printed, queued)  # in the service's order, none lost
    twice = [j for j in first_seen if printed.count(j) > 1]
    assert len(twice) == 1 and len(printed) == 12  # only the job in flight at the kill
    copies = [r for r in receipts if _job_id(r) == twice[0]]
    assert BANNER not in copies[0].text and BANNER in copies[1].text
    assert all(BANNER not in r.text for r in receipts if _job_id(r) != twice[0])
    assert all(r.cuts == 1 and r.chinese_mode for r in receipts)

    # the service hears of every job printed, once: job state and one printed event each
    op = store.op
    wait_until(lambda: all(service.call("GET", f"/v1/stores/S1/print-jobs/{j}", token=op)[1]
                           ["state"] == "printed" for j in queued), what="printed acks")

    def printed_events() -> list[str]:
        rows: Any = redis_client.xrange("quanpai:events")
        events = [e for _, f in rows for e in decode_events(f[b"e"])]
        return [e.event_id for e in events if e.event_type == "printed"]

    wait_until(lambda: len(printed_events()) >= len(queued), what="printed events")
    assert sorted(printed_events()) == sorted(f"printed:{MERCHANT}:{j}" for j in queued)
    summary = agent.status()["spool"]
    assert summary["printed"] == 11 and summary["queued"] == 0 and summary["outbox"] == 0
