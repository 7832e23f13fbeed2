"""The preview PNG's QR code is the claim: decoded from the picture (zxing-cpp), it is redeemed
through the API once; a second redeem is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from PIL import Image

from tests.catalog.conftest import ApiServer, Http, run_http
from tests.printer_agent.conftest import quanpai


def test_preview_qr_decodes_to_a_claim_redeemed_once(api: ApiServer, tmp_path: Path) -> None:
    jobs: list[dict[str, object]] = []

    async def ask(http: Http) -> None:
        printer = http.as_(api.token("printer", store="S1"))
        status, job = await printer("POST", "/v1/stores/S1/print-jobs", {
            "kind": "points_qr", "order_id": "CASH-2001", "amount_fen": 28800})
        assert status == 201, job
        status, again = await printer("POST", "/v1/stores/S1/print-jobs", {
            "kind": "points_qr", "order_id": "CASH-2001", "amount_fen": 28800})
        assert status == 200 and again["job_id"] == job["job_id"] and not again["created"]
        jobs.append(job)

    run_http(api, ask)
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(jobs[0], ensure_ascii=False), encoding="utf-8")
    png = tmp_path / "receipt.png"
    for paper in ("58", "80"):
        done = subprocess.run(
            quanpai("printer-agent", "preview", str(job_file), "--png", str(png), "--paper",
                    paper),
            env={"PATH": "/usr/bin:/bin", "PRINTER_CLAIM_URL": "https://m.example.cn/c?t={token}",
                 "PRINTER_STORE_NAME": "券派咖啡"}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        with Image.open(png) as image:
            assert image.width == {"58": 384, "80": 576}[paper] + 16
            found = zxingcpp.read_barcodes(image)
        assert [code.format.name for code in found] == ["QRCode"]
        url = urlsplit(found[0].text)
        assert (url.netloc, url.path) == ("m.example.cn", "/c")
        token = parse_qs(url.query)["t"][0]
        assert token == jobs[0]["data"]["token"]  # type: ignore[index]

    async def redeem(http: Http) -> None:
        alice = http.as_(api.token("member", member="alice"))
        status, body = await alice("POST", f"/v1/points/claims/{token}/redeem", {})
        assert status == 200 and body["points"] == jobs[0]["data"]["points"], body  # type: ignore[index]
        assert body["joined"] is True
        bob = http.as_(api.token("member", member="bob"))
        status, body = await bob("POST", f"/v1/points/claims/{token}/redeem", {})
        assert status == 409 and body["reason"] == "already_claimed", body

    run_http(api, redeem)
