"""Tags on a real Redis: bitmaps for integer ids, a set for others, atomic edits; tag CSVs in
UTF-8, UTF-8 with a BOM and GBK; bad files refused whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from segmentation.errors import InvalidInput
from segmentation.tag_csv import read_tag_csv
from segmentation.tags import MemoryTags, RedisTags, TagStore


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> TagStore:
    if request.param == "memory":
        return MemoryTags()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisTags(client=client, merchant_id="m1")


def test_add_remove_replace_and_masks(store: TagStore) -> None:
    store.add("高价值", [10_000_001, "10000005", "VIP-abc", 0])
    store.add("高价值", [10_000_002])
    info = store.remove("高价值", ["10000005"])
    assert info.count == 4 and info.kind == "manual"
    got = store.members("高价值")
    assert got.ints.tolist() == [0, 10_000_001, 10_000_002] and got.others == {"VIP-abc"}
    ids = pd.Series([0, 10_000_001, 10_000_003, 10_000_002])
    assert got.mask(ids).tolist() == [True, True, False, True]
    assert got.mask(pd.Series(["VIP-abc", "10000001", "x"])).tolist() == [True, True, False]
    store.replace("活跃", [1, 2, 3], rules="rules.yaml", segment="active")
    assert [(t.name, t.kind, t.count) for t in store.tags()] == [
        ("活跃", "rule", 3), ("高价值", "manual", 4)]
    store.replace("活跃", [])
    assert len(store.members("活跃")) == 0
    assert len(store.members("unknown")) == 0
    with pytest.raises(InvalidInput):
        store.add("bad tag", [1])


def test_a_million_members_bitmap_is_compact(redis_client: redis.Redis) -> None:
    store = RedisTags(client=redis_client, merchant_id="m1")
    ids = np.arange(10_000_001, 11_000_001, 2)  # 500,000 members of a million-id range
    store.replace("half", ids.tolist())
    # one bit per id of the range from the smallest: 125 KB, not 11M bits from 0
    used = redis_client.memory_usage("qp:{m1}:tag:half:bits")
    assert used is not None and used < 200_000
    assert np.array_equal(store.members("half").ints, ids)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_tag_csv_in_utf8_bom_and_gbk(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "tags.csv"
    path.write_bytes("会员ID,标签\n10000001,高价值\n10000002,咖啡爱好者\n\n".encode(encoding))
    assert read_tag_csv(path) == [("10000001", "高价值"), ("10000002", "咖啡爱好者")]


@pytest.mark.parametrize(("text", "problem"), [
    ("id,name\n1,a\n", "line 1"),
    ("member_id,tag\n1,a\n,b\n", "line 3"),
    ("member_id,tag\n1,has space\n", "line 2"),
])
def test_bad_tag_csv_names_the_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "tags.csv"
    path.write_text(text, "utf-8")
    with pytest.raises(InvalidInput) as error:
        read_tag_csv(path)
    assert problem in str(error.value)


def test_undecodable_tag_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tags.csv"
    path.write_bytes(b"member_id,tag\n1,\xff\xff\n")
    with pytest.raises(InvalidInput) as error:
        read_tag_csv(path)
    assert "tags.csv" in str(error.value)
