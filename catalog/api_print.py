"""HTTP routes for the stores' printer agents and the operators who watch them.

- ``GET  /v1/stores/{store_id}/print-jobs?after=&wait=&limit=``  long-poll (printer)
- ``POST /v1/stores/{store_id}/print-jobs``      a points QR, slip or voucher job
- ``POST /v1/stores/{store_id}/print-jobs/ack``  receipt cursor, printed and failed jobs
- ``GET  /v1/stores/{store_id}/print-jobs/{job_id}``  a job's state
- ``PUT  /v1/stores/{store_id}/printer``         the agent's status report (printer)
- ``GET  /v1/stores/{store_id}/printer``, ``GET /v1/printers``  status (operator)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from catalog import print_jobs
from catalog.api import catalog_of
from catalog.api_models import Code, Id, OrderId, PositiveFen
from catalog.errors import InvalidInput
from infra.http_api import Route, principal, query_of, respond

MAX_WAIT = 55  # seconds a long-poll may be held (below common proxy idle timeouts of 60 s)
Cursor = Annotated[str, Meta(pattern=r"^[0-9]{1,20}-[0-9]{1,20}$",
                             description="a queue position such as 1733212800000-0")]
JobId = Annotated[str, Meta(min_length=1, max_length=160)]
JobIds = Annotated[list[JobId], Meta(max_length=500)]
Copy = Annotated[int, Meta(ge=0, le=99, description="0: the job once; n > 0: another copy")]
_STORE = {"store_id": Id}


class PollQuery(msgspec.Struct, forbid_unknown_fields=True):
    after: Cursor | None = None  # default: after the last job the agent acknowledged
    wait: Annotated[int, Meta(ge=0, le=MAX_WAIT, description="seconds to wait for a job")] = 0
    limit: Annotated[int, Meta(ge=1, le=500)] = 50


class PrintJobOut(msgspec.Struct, kw_only=True):
    job_id: str
    kind: Literal["points_qr", "redemption_slip", "coupon_voucher"]
    store_id: str
    created_at: str
    data: dict[str, Any]
    seq: str


class CreatedJobOut(PrintJobOut, kw_only=True):
    created: bool


class PollOut(msgspec.Struct):
    jobs: list[PrintJobOut]
    cursor: str


class JobIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``points_qr`` needs order_id and amount_fen, ``redemption_slip`` redemption_id,
    ``coupon_voucher`` code (cashier or operator)."""

    kind: Literal["points_qr", "redemption_slip", "coupon_voucher"]
    order_id: OrderId | None = None
    amount_fen: PositiveFen | None = None
    redemption_id: Annotated[str, Meta(pattern=r"^t[0-9]{1,7}-[0-9]{1,12}$")] | None = None
    cashier: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    code: Code | None = None
    copy: Copy = 0


class AckIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    received_up_to: Cursor | None = None
    printed: JobIds = msgspec.field(default_factory=list)
    failed: JobIds = msgspec.field(default_factory=list)


class AckOut(msgspec.Struct):
    received_up_to: str
    acknowledged: int
    new: list[str]


class JobStateOut(msgspec.Struct):
    job_id: str
    store_id: str
    state: Literal["queued", "printed", "failed"]


class PrinterIn(msgspec.Struct, kw_only=True):
    state: Annotated[str, Meta(max_length=32)] = "unknown"
    detail: Annotated[str, Meta(max_length=500)] = ""
    target: Annotated[str, Meta(max_length=200)] = ""
    checked_at: float = 0.0


class StatusIn(msgspec.Struct, kw_only=True):
    """The agent's report (at most 16 KB once stored); other fields are ignored."""

    printer: PrinterIn
    spool: dict[str, Any] = msgspec.field(default_factory=dict)
    service: dict[str, Any] = msgspec.field(default_factory=dict)
    store_id: str | None = None
    pid: int | None = None
    started_at: float | None = None
    reported_at: float | None = None


class StoreStatusOut(msgspec.Struct):
    store_id: str
    agent_online: bool
    last_seen: str | None
    printer: dict[str, Any]
    spool: dict[str, Any]
    service_connected: bool
    waiting_on_service: int


class PrintersOut(msgspec.Struct):
    stores: list[StoreStatusOut]


def _store(request: web.Request) -> tuple[str, str]:
    who = principal(request)
    store_id = request.match_info["store_id"]
    who.require_store(store_id)
    return who.merchant_id, store_id


async def poll_print_jobs(request: web.Request) -> web.Response:
    merchant_id, store_id = _store(request)
    query: PollQuery = query_of(request, PollQuery)
    return respond(await print_jobs.poll(
        catalog_of(request), merchant_id=merchant_id, store_id=store_id,
        after=query.after or "", wait_s=query.wait, limit=query.limit))


