"""Aliyun SMS client against the strict simulator over real HTTP and a real Redis."""

from __future__ import annotations

import json
from dataclasses import replace

import aiohttp
import pytest
import redis.asyncio
from msgspec import structs

from channels import aliyun_signature
from channels.base import Message
from channels.errors import ChannelConfigError, ChannelUnavailable
from channels.receipts import TAKEN, ReceiptIndex, Recipient
from channels.simulators import sms as sim
from channels.simulators.common import Faults
from channels.sms import AliyunSmsChannel, SmsConfig, TimeoutLedger
from tests.channels.support import run, serving, sim_stats, wait_for

KEY_ID, SECRET = "LTAItest0000001", "test-secret-1"
VARS = {"name": "张三", "coupon": "满100减20券", "expiry": "2026-12-31", "store": "南京西路店"}


def sim_config(**overrides: object) -> sim.SmsSimConfig:
    base = sim.SmsSimConfig(access_keys={KEY_ID: SECRET}, sign_names=frozenset({"券派"}),
                            templates={"SMS_1": sim.DEFAULT_TEMPLATE_VARIABLES})
    return replace(base, **overrides)  # type: ignore[arg-type]


def client_config(url: str, **overrides: object) -> SmsConfig:
    base = SmsConfig(base_url=url + "/", access_key_id=KEY_ID, access_key_secret=SECRET,
                     sign_name="券派", template_code="SMS_1")
    return replace(base, **overrides)  # type: ignore[arg-type]


def msg(i: int, **variables: str) -> Message:
    return Message(member_id=f"m{i}", address=f"1380000{i:04d}", coupon_code=f"C{i}",
                   idempotency_key=f"camp1:m{i}", variables=variables or VARS, campaign_id="camp1")


def test_same_variables_go_in_one_sendsms_and_different_in_sendbatchsms() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config())) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            messages = [msg(i) for i in range(250)]
            messages += [msg(1000 + i, **{**VARS, "name": f"会员{i}"}) for i in range(150)]
            results = await channel.send(messages)
            assert [r.member_id for r in results] == [m.member_id for m in messages]
            assert {r.status for r in results} == {"sent"}
            assert len({r.provider_id for r in results[:250]}) == 1
            stats = await sim_stats(s, url)
            assert stats["counts"]["SendSms_requests"] == 1
            assert stats["counts"]["SendBatchSms_requests"] == 2  # 150 singles -> 100 + 50
            assert stats["counts"]["recipients"] == 400
    run(scenario)


def test_groups_larger_than_max_numbers_are_split() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config(max_numbers=100))) as url, \
                aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url, max_numbers=100), session=s)
            results = await channel.send([msg(i) for i in range(230)])
            assert {r.status for r in results} == {"sent"}
            assert (await sim_stats(s, url))["counts"]["SendSms_requests"] == 3
    run(scenario)


def test_wrong_secret_is_a_config_error_and_nothing_is_sent() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config())) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url, access_key_secret="x"),
                                       session=s)
            with pytest.raises(ChannelConfigError, match="SignatureDoesNotMatch"):
                await channel.send([msg(1)])
            stats = await sim_stats(s, url)
            assert stats["errors"] == {"SignatureDoesNotMatch": 1}
            assert "recipients" not in stats["counts"]
    run(scenario)


def test_signature_rejected_when_one_byte_changes() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config())) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            body = channel.signed("SendSms", {"PhoneNumbers": "13800000001", "SignName": "券派",
                                              "TemplateCode": "SMS_1",
                                              "TemplateParam": json.dumps(VARS)})
            tampered = {**body, "PhoneNumbers": "13800000002"}
            async with s.post(url + "/", data=tampered) as resp:
                assert resp.status == 400
                assert (await resp.json())["Code"] == "SignatureDoesNotMatch"
            async with s.post(url + "/", data=body) as resp:
                assert (await resp.json())["Code"] == "OK"
            async with s.post(url + "/", data=body) as resp:  # same nonce again
                assert (await resp.json())["Code"] == "SignatureNonceUsed"
    run(scenario)


def test_per_member_errors_are_classified_on_codes() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config(per_number_daily=2))) as url, \
                aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            bad = structs.replace(msg(1), address="12345")
            results = await channel.send([bad, msg(2), msg(3)])
            assert results[0].status == "failed_permanent"
            assert results[0].code == "isv.MOBILE_NUMBER_ILLEGAL"
            assert [r.status for r in results[1:]] == ["sent", "sent"]
            await channel.send([msg(2)])
            # msg(2) reached its rolling 24 h limit; msg(3) in the same group still goes out.
            limited = await channel.send([msg(2), msg(3)])
            assert limited[0].status == "failed_retryable"
            assert limited[0].code == "isv.BUSINESS_LIMIT_CONTROL"
            assert limited[0].retry_at is not None
            assert limited[1].status == "sent"
            missing = await channel.send([msg(4, name="李四")])
            assert (missing[0].status, missing[0].code) == (
                "failed_permanent", "isv.TEMPLATE_MISSING_PARAMETERS")
    run(scenario)


