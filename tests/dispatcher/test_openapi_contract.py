"""Schemathesis against ``/v1/openapi.json`` of a real ``quanpai serve``: every operation, with a
token of a role it allows, valid and invalid inputs; no 5xx, and every response (status, content
type, body) as the document says. The example count is bounded to keep the run short."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from dispatcher.local_stack import stop_process
from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from infra.tokens import mint_bearer

SECRET, MERCHANT = "contract-secret", "m1"
BINDING = {"cashier": ("S1", ""), "printer": ("S1", ""), "member": ("", "M1")}


def _post(url: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:
        found: dict[str, Any] = json.loads(resp.read())
        return found


@pytest.fixture(scope="module")
def served(redis_server: RedisServer) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_server.url, "QUANPAI_SECRET": SECRET,
           "QUANPAI_MERCHANT": MERCHANT}
    process = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "serve", "--port",
                                str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_port("127.0.0.1", port, timeout=30), "quanpai serve did not start"
        # something to find: a template and a coupon of member M1
        operator = token_for("operator")
        template = _post(url, "/v1/templates", operator, {
            "kind": "gift_card", "name": "礼品卡", "face_value_fen": 10000, "valid_days": 30,
            "total_stock": 1000})
        _post(url, "/v1/coupons", operator, {"template_id": template["template_id"],
                                             "member_id": "M1", "campaign_id": "seed"})
        yield url
    finally:
        stop_process(process)


def token_for(role: str) -> str:
    store, member = BINDING.get(role, ("", ""))
    return mint_bearer(secret=SECRET.encode(), role=role, merchant_id=MERCHANT,
                       store_id=store, member_id=member)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def _headers(operation: Any) -> dict[str, str]:
    description = operation.definition.raw.get("description", "")
    roles = [r.strip(" .") for r in description.removeprefix("Roles:").split(",") if r.strip()]
    if not roles:
        return {}
    return {"Authorization": f"Bearer {token_for('operator' if 'operator' in roles else roles[0])}"}


def _runner(operation: Any, mode: GenerationMode, served: str) -> Any:
    headers = _headers(operation)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate],
              verbosity=Verbosity.quiet)
    def run(case: Any) -> None:
        case.call_and_validate(base_url=served, headers=headers, checks=CHECKS)

    return run


def test_every_operation_keeps_its_contract(served: str) -> None:
    # schemathesis's pytest plugin does not load under this pytest; the same checks run here
    # through its strategies, one Hypothesis run per operation and generation mode
    api = schemathesis.openapi.from_url(served + "/v1/openapi.json")
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _runner(operation, mode, served)()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                assert mode == GenerationMode.NEGATIVE
            except Exception as exc:  # one entry per broken operation, then fail with all
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:300]}")
    assert not failures, "\n\n".join(failures)
