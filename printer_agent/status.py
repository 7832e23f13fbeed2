"""Printer status from ESC/POS real-time status (``DLE EOT n``).

``n = 1`` printer (bit 3: offline), ``n = 2`` offline cause (bit 2: cover open, bit 5: stopped
for paper end, bit 6: error), ``n = 4`` paper roll sensor (bits 2-3: near end, bits 5-6: out).
A valid answer byte has the pattern ``0xx1xx10``. Many cheap printers answer nothing: that is
``unknown``, which still prints (the job's bytes go out and the printer does what it can),
never ``ok``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

DLE_EOT = b"\x10\x04"


@dataclass(frozen=True)
class PrinterStatus:
    state: str  # ok, paper_near_end, paper_out, cover_open, offline, error, unknown
    detail: str = ""
    checked_at: float = field(default_factory=time.time)

    @property
    def can_print(self) -> bool:
        return self.state in ("ok", "paper_near_end", "unknown")

    def describe(self) -> str:
        words = {"ok": "在线 online", "paper_near_end": "纸将用完 paper near end",
                 "paper_out": "缺纸 paper out", "cover_open": "纸仓盖打开 cover open",
                 "offline": "离线 offline", "error": "故障 error",
                 "unknown": "未应答状态查询 status unknown"}
        text = words.get(self.state, self.state)
        return f"{text} ({self.detail})" if self.detail else text

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "checked_at": self.checked_at}


def valid(answer: bytes) -> bool:
    return len(answer) == 1 and answer[0] & 0b10010011 == 0b00010010


def _ask(device: Any, n: int) -> int | None:
    try:
        device._raw(DLE_EOT + bytes([n]))
        answer = device._read()
    except Exception:  # a timeout or a transport that cannot read: no answer
        return None
    if isinstance(answer, (bytes, bytearray)) and answer:
        answer = bytes(answer[-1:])
    return answer[0] if isinstance(answer, bytes) and valid(answer) else None


def interpret(printer: int | None, cause: int | None, paper: int | None) -> PrinterStatus:
    """The status from the three answer bytes (``None``: not answered)."""
    if printer is None:
        return PrinterStatus("unknown", "no DLE EOT answer")
    if paper is not None and paper & 0x60:
        return PrinterStatus("paper_out")
    if cause is not None and cause & 0x04:
        return PrinterStatus("cover_open")
    if cause is not None and cause & 0x20:
        return PrinterStatus("paper_out")
    if cause is not None and cause & 0x40:
        return PrinterStatus("error")
    if printer & 0x08:
        return PrinterStatus("offline")
    if paper is not None and paper & 0x0C:
        return PrinterStatus("paper_near_end")
    return PrinterStatus("ok")


def read_status(device: Any) -> PrinterStatus:
    """Ask an open python-escpos device for its status; stops asking at the first silence."""
    printer = _ask(device, 1)
    if printer is None:
        return interpret(None, None, None)
    return interpret(printer, _ask(device, 2), _ask(device, 4))