def test_quota_error_and_unreachable_provider() -> None:
    async def scenario() -> None:
        app = sim.make_app(sim_config(faults=Faults(quota_share=1.0)))
        async with serving(app) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            results = await channel.send([msg(1), msg(2)])
            assert {(r.status, r.code) for r in results} == {
                ("quota_exhausted", "isv.DAY_LIMIT_CONTROL")}
        async with serving(sim.make_app(sim_config(faults=Faults(error_share=1.0)))) as url, \
                aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            with pytest.raises(ChannelUnavailable):
                await channel.send([msg(1)])
        async with aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)  # closed port
            with pytest.raises(ChannelUnavailable):
                await channel.send([msg(1)])
    run(scenario)


def test_timeout_is_retryable_with_its_own_code() -> None:
    async def scenario() -> None:
        app = sim.make_app(sim_config(faults=Faults(timeout_share=1.0, timeout_hold_s=2)))
        async with serving(app) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url, timeout_s=0.3), session=s)
            # A timeout may hide an accepted send, so it is reported per message, not raised
            # as "nothing happened".
            results = await channel.send([msg(1)])
            assert (results[0].status, results[0].code) == ("failed_retryable", "timeout")
            assert results[0].retry_at is not None
    run(scenario)


def test_receipts_are_indexed_for_the_callback_side(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        index = ReceiptIndex(redis=client, channel="sms")
        async with serving(sim.make_app(sim_config())) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s, receipts=index)
            messages = [msg(1), msg(2)]
            results = await channel.send(messages)
            assert {r.status for r in results} == {"sent"}
            out_id = channel.plan(messages)[0][0].params["OutId"]
            found = await index.take(out_id, ["13800000001", "13800000002"])
            assert [r.member_id if isinstance(r, Recipient) else r for r in found] == ["m1", "m2"]
            again = await index.take(out_id, ["13800000001"])
            assert again == [TAKEN]
        await client.aclose()
    run(scenario)


def _agrees_with_the_sdk(params: dict[str, str]) -> None:
    """Our string to sign, signature and verification agree with the official SDK's."""
    from urllib.parse import parse_qsl, urlsplit

    from aliyunsdkcore.auth.composer import rpc_signature_composer as composer

    url, sdk_string = composer.get_signed_url(dict(params), KEY_ID, SECRET, "JSON", "POST", {})
    signed = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    ours = {k: v for k, v in signed.items() if k != "Signature"}
    assert aliyun_signature.string_to_sign("POST", ours) == sdk_string
    assert aliyun_signature.sign("POST", ours, SECRET) == signed["Signature"]
    assert aliyun_signature.verify("POST", signed, SECRET)


def test_signature_matches_the_official_sdk() -> None:
    params = {"Action": "SendSms", "PhoneNumbers": "13800000001,13800000002",
              "SignName": "券派", "TemplateCode": "SMS_1",
              "TemplateParam": json.dumps(VARS, ensure_ascii=False), "Version": "2017-05-25",
              "OutId": "camp 1*x~y"}
    _agrees_with_the_sdk(params)


def test_fast_percent_encoding_matches_rfc3986_quote() -> None:
    import random
    from urllib.parse import quote

    rng = random.Random(7)
    # every ASCII character, text beyond ASCII (two-, three- and four-byte UTF-8: the path
    # that reads UTF-8 bytes as latin-1), and random mixes of both
    samples = ["13800000001,13800000002", "a b*c~d/e+f=g&h%i", "券派 ~*", "".join(
        chr(c) for c in range(128)), '{"name":"张三"}', "é ß ¥ ÿ \u0080", "🎫 券 x", ""]
    samples += ["".join(chr(rng.choice([rng.randrange(128), rng.randrange(128, 0x800),
                                        rng.randrange(0x4E00, 0x9FFF),
                                        rng.randrange(0x1F300, 0x1F6FF)]))
                        for _ in range(40)) for _ in range(200)]
    for value in samples:
        assert aliyun_signature.percent_encode(value) == quote(value, safe="~")


def test_signed_form_body_is_the_signed_query() -> None:
    from urllib.parse import parse_qsl

    params = {"Action": "SendSms", "PhoneNumbers": "13800000001", "SignName": "券派",
              "Timestamp": "2026-11-23T10:00:00Z", "SignatureNonce": "n1"}
    body = aliyun_signature.signed_form(params, SECRET).decode()
    decoded = dict(parse_qsl(body, keep_blank_values=True))
    assert decoded["Signature"] == aliyun_signature.sign("POST", params, SECRET)
    assert {k: v for k, v in decoded.items() if k != "Signature"} == params


