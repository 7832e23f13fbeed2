"""Receipts as bytes on a network printer and as layouts: GB18030 text in Chinese mode, the
native QR command carrying the claim URL, widths on display columns, masked phones, status
read with DLE EOT, and templates that are files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from printer_agent.columns import text_columns
from printer_agent.devices import open_device, parse_device
from printer_agent.errors import PrinterUnavailable, TemplateError
from printer_agent.jobs import Job
from printer_agent.layout import TextLine
from printer_agent.receipt import ReceiptMaker
from tests.printer_agent.conftest import quanpai
from tests.printer_agent.emulator import PrinterEmulator
from tests.printer_agent.escpos_decode import decode

TOKEN = "pc1.eyJtIjoibTEiLCJzIjoiUzEiLCJvIjoiQTEwMDEiLCJhIjozMjUwfQ.AbCdEf-_12"
POINTS = Job(job_id="points:S1:A1001", kind="points_qr", store_id="S1",
             created_at="2026-12-03T17:40:00+08:00",
             data={"order_id": "A1001", "amount_fen": 3250, "points": 32, "token": TOKEN,
                   "expires_at": "2026-12-10T17:40:00+08:00"})
SLIP = Job(job_id="slip:t1-7", kind="redemption_slip", store_id="S1",
           data={"redemption_id": "t1-7", "coupon_name": "满100减20", "code": "0001-0000-0ABC-DEFG",
                 "member_id": "13800138001", "discount_fen": 2000, "amount_fen": 12000,
                 "order_id": "R7", "redeemed_at": "2026-12-03T12:05:00+08:00",
                 "cashier": "小王"})
VOUCHER = Job(job_id="voucher:X", kind="coupon_voucher", store_id="S1",
              data={"code": "0001-0000-0ABC-DEFG", "qr_payload": "QP1:00010000 0ABCDEFG",
                    "coupon_name": "新人礼 立减10元", "value_text": "立减10元",
                    "valid_until": "2026-12-31", "member_id": "13900139002"})
MAKER = ReceiptMaker(paper_mm=58, store_name="券派咖啡 国贸店",
                     claim_url="https://m.example.cn/claim?t={token}")


def test_points_qr_bytes_on_a_network_printer(emulator: PrinterEmulator) -> None:
    printer = open_device(emulator.url)
    status = printer.print_job(MAKER.escpos(POINTS))
    assert status.state == "ok"
    data = emulator.wait_for(lambda d: b"\x1dV" in d)
    assert data.count(b"\x1b@") == 1 and "会员积分".encode("gb18030") in data
    [receipt] = decode(data)
    assert receipt.chinese_mode  # FS & before any Chinese text
    assert "会员积分" in receipt.text and "￥32.50" in receipt.text
    assert any(line.startswith("可得积分") and line.endswith("32") for line in receipt.bold_lines)
    assert receipt.qr_data == [f"https://m.example.cn/claim?t={TOKEN}"]
    assert (receipt.qr_model, receipt.qr_size, receipt.qr_printed) == (2, 6, 1)
    assert receipt.cuts == 1 and receipt.text.rstrip().endswith("单据 #points:S1:A1001")


def test_widths_are_display_columns_on_58_and_80_mm() -> None:
    for paper, columns in ((58, 32), (80, 48)):
        layout = ReceiptMaker(paper_mm=paper, store_name="券派").layout(SLIP)
        lines = [e for e in layout.elements if isinstance(e, TextLine)]
        for line in lines:
            assert text_columns(line.text) <= (columns // 2 if line.double else columns)
        pairs = [line.text for line in lines if line.text.startswith(("会员", "优惠金额"))]
        assert [text_columns(t) for t in pairs] == [columns, columns]
        assert pairs[0].endswith("138****8001") and pairs[1].endswith("￥20.00")
    long = Job(job_id="j", kind="coupon_voucher", store_id="S1",
               data={**VOUCHER.data, "coupon_name": "周年庆全场通用满减大礼包限时特惠价"})
    layout = ReceiptMaker(paper_mm=58).layout(long)
    title = [e.text.strip() for e in layout.elements if isinstance(e, TextLine) and e.bold]
    assert "周年庆全场通用满减大礼包限时特惠" in title and "价" in title  # 16 fill 32 columns


def test_slip_and_voucher_contents() -> None:
    [slip] = decode(MAKER.escpos(SLIP))
    for text in ("核销小票", "满100减20", "0001-0000-0ABC-DEFG", "138****8001", "￥20.00",
                 "￥120.00", "R7", "2026-12-03 12:05", "小王", "t1-7"):
        assert text in slip.text, text
    assert "13800138001" not in slip.text
    [voucher] = decode(MAKER.escpos(VOUCHER))
    assert voucher.qr_data == ["QP1:00010000 0ABCDEFG"] and "139****9002" in voucher.text
    assert "2026-12-31" in voucher.text
    [reprint] = decode(MAKER.escpos(SLIP, reprint=True))
    assert reprint.lines[0].strip().startswith("** 补打 REPRINT")


def test_status_paper_out_offline_and_silent_printers(emulator: PrinterEmulator) -> None:
    printer = open_device(emulator.url)
    assert printer.status().state == "ok"
    emulator.paper_out = True
    assert printer.status().state == "paper_out"
    with pytest.raises(PrinterUnavailable) as refused:
        printer.print_job(MAKER.escpos(POINTS))
    assert not refused.value.sent and b"\x1b@" not in emulator.snapshot()  # nothing went out
    emulator.paper_out = False
    emulator.mute = True  # many cheap printers never answer: unknown, and it still prints
    assert printer.status().state == "unknown"
    printer.print_job(MAKER.escpos(POINTS))
    assert b"\x1dV" in emulator.wait_for(lambda d: b"\x1dV" in d)
    emulator.power_off()
    assert printer.status().state == "offline"
    with pytest.raises(PrinterUnavailable):
        printer.print_job(MAKER.escpos(POINTS))


def test_device_urls_and_file_printer(tmp_path: Path) -> None:
    assert parse_device("tcp://10.0.0.9").options == {"host": "10.0.0.9", "port": 9100}
    assert parse_device("usb://0x0416:0x5011").options == {"idVendor": 0x0416,
                                                          "idProduct": 0x5011}
    assert parse_device("serial:///dev/ttyUSB0?baudrate=115200").options == {
        "devfile": "/dev/ttyUSB0", "baudrate": 115200}
    for bad in ("lpt://1", "usb://nope", "tcp://"):
        with pytest.raises(ValueError):
            parse_device(bad)
    target = tmp_path / "receipts.bin"
    printer = open_device(f"file://{target}")
    assert printer.print_job(MAKER.escpos(POINTS)).state == "unknown"
    printer.print_job(MAKER.escpos(SLIP))
    assert [len(r.qr_data) for r in decode(target.read_bytes())] == [1, 0]  # appended


def test_templates_are_files_and_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "points_qr.toml").write_text(
        '[[block]]\ntext = "扫码积分 {points}"\n[[block]]\nqr = "{claim_url}"\nsize = 4\n'
        '[[block]]\ncut = true\n', encoding="utf-8")
    custom = ReceiptMaker(paper_mm=80, templates=tmp_path)
    [receipt] = decode(custom.escpos(POINTS))
    assert receipt.lines[0] == "扫码积分 32" and receipt.qr_size == 4
    (tmp_path / "points_qr.toml").write_text('[[block]]\ntext = "{nope}"\n')
    with pytest.raises(TemplateError, match=r"unknown placeholder \{nope\}"):
        custom.escpos(POINTS)


def test_preview_cli_errors_are_one_line(tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text('{"job_id": "x", "kind": "menu", "store_id": "S1"}')
    done = subprocess.run(quanpai("printer-agent", "preview", str(job), "--png",
                                  str(tmp_path / "o.png")), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "kind" in done.stderr
    job.write_text("{not json")
    done = subprocess.run(quanpai("printer-agent", "preview", str(job), "--png",
                                  str(tmp_path / "o.png")), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "not valid JSON" in done.stderr
