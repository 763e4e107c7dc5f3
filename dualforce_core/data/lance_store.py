"""Thin access to the Lance tables under `$DUALFORCE_HOME/lance/`.

Every write is a `merge_insert` on a key column, so re-running a stage updates rows instead of duplicating
them, and every write makes a new table version that downstream stages can record. Lance is not fork-safe:
open datasets in the process that uses them (spawn, never fork, after opening one here).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lance
import pyarrow as pa

from dualforce_core import paths
from dualforce_core.errors import UserError


def sql_str(value: str) -> str:
    """A SQL string literal for Lance filters."""
    return "'" + value.replace("'", "''") + "'"


def in_list(column: str, values: Iterable[str]) -> str:
    """A Lance filter matching any of `values` (at least one) in `column`."""
    return f"{column} IN ({', '.join(sql_str(v) for v in sorted(values))})"


def open_table(name: str, version: int | None = None) -> lance.LanceDataset | None:
    """Table `name` at `version` (default: the latest), or None when it has never been written."""
    uri = paths.table_uri(name)
    if not Path(uri).exists():
        return None
    if version is None:
        return lance.dataset(uri)
    try:
        return lance.dataset(uri, version=version)
    except ValueError:
        raise UserError(
            f"table {name!r} has no version {version} any more (cleaned up?): a resumed run reads the "
            "versions its checkpoint recorded, a pipeline run those its training set recorded; start a "
            "fresh run dir or rebuild the training set instead"
        ) from None


def table_version(name: str) -> int | None:
    dataset = open_table(name)
    return None if dataset is None else int(dataset.version)


def upsert(name: str, rows: pa.Table, key: str = "clip_id") -> int:
    """Create the table or merge `rows` into it on `key`; returns the table version after the write.

    Concurrent writers (several Dagster partitions) are safe: merges retry on commit conflicts, and a
    writer that loses the race to create the table merges into the winner's.
    """
    dataset = open_table(name)
    if rows.num_rows == 0:
        return 0 if dataset is None else int(dataset.version)
    if dataset is None:
        Path(paths.table_uri(name)).parent.mkdir(parents=True, exist_ok=True)
        try:
            return int(lance.write_dataset(rows, paths.table_uri(name), mode="create").version)
        except OSError:
            dataset = open_table(name)
            if dataset is None:
                raise
    (
        dataset.merge_insert(key)
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .execute(rows.select(dataset.schema.names).cast(dataset.schema))
    )
    return int(lance.dataset(paths.table_uri(name)).version)


def read_rows(name: str, columns: list[str] | None = None, where: str | None = None) -> pa.Table:
    """Rows of `name` (optionally a column subset and a SQL filter); an empty table when it does not exist."""
    dataset = open_table(name)
    if dataset is None:
        return pa.table({column: pa.array([], pa.string()) for column in columns or []})
    return dataset.to_table(columns=columns, filter=where)


def existing_ids(name: str, column: str = "clip_id", where: str | None = None) -> set[str]:
    table = read_rows(name, [column], where)
    return {str(value) for value in table.column(column).to_pylist()} if table.num_columns else set()


def delete_rows(name: str, where: str) -> int:
    """Delete the rows of `name` matching `where`; returns how many went (no new version when none match)."""
    dataset = open_table(name)
    if dataset is None:
        return 0
    count = dataset.count_rows(filter=where)
    if count:
        dataset.delete(where)
    return int(count)
