"""A receipt layout drawn as a PNG, as the thermal head would print it (8 dots a millimetre,
Font A cells of 12×24 dots, Chinese characters two cells wide), so a template can be checked
without paper. Chinese text needs a CJK font: Debian's ``fonts-noto-cjk`` is looked up first.
"""

from __future__ import annotations

from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from printer_agent.columns import char_columns
from printer_agent.errors import AgentError
from printer_agent.layout import Cut, Feed, Layout, QrCode, TextLine

CELL_W, CELL_H, LINE_H, MARGIN = 12, 24, 30, 8
FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)


def find_font(explicit: Path | None = None) -> Path:
    """A font with Chinese glyphs: ``explicit`` or the first of ``FONTS`` on this machine."""
    for candidate in ([explicit] if explicit else [Path(p) for p in FONTS]):
        if candidate.is_file():
            return candidate
    raise AgentError("no CJK font found: install fonts-noto-cjk (Debian) or pass --font")


def _face(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """The font at ``size``; in a Noto CJK collection, its simplified-Chinese monospace face
    (index 7), whose Latin letters fill a cell like the printer's Font A."""
    if path.name.startswith("NotoSansCJK"):
        try:
            return ImageFont.truetype(str(path), size, index=7)
        except OSError:
            pass
    return ImageFont.truetype(str(path), size)


def _qr_image(data: str, size: int) -> Image.Image:
    code = qrcode.QRCode(box_size=size, border=4,
                         error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    image: Image.Image = code.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("L")


def to_png(layout: Layout, out: Path, *, font: Path | None = None) -> Path:
    """Draw ``layout`` into ``out`` (PNG) and return the path."""
    font_path = find_font(font)
    normal, double = _face(font_path, CELL_H - 2), _face(font_path, 2 * CELL_H - 4)
    width = layout.columns * CELL_W
    qr_images: list[Image.Image] = []
    height = MARGIN
    for element in layout.elements:
        if isinstance(element, TextLine):
            height += 2 * LINE_H if element.double else LINE_H
        elif isinstance(element, QrCode):
            image = _qr_image(element.data, element.size)
            qr_images.append(image)
            height += image.height + LINE_H // 2
        elif isinstance(element, Feed):
            height += element.lines * LINE_H
        elif isinstance(element, Cut):
            height += LINE_H
    canvas = Image.new("L", (width + 2 * MARGIN, height + MARGIN), 255)
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    next_qr = iter(qr_images)
    for element in layout.elements:
        if isinstance(element, TextLine):
            face, scale = (double, 2) if element.double else (normal, 1)
            x = MARGIN
            for char in element.text:
                cells = char_columns(char) * scale
                if not char.isspace():
                    draw.text((x, y), char, font=face, fill=0,
                              stroke_width=1 if element.bold else 0, stroke_fill=0)
                x += cells * CELL_W
            y += LINE_H * scale
        elif isinstance(element, QrCode):
            image = next(next_qr)
            canvas.paste(image, (MARGIN + max(0, (width - image.width) // 2), y))
            y += image.height + LINE_H // 2
        elif isinstance(element, Feed):
            y += element.lines * LINE_H
        elif isinstance(element, Cut):
            y += LINE_H // 2
            for x in range(0, canvas.width, 12):
                draw.line((x, y, x + 6, y), fill=128)
            y += LINE_H // 2
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, "PNG")
    return out
