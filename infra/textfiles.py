"""Text files as merchants in China have them: UTF-8, UTF-8 with a BOM (Excel's "CSV UTF-8"),
or GBK / GB18030 (Excel's default CSV and many editors on a Chinese Windows).

``detect_encoding`` reads the start of a file and names its codec; ``read_text`` decodes a
whole file. ``quanpai --encoding NAME`` (``use_encoding``) names the codec for every file a
command reads instead of detecting it. GB18030 is a superset of GBK, so GBK files decode as
GB18030. An undecodable file is ``InvalidInput`` naming the file and the byte.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from infra.errors import InvalidInput

SAMPLE_BYTES = 1 << 16
_chosen: dict[str, str] = {}  # set once by the command line (``--encoding``)


def use_encoding(name: str | None) -> None:
    """Decode every file with ``name`` (``None``: detect each file's encoding)."""
    _chosen.clear()
    if name:
        try:
            _chosen["name"] = codecs.lookup(name).name
        except LookupError:
            raise InvalidInput("--encoding", f"unknown encoding {name!r} (utf-8, utf-8-sig, "
                                             "gbk, gb18030)") from None


def _fits(sample: bytes, codec: str, *, whole: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(sample, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """The codec of ``path``: the one chosen with ``--encoding``, else ``utf-8-sig`` (a BOM),
    ``utf-8`` or ``gb18030``, judged on the first 64 KB."""
    if "name" in _chosen:
        return _chosen["name"]
    with path.open("rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
        whole = len(sample) < SAMPLE_BYTES
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if _fits(sample, "utf-8", whole=whole):
        return "utf-8"
    if _fits(sample, "gb18030", whole=whole):
        return "gb18030"
    raise InvalidInput(str(path), "is neither UTF-8 nor GBK/GB18030 text: save it as UTF-8 "
                                  "or pass --encoding")


def read_text(path: Path) -> str:
    """The whole text of ``path`` in its detected (or chosen) encoding."""
    codec = detect_encoding(path)
    try:
        return path.read_bytes().decode(codec)
    except UnicodeDecodeError as exc:
        raise InvalidInput(str(path), f"is not {codec} text (byte {exc.start}): save it as "
                                      "UTF-8 or pass --encoding") from None
