"""A receipt layout as ESC/POS bytes, built with python-escpos' ``Dummy`` printer.

Chinese text does not go through python-escpos' single-byte code-page machinery (``text()``):
the printer is put in Chinese character mode (``FS &``) and each line is sent encoded in the
configured code page, GB18030 by default (a superset of GBK and GB2312 that every Chinese
firmware reads; characters outside GB2312 may print blank on older heads). QR codes use the
printer's native ``GS ( k`` function unless the printer lacks it (``native_qr=False`` sends a
raster image instead).
"""

from __future__ import annotations

from escpos.constants import QR_ECLEVEL_M
from escpos.printer import Dummy

from printer_agent.layout import Cut, Feed, Layout, QrCode, TextLine

CHINESE_ON = b"\x1c\x26"  # FS &
FEED = b"\x1b\x64"  # ESC d n


def to_escpos(
    layout: Layout, *, encoding: str = "gb18030", chinese_mode: bool = True,
    native_qr: bool = True,
) -> bytes:
    """The bytes that print ``layout``: initialise, text, QR codes, feed and cut."""
    printer = Dummy()
    printer.hw("INIT")
    if chinese_mode:
        printer._raw(CHINESE_ON)
    size = "normal"
    for element in layout.elements:
        if isinstance(element, TextLine):
            wanted = "double" if element.double else "normal"
            if wanted != size:
                printer.set(double_width=element.double, double_height=element.double,
                            normal_textsize=not element.double)
                size = wanted
            printer.set(bold=element.bold)
            printer._raw(element.text.rstrip().encode(encoding, errors="replace") + b"\n")
        elif isinstance(element, QrCode):
            printer.set(align="center")
            printer.qr(element.data, size=element.size, ec=QR_ECLEVEL_M, native=native_qr)
            printer._raw(b"\n")
            printer.set(align="left")
        elif isinstance(element, Feed):
            if element.lines:
                printer._raw(FEED + bytes([element.lines]))
        elif isinstance(element, Cut):
            printer.cut()
    output: bytes = printer.output
    return output
