"""Aliyun SMS codes and what each means for the dispatcher (spec §3.1). Matched on codes only."""

from __future__ import annotations

from typing import Literal

Outcome = Literal["failed_permanent", "failed_retryable", "quota_exhausted", "config"]

# The account or its setup is wrong: every message would fail the same way.
CONFIG = frozenset({
    "SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "isv.SMS_TEMPLATE_ILLEGAL", "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SIGN_STATE_ILLEGAL", "isp.RAM_PERMISSION_DENY", "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.PRODUCT_UNSUBSCRIBE", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL",
    "isv.DENY_IP_RANGE", "InvalidApi.NotFound", "InvalidVersion", "InvalidSignatureMethod",
})

QUOTA = frozenset({
    "isv.DAY_LIMIT_CONTROL", "isv.MONTH_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH",
    "isv.OUT_OF_SERVICE",
})

RETRYABLE = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "Throttling", "Throttling.User",
    "Throttling.Api", "ServiceUnavailable", "InternalError", "InvalidTimeStamp.Expired",
    "SignatureNonceUsed", "timeout", "network",
})

# Codes that one number can cause for a whole multi-number request.
RESEND_ALONE = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.BUSINESS_LIMIT_CONTROL"})


def classify(code: str) -> Outcome:
    """What a non-OK code means; unknown codes are permanent for the member (never looped)."""
    if code in CONFIG:
        return "config"
    if code in QUOTA:
        return "quota_exhausted"
    if code in RETRYABLE or code.startswith("http_5") or code.startswith("Throttling"):
        return "failed_retryable"
    return "failed_permanent"