def test_system_error_and_stale_timestamp_are_retryable() -> None:
    async def scenario() -> None:
        app = sim.make_app(sim_config(faults=Faults(system_error_share=1.0)))
        async with serving(app) as url, aiohttp.ClientSession() as s:
            results = await AliyunSmsChannel(config=client_config(url), session=s).send(
                [msg(1), msg(2)])
            assert {(r.status, r.code) for r in results} == {
                ("failed_retryable", "isp.SYSTEM_ERROR")}
        # A clock the gateway cannot accept: one fresh retry, then reported as retryable.
        async with serving(sim.make_app(sim_config(timestamp_window_s=-1))) as url, \
                aiohttp.ClientSession() as s:
            results = await AliyunSmsChannel(config=client_config(url), session=s).send(
                [msg(1)])
            assert (results[0].status, results[0].code) == (
                "failed_retryable", "InvalidTimeStamp.Expired")
            assert (await sim_stats(s, url))["errors"]["InvalidTimeStamp.Expired"] == 2
    run(scenario)


def test_timed_out_send_that_went_through_is_not_sent_twice(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        ledger = TimeoutLedger(redis=client)
        faults = Faults(timeout_share=1.0, timeout_hold_s=0.4)
        async with serving(sim.make_app(sim_config(faults=faults))) as url, \
                aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url, timeout_s=0.2), session=s,
                                       timeouts=ledger)
            batch = [msg(1), msg(2), msg(3)]
            first = await channel.send(batch)
            assert {r.code for r in first} == {"timeout"}
            # The gateway was only slow: it accepts the request after the client gave up.
            await wait_for(lambda: _recipients(s, url, 3))
            async with s.post(url + "/_sim/faults", json={"timeout_share": 0}) as resp:
                assert resp.status == 200
            again = await channel.send(batch)  # the dispatcher retries the batch
            assert {r.status for r in again} == {"sent"}
            stats = await sim_stats(s, url)
            assert stats["counts"]["SendSms_requests"] == 1  # found by QuerySendDetails
            assert stats["counts"]["recipients"] == 3
            # A batch that timed out and did NOT go out is sent normally on retry.
            await ledger.mark(channel.plan([msg(7)])[0][0].params["OutId"])
            assert (await channel.send([msg(7)]))[0].status == "sent"
            assert (await sim_stats(s, url))["counts"]["SendSms_requests"] == 2
        await client.aclose()
    run(scenario)


async def _recipients(session: aiohttp.ClientSession, url: str, n: int) -> bool:
    return int((await sim_stats(session, url))["counts"].get("recipients", 0)) >= n


def test_resolve_finds_a_campaigns_earlier_send_and_the_simulator_counts_repeats() -> None:
    async def scenario() -> None:
        async with serving(sim.make_app(sim_config())) as url, aiohttp.ClientSession() as s:
            channel = AliyunSmsChannel(config=client_config(url), session=s)
            await channel.send([msg(1), msg(3)])  # one SendSms, OutId "camp1:<digest>"
            other = structs.replace(msg(2), campaign_id="camp2", idempotency_key="camp2:m2")
            await channel.send([other])
            asked = [msg(1), msg(2), msg(3), structs.replace(msg(4), address="123")]
            assert await channel.resolve(asked) == ["sent", "not_sent", "sent", "unknown"]
            assert "repeats" not in (await sim_stats(s, url))["counts"]
            await channel.send([msg(1)])  # a blind resend: the simulator sees the repeat
            assert (await sim_stats(s, url))["counts"]["repeats"] == 1
    run(scenario)


def test_batch_signature_matches_the_official_sdk() -> None:
    """The second encoding pass is done by replacement: checked against the SDK on values
    holding every character class it must handle (multi-byte, ``%``, ``=``, ``&``, ``+``)."""
    names = ["张三", "李 四", "O'Brien&Co", "100%=满减", "😀+~*", "a/b?c"]
    params = {"Action": "SendBatchSms", "Version": "2017-05-25", "TemplateCode": "SMS_1",
              "PhoneNumberJson": json.dumps([f"1380000000{i}" for i in range(len(names))]),
              "SignNameJson": json.dumps(["券派"] * len(names), ensure_ascii=False),
              "TemplateParamJson": json.dumps([{**VARS, "name": n} for n in names],
                                              ensure_ascii=False),
              "OutId": "c1:%41=&"}
    _agrees_with_the_sdk(params)
