"""Alipay OpenAPI RSA2 signatures (spec §2.2, §2.3, §2.6), shared by the client and simulator.

- Requests: every parameter except ``sign`` (``sign_type`` included), empty values dropped,
  sorted by key, ``k=v`` joined with ``&`` using raw values; SHA256withRSA, PKCS#1 v1.5, base64.
- Responses: the signature covers the raw text of the ``<method>_response`` value exactly as it
  came over the wire; it is cut out of the body, never re-serialised.
- Async notifications: ``sign`` *and* ``sign_type`` are excluded.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PrivateKey = rsa.RSAPrivateKey
PublicKey = rsa.RSAPublicKey


def sign_content(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> str:
    """The string that is signed: sorted ``k=v`` pairs joined by ``&``, raw values."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in exclude and params[k] != "")


_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def rsa2_sign(key: PrivateKey, content: str) -> str:
    return binascii.b2a_base64(key.sign(content.encode(), _PKCS1, _SHA256),
                               newline=False).decode()


def rsa_sign_many(key: PrivateKey, contents: Sequence[bytes]) -> list[bytes]:
    """Raw SHA256withRSA (PKCS#1 v1.5) signatures of ``contents``, in one tight loop (the
    bench times this loop as the signing cost the client is measured against)."""
    sign = key.sign
    return [sign(content, _PKCS1, _SHA256) for content in contents]


def rsa2_sign_many(key: PrivateKey, contents: Sequence[bytes]) -> list[bytes]:
    """Base64 SHA256withRSA signatures of ``contents``, in order."""
    return [binascii.b2a_base64(s, newline=False) for s in rsa_sign_many(key, contents)]


def rsa2_verify(key: PublicKey, content: str | bytes, signature: str | bytes) -> bool:
    """True when ``signature`` (base64) is a valid SHA256withRSA signature of ``content``:
    ``cryptography``'s standard PKCS#1 v1.5 verification (OpenSSL), one call per reply."""
    data = content.encode() if isinstance(content, str) else content
    try:
        # strict: only the base64 alphabet and canonical padding, as ``validate=True``
        key.verify(binascii.a2b_base64(signature, strict_mode=True), data, _PKCS1, _SHA256)
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def response_key(method: str) -> str:
    return method.replace(".", "_") + "_response"


def split_response(body: str, method: str) -> tuple[str, str]:
    """(raw ``*_response`` JSON text, ``sign``) from a gateway reply, without re-serialising.

    The gateway's shape is ``{"<m>_response":{...},"sign":"..."}``: the object runs from the
    first ``{`` after the key to the ``}`` before the last ``,"sign":"`` (what the official SDK
    does). Any other layout is handled by matching braces, skipping string contents. Raises
    ``ValueError`` when the shape is wrong."""
    head = f'{{"{response_key(method)}":'
    tail = body.rfind('},"sign":"')
    if body.startswith(head) and tail > 0 and body.endswith('"}'):
        sign = body[tail + 10:-2]
        if '"' not in sign and "\\" not in sign:
            return body[len(head):tail + 1], sign
    for key in (response_key(method), "error_response"):
        marker = f'"{key}":'
        at = body.find(marker)
        if at >= 0:
            break
    else:
        raise ValueError("no *_response object in the reply")
    start = body.index("{", at + len(marker))
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(body)):
        ch = body[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                raw = body[start:i + 1]
                break
    else:
        raise ValueError("unterminated *_response object")
    sign = json.loads(body).get("sign", "")
    return raw, str(sign)


def signed_response(method: str, payload: Mapping[str, object], key: PrivateKey) -> str:
    """A gateway reply: ``payload`` serialised once, signed, embedded byte for byte."""
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f'{{"{response_key(method)}":{raw},"sign":"{rsa2_sign(key, raw)}"}}'


def load_private_key(pem: bytes) -> PrivateKey:
    """A PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8 PEM private key."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("expected an RSA private key")
    return key


def load_public_key(pem: bytes) -> PublicKey:
    """An X.509 SubjectPublicKeyInfo (``BEGIN PUBLIC KEY``) PEM public key."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("expected an RSA public key")
    return key


def private_pem(key: PrivateKey) -> bytes:
    """PKCS#1 PEM, the form the official Python SDK reads."""
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def public_pem(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
