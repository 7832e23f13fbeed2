"""Batch checks of reply signatures (``channels.rsa_batch``): the same verdicts as one OpenSSL
verification per reply, a damaged reply rejected alone, and what screening does not promise."""

from __future__ import annotations

import binascii
import json
from functools import cache

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay import AlipayConfig, AlipayVoucherChannel
from channels.alipay_keys import AlipayKeys
from channels.alipay_signature import rsa2_sign, rsa2_verify, signed_response
from channels.base import Message
from channels.rsa_batch import BatchVerifier
from channels.transport import LeanPoster
from tests.channels.support import run, serving


@cache
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(raw: bytes) -> bytes:
    return binascii.b2a_base64(raw, newline=False)


def signed(i: int) -> tuple[bytes, bytes]:
    content = f'{{"code":"10000","voucher_id":"{i}","msg":"成功"}}'.encode()
    return content, rsa2_sign(key(), content.decode()).encode()


def test_all_valid_batch_is_accepted_and_each_kind_of_damage_is_rejected_alone() -> None:
    verifier = BatchVerifier(key().public_key())
    n = key().public_key().public_numbers().n
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = [signed(i) for i in range(40)]
    assert verifier.verify_many(good) == [True] * 40
    assert verifier.verify_many([]) == []

    content, sign = good[7]
    raw = bytearray(binascii.a2b_base64(sign))
    raw[100] ^= 1
    damaged: list[tuple[bytes, bytes] | None] = [
        (content[:-2] + b"X}", sign),  # one byte of the reply text changed
        (content, b64(bytes(raw))),  # one bit of the signature changed
        (content, rsa2_sign(other, content.decode()).encode()),  # someone else's key
        (content, sign[:-4]),  # not canonical base64
        (content, b"not base64!"),
        (content, b64(binascii.a2b_base64(sign)[1:])),  # too short
        (content, b64((n + 1).to_bytes(256, "big"))),  # not below the modulus
        (content, b64(bytes(256))),  # zero
        None,  # a reply without a signature
    ]
    for bad in damaged:
        batch = [*good[:20], bad, *good[20:]]
        verdicts = verifier.verify_many(batch)
        assert verdicts == [True] * 20 + [False] + [True] * 20, bad
        # the same verdicts as one verification per reply
        assert verdicts == [item is not None and rsa2_verify(key().public_key(), *item)
                            for item in batch]


def test_screening_proves_the_messages_were_signed_not_the_signature_strings() -> None:
    # Two genuine signatures multiplied by x and by x⁻¹: each is invalid on its own, the
    # product is unchanged. Both messages were signed by the key holder, which is all the
    # client needs of a reply (it keeps no signatures), so the batch accepts them.
    public = key().public_key()
    n = public.public_numbers().n
    (m1, s1), (m2, s2) = signed(1), signed(2)
    x = 12345
    t1 = int.from_bytes(binascii.a2b_base64(s1), "big") * x % n
    t2 = int.from_bytes(binascii.a2b_base64(s2), "big") * pow(x, -1, n) % n
    pair = [(m1, b64(t1.to_bytes(256, "big"))), (m2, b64(t2.to_bytes(256, "big")))]
    assert not rsa2_verify(public, *pair[0]) and not rsa2_verify(public, *pair[1])
    assert BatchVerifier(public).verify_many(pair) == [True, True]
    # A message nobody signed cannot ride along: changing it breaks the product.
    assert BatchVerifier(public).verify_many([(m1 + b" ", pair[0][1]), pair[1]]) == [
        False, False]


def test_a_damaged_reply_in_a_batch_fails_only_its_member() -> None:
    app_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = AlipayKeys(app_private=app_key, alipay_public=key().public_key())
    method = "alipay.marketing.voucher.send"

    async def gateway(request: web.Request) -> web.Response:
        biz = json.loads((await request.post())["biz_content"])  # type: ignore[arg-type]
        reply = signed_response(method, {"code": "10000", "msg": "Success",
                                         "voucher_id": "V" + biz["out_biz_no"]}, key())
        if biz["out_biz_no"] == "c_m13":  # altered on the way: the voucher id changed
            reply = reply.replace("Vc_m13", "Vc_m31")
        return web.Response(text=reply, content_type="application/json")

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/gateway.do", gateway)
        async with serving(app) as url:
            lean = LeanPoster()
            channel = AlipayVoucherChannel(
                config=AlipayConfig(base_url=url + "/gateway.do", app_id="2021",
                                    voucher_template_id="T1", concurrency=4),
                keys=keys, session=None, poster=lean)  # type: ignore[arg-type]
            messages = [Message(member_id=f"m{i}", address=f"2088{i:012d}",
                                coupon_code=f"C{i}", idempotency_key=f"c_m{i}")
                        for i in range(30)]
            results = await channel.send(messages)
            lean.close()
        assert [(r.status, r.code) for r in results if r.member_id == "m13"] == [
            ("failed_retryable", "response_sign_invalid")]
        assert all(r.status == "sent" and r.provider_id == f"V{m.idempotency_key}"
                   for m, r in zip(messages, results, strict=True) if m.member_id != "m13")
    run(scenario)