async def create_print_job(request: web.Request, body: JobIn) -> web.Response:
    merchant_id, store_id = _store(request)
    cat = catalog_of(request)
    if body.kind == "points_qr":
        if body.order_id is None or body.amount_fen is None:
            raise InvalidInput("order_id" if body.order_id is None else "amount_fen",
                               "required for a points_qr job")
        job = await print_jobs.points_qr_job(cat, merchant_id=merchant_id, store_id=store_id,
                                             order_id=body.order_id,
                                             amount_fen=body.amount_fen)
    elif body.kind == "redemption_slip":
        if body.redemption_id is None:
            raise InvalidInput("redemption_id", "required for a redemption_slip job")
        job = await print_jobs.slip_job(cat, merchant_id=merchant_id, store_id=store_id,
                                        redemption_id=body.redemption_id,
                                        cashier=body.cashier or "", copy=body.copy)
    else:
        if principal(request).role == "printer":
            raise InvalidInput("kind", "a printer token may ask for points_qr or "
                                       "redemption_slip jobs only")
        if body.code is None:
            raise InvalidInput("code", "required for a coupon_voucher job")
        job = await print_jobs.voucher_job(cat, merchant_id=merchant_id, store_id=store_id,
                                           code=body.code, copy=body.copy)
    return respond(job, status=201 if job["created"] else 200)


async def ack_print_jobs(request: web.Request, body: AckIn) -> web.Response:
    merchant_id, store_id = _store(request)
    return respond(await print_jobs.acknowledge(
        catalog_of(request), merchant_id=merchant_id, store_id=store_id,
        received_up_to=body.received_up_to or "", printed=body.printed, failed=body.failed))


async def get_print_job(request: web.Request) -> web.Response:
    merchant_id, store_id = _store(request)
    job_id = request.match_info["job_id"]
    state = await print_jobs.job_state(catalog_of(request), merchant_id=merchant_id,
                                       store_id=store_id, job_id=job_id)
    return respond({"job_id": job_id, "store_id": store_id, "state": state})


async def put_printer_status(request: web.Request, body: StatusIn) -> web.Response:
    merchant_id, store_id = _store(request)
    await print_jobs.save_status(catalog_of(request), merchant_id=merchant_id,
                                 store_id=store_id, report=msgspec.to_builtins(body))
    return respond({"store_id": store_id, "saved": True})


async def get_printer_status(request: web.Request) -> web.Response:
    merchant_id, store_id = _store(request)
    found = await print_jobs.store_status(catalog_of(request), merchant_id=merchant_id,
                                          store_id=store_id)
    return respond(found[0])


async def list_printers(request: web.Request) -> web.Response:
    return respond({"stores": await print_jobs.store_status(
        catalog_of(request), merchant_id=principal(request).merchant_id)})


ROUTES = [
    Route("GET", "/v1/stores/{store_id}/print-jobs", poll_print_jobs,
          "Long-poll the store's print jobs after a cursor (wait 0-55 s)", ("printer",),
          responses={200: PollOut}, path_params=_STORE, query=PollQuery, tags=("printers",)),
    Route("POST", "/v1/stores/{store_id}/print-jobs", create_print_job,
          "Queue a points QR (mints the claim), a redemption slip or a coupon voucher for the "
          "store's printer, once per job", ("printer", "cashier", "operator"), JobIn,
          {201: CreatedJobOut, 200: CreatedJobOut}, path_params=_STORE, tags=("printers",)),
    Route("POST", "/v1/stores/{store_id}/print-jobs/ack", ack_print_jobs,
          "Acknowledge jobs received (a cursor) and printed or failed (printed events)",
          ("printer",), AckIn, {200: AckOut}, path_params=_STORE, tags=("printers",)),
    Route("GET", "/v1/stores/{store_id}/print-jobs/{job_id}", get_print_job,
          "A print job's state", ("printer", "cashier", "operator"),
          responses={200: JobStateOut}, path_params={**_STORE, "job_id": JobId},
          tags=("printers",)),
    Route("PUT", "/v1/stores/{store_id}/printer", put_printer_status,
          "The printer agent's status report", ("printer",), StatusIn, {200: None},
          path_params=_STORE, tags=("printers",)),
    Route("GET", "/v1/stores/{store_id}/printer", get_printer_status,
          "A store's agent and printer status", ("operator", "printer"),
          responses={200: StoreStatusOut}, path_params=_STORE, tags=("printers",)),
    Route("GET", "/v1/printers", list_printers, "Every store's agent and printer status",
          ("operator",), responses={200: PrintersOut}, tags=("printers",)),
]
