"""Aliyun RPC signature v1 (HMAC-SHA1), shared by the SMS client and its simulator.

The algorithm follows the official core SDK (``rpc_signature_composer.py``): sort every parameter
except ``Signature`` by key, percent-encode keys and values per RFC 3986 (space -> ``%20``,
``*`` -> ``%2A``, ``~`` kept), join with ``&``, encode that string once more, prefix it with
``METHOD&%2F&`` and sign with HMAC-SHA1 under ``AccessKeySecret + "&"``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the Aliyun SDKs produce it (only ``A-Za-z0-9-_.~`` unescaped)."""
    return quote(value, safe="~")


def canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``k=v&...`` string of every parameter except ``Signature``."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(params[k])}"
        for k in sorted(params)
        if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return f"{method.upper()}&%2F&{percent_encode(canonical_query(params))}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """The ``Signature`` value for ``params`` sent with HTTP ``method``."""
    digest = hmac.new(
        (secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


def verify(method: str, params: Mapping[str, str], secret: str) -> bool:
    """True when ``params["Signature"]`` matches; compared in constant time."""
    given = params.get("Signature", "")
    return hmac.compare_digest(sign(method, params, secret), given)


def common_params(*, access_key_id: str, action: str, version: str,
                  now: datetime | None = None, nonce: str | None = None) -> dict[str, str]:
    """The RPC common parameters (without ``Signature``) for one call."""
    moment = now or datetime.now(UTC)
    return {
        "AccessKeyId": access_key_id,
        "Action": action,
        "Format": "JSON",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce or uuid.uuid4().hex,
        "SignatureVersion": "1.0",
        "Timestamp": moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT),
        "Version": version,
    }


def parse_timestamp(value: str) -> datetime:
    """Parse the ISO 8601 UTC ``Timestamp``; raises ``ValueError`` when malformed."""
    return datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
