"""The receipt index on a real Redis: a receipt is taken once, whichever path the take runs."""

from collections.abc import Sequence

import redis.asyncio

from channels.receipts import TAKEN, UNKNOWN, ReceiptIndex, Recipient, Taken
from tests.channels.support import run


def _who(found: Sequence[Taken]) -> list[str]:
    return [r.member_id if isinstance(r, Recipient) else r for r in found]


def test_first_take_answers_from_the_blob_and_takes_once(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        index = ReceiptIndex(redis=client, channel="sms-test")
        await index.remember("biz1", [(f"1380000000{i}", Recipient(f"m{i}", "c1", f"K{i}"))
                                      for i in range(5)])
        # a newer send under the same id replaces the earlier record of that address
        await index.remember("biz1", [("13800000003", Recipient("m3b", "c1", "K3b"))])
        found = await index.take("biz1", ["13800000001", "13899999999", "13800000003",
                                          "13800000001"])
        assert _who(found) == ["m1", UNKNOWN, "m3b", TAKEN]
        assert isinstance(found[0], Recipient) and found[0].coupon_code == "K1"
        # the rest stay to be taken once; those taken stay taken
        assert _who(await index.take("biz1", ["13800000000", "13800000003"])) == ["m0", TAKEN]
        assert _who(await index.take("biz1", ["13800000000", "13800000004"])) == [TAKEN, "m4"]
        # a send recorded after the first take is taken from the hash path
        await index.remember("biz1", [("13800000001", Recipient("m1c", "c2", "K1c"))])
        assert _who(await index.take("biz1", ["13800000001", "13800000002"])) == ["m1c", "m2"]
        assert _who(await index.take("biz1", ["13800000001"])) == [TAKEN]
        await client.aclose()

    run(scenario)


def test_a_take_of_a_large_blob(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        index = ReceiptIndex(redis=client, channel="sms-test")
        phones = [f"139{i:08d}" for i in range(3000)]  # more pairs than one HSET takes here
        await index.remember("big", [(p, Recipient(f"m{i}", "c1", "")) for i, p in
                                     enumerate(phones)])
        assert _who(await index.take("big", phones[:10])) == [f"m{i}" for i in range(10)]
        rest = await index.take("big", phones)
        assert _who(rest) == [TAKEN] * 10 + [f"m{i}" for i in range(10, 3000)]
        await client.aclose()

    run(scenario)
