"""WeChat server-URL pushes: the query signature and the XML event bodies (spec §1.8).

Shared by the callback receiver (verify, parse) and the simulator (sign, build), so both sides
speak one format. ``signature = sha1("".join(sorted([token, timestamp, nonce])))`` in hex.
"""

from __future__ import annotations

import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Mapping


def push_signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def verify_push(token: str, query: Mapping[str, str]) -> bool:
    """True when ``query`` carries a valid ``signature`` for ``timestamp`` and ``nonce``."""
    expected = push_signature(token, query.get("timestamp", ""), query.get("nonce", ""))
    return hmac.compare_digest(expected, query.get("signature", ""))


def build_event(fields: Mapping[str, str | int]) -> bytes:
    """An ``<xml>`` body; strings in CDATA as the platform sends them, numbers bare."""
    parts = ["<xml>"]
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            safe = value.replace("]]>", "]]]]><![CDATA[>")
            parts.append(f"<{name}><![CDATA[{safe}]]></{name}>")
    parts.append("</xml>")
    return "".join(parts).encode()


def parse_event(body: bytes) -> dict[str, str]:
    """The top-level fields of an event body; raises ``ValueError`` when it is not XML."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not an XML event: {exc}") from exc
    if root.tag != "xml":
        raise ValueError("event root element must be <xml>")
    return {child.tag: (child.text or "") for child in root}


__all__ = ["build_event", "parse_event", "push_signature", "verify_push"]
