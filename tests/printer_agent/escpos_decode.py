"""Decodes the ESC/POS bytes a printer received into commands, independently of the code that
wrote them, so the tests check the bytes themselves."""

from __future__ import annotations

from dataclasses import dataclass, field

ESC, FS, GS, DLE, LF = 0x1B, 0x1C, 0x1D, 0x10, 0x0A


@dataclass
class Receipt:
    """What one ``ESC @`` ... (cut) carried."""

    chinese_mode: bool = False
    lines: list[str] = field(default_factory=list)
    qr_data: list[str] = field(default_factory=list)
    qr_printed: int = 0
    qr_model: int = 0
    qr_size: int = 0
    cuts: int = 0
    bold_lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def decode(data: bytes, *, encoding: str = "gb18030") -> list[Receipt]:
    """Every receipt in ``data``, split at each initialisation (``ESC @``)."""
    receipts: list[Receipt] = []
    current: Receipt | None = None
    text = bytearray()
    bold = False
    i = 0

    def flush_line() -> None:
        nonlocal text
        if current is not None:
            line = text.decode(encoding)
            current.lines.append(line)
            if bold and line.strip():
                current.bold_lines.append(line.strip())
        text = bytearray()

    while i < len(data):
        b = data[i]
        if b == ESC and data[i + 1:i + 2] == b"@":
            current = Receipt()
            receipts.append(current)
            bold = False
            i += 2
            continue
        if b == DLE and data[i + 1] == 0x04:
            i += 3  # a status query, not part of a receipt
            continue
        if current is None:
            raise AssertionError(f"bytes before the first ESC @ at offset {i}: {data[i:i + 8]!r}")
        if b == LF:
            flush_line()
            i += 1
        elif b == FS:
            op = data[i + 1]
            if op == 0x26:
                current.chinese_mode = True
            elif op == 0x2E:
                current.chinese_mode = False
            i += 2
        elif b == ESC:
            op, arg = data[i + 1], data[i + 2]
            if op == ord("E"):
                bold = bool(arg & 1)
            elif op not in (ord("!"), ord("a"), ord("d"), ord("M"), ord("-"), ord("t")):
                raise AssertionError(f"unexpected ESC {op:#x} at {i}")
            i += 3
        elif b == GS:
            op = data[i + 1]
            if op == ord("(") and data[i + 2] == ord("k"):
                length = data[i + 3] | data[i + 4] << 8
                body = data[i + 5:i + 5 + length]
                cn, fn = body[0], body[1]
                assert cn == 0x31, "not a QR code command"
                if fn == 65:
                    current.qr_model = body[2] - 48
                elif fn == 67:
                    current.qr_size = body[2]
                elif fn == 80:
                    current.qr_data.append(body[3:].decode("utf-8"))
                elif fn == 81:
                    current.qr_printed += 1
                i += 5 + length
            elif op == ord("V"):
                mode = data[i + 2]
                current.cuts += 1
                i += 4 if mode in (65, 66) else 3
            elif op == ord("!"):
                i += 3
            else:
                raise AssertionError(f"unexpected GS {op:#x} at {i}")
        else:
            text.append(b)
            i += 1
    return receipts
