"""Coupon codes: 16 characters a cashier can type, signed so a forged or mistyped code is refused
before any lookup.

A code carries 80 bits in Crockford base32 (no I, L, O, U; ``I``/``L`` read as 1 and ``O`` as 0
when typed): the template number (20 bits), the coupon's serial within the template (28 bits) and
a 32-bit HMAC-SHA256 tag over both, keyed per merchant from the secret. A random guess is accepted
once in four billion tries, and a code of one merchant never verifies for another. The serial
tells the compact store where the coupon lives, so verification costs no Redis round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(ALPHABET)} | {"I": 1, "L": 1, "O": 0}
TEMPLATE_BITS = 20
SERIAL_BITS = 28
MAC_BITS = 32
CODE_LENGTH = 16
QR_PREFIX = "QP1:"
# RFC 4648 base32 spells 5 bits a character from the high end, as codes do: 10 bytes make 16
# characters with no padding, mapped onto the code alphabet (a fifth of the cost of a loop)
_B32_TO_CODE = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())


@dataclass(frozen=True, slots=True)
class CodeRef:
    """What a verified code points at."""

    template_number: int
    serial: int

    @property
    def template_id(self) -> str:
        return f"t{self.template_number}"


@lru_cache(maxsize=64)
def _key(secret: bytes, merchant_id: str) -> bytes:
    return hmac.new(secret, b"coupon-code:" + merchant_id.encode(), hashlib.sha256).digest()


def _mac(key: bytes, payload: int) -> int:
    digest = hmac.new(key, payload.to_bytes(6, "big"), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def make_code(*, secret: bytes, merchant_id: str, template_number: int, serial: int) -> str:
    """The 16-character code of one coupon."""
    return _code(secret, merchant_id, template_number, serial)


@lru_cache(maxsize=1 << 16)  # wallets are read again and again: an HMAC per coupon adds up
def _code(secret: bytes, merchant_id: str, template_number: int, serial: int) -> str:
    _check(template_number, serial)
    payload = template_number << SERIAL_BITS | serial
    return _spell(payload << MAC_BITS | _mac(_key(secret, merchant_id), payload))


def _check(template_number: int, serial: int) -> None:
    if not 0 < template_number < 1 << TEMPLATE_BITS or not 0 < serial < 1 << SERIAL_BITS:
        raise ValueError("template number or serial out of range for a code")


def _spell(value: int) -> str:
    return _spell_bytes(value.to_bytes(CODE_LENGTH * 5 // 8, "big"))


def _spell_bytes(raw: bytes) -> str:
    return base64.b32encode(raw).translate(_B32_TO_CODE).decode()


def make_codes(
    *, secret: bytes, merchant_id: str, template_number: int, serials: Sequence[int]
) -> list[str]:
    """Codes of many coupons of one template, the same as ``make_code`` gives: the keyed
    HMAC state is set up once and copied per code (issuance makes a code per new coupon, so
    the per-code key setup and the cache that serves wallets were a fifth of its CPU)."""
    keyed = hmac.new(_key(secret, merchant_id), digestmod="sha256")  # OpenSSL's HMAC object
    raw = []
    for serial in serials:
        _check(template_number, serial)
        payload = (template_number << SERIAL_BITS | serial).to_bytes(6, "big")
        mac = keyed.copy()
        mac.update(payload)
        raw.append(payload + mac.digest()[:4])
    # 10 bytes spell exactly 16 characters, so the codes spelled together are the codes spelled
    # one by one, end to end: one encoder call for the batch instead of one a code (0.75 µs a
    # code against 1.2)
    spelled = _spell_bytes(b"".join(raw))
    return [spelled[i:i + CODE_LENGTH] for i in range(0, len(spelled), CODE_LENGTH)]


def normalize(text: str) -> str:
    """A typed or scanned code without spaces, dashes or the QR prefix, upper case."""
    text = text.strip()
    if text.upper().startswith(QR_PREFIX):
        text = text[len(QR_PREFIX):]
    return text.replace("-", "").replace(" ", "").upper()


def verify_code(text: str, *, secret: bytes, merchant_id: str) -> CodeRef | None:
    """The coupon a code points at, or None when it is malformed, mistyped or forged."""
    code = normalize(text)
    if len(code) != CODE_LENGTH:
        return None
    value = 0
    for char in code:
        digit = _DECODE.get(char)
        if digit is None:
            return None
        value = value << 5 | digit
    payload, tag = value >> MAC_BITS, value & ((1 << MAC_BITS) - 1)
    if not hmac.compare_digest(
        _mac(_key(secret, merchant_id), payload).to_bytes(4, "big"), tag.to_bytes(4, "big")
    ):
        return None
    number, serial = payload >> SERIAL_BITS, payload & ((1 << SERIAL_BITS) - 1)
    if number == 0 or serial == 0:
        return None
    return CodeRef(template_number=number, serial=serial)


@lru_cache(maxsize=1 << 16)
def display(code: str) -> str:
    """Groups of four for print and screens: ``ABCD-EFGH-JKMN-PQRS``."""
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def qr_payload(code: str) -> str:
    """What the QR code encodes; scanners and typed codes go through the same ``verify_code``."""
    return QR_PREFIX + code
