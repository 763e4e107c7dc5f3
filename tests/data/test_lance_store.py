"""The Lance helpers: create, merge on the key, no-op on empty input, filtered reads."""

from __future__ import annotations

import lance
import pyarrow as pa

from dualforce_core import paths
from dualforce_core.data import lance_store


def _rows(ids: list[str], values: list[int]) -> pa.Table:
    return pa.table({"clip_id": pa.array(ids, pa.string()), "value": pa.array(values, pa.int64())})


def test_missing_table_reads_as_empty() -> None:
    assert lance_store.open_table("nothing") is None
    assert lance_store.table_version("nothing") is None
    assert lance_store.existing_ids("nothing") == set()
    assert lance_store.read_rows("nothing", ["clip_id"]).num_rows == 0


def test_upsert_merges_on_the_key_and_versions_each_write() -> None:
    first = lance_store.upsert("t", _rows(["a", "b"], [1, 2]))
    second = lance_store.upsert("t", _rows(["b", "c"], [20, 30]))
    assert second == first + 1 == lance_store.table_version("t")
    table = lance.dataset(paths.table_uri("t")).to_table().sort_by("clip_id")
    assert table.column("clip_id").to_pylist() == ["a", "b", "c"]
    assert table.column("value").to_pylist() == [1, 20, 30]


def test_empty_upsert_writes_nothing() -> None:
    assert lance_store.upsert("t", _rows([], [])) == 0
    assert lance_store.open_table("t") is None
    version = lance_store.upsert("t", _rows(["a"], [1]))
    assert lance_store.upsert("t", _rows([], [])) == version == lance_store.table_version("t")


def test_filtered_reads_and_ids() -> None:
    lance_store.upsert("t", _rows(["a", "b", "c"], [1, 2, 3]))
    assert lance_store.existing_ids("t", where="value >= 2") == {"b", "c"}
    assert lance_store.read_rows("t", ["value"], "clip_id = 'a'").column("value").to_pylist() == [1]
