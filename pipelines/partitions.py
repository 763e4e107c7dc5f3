"""Every asset is partitioned by dataset; a dataset folder under `$DUALFORCE_HOME/raw/` is a partition."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import dagster as dg

datasets_partitions = dg.DynamicPartitionsDefinition(name="datasets")


def partitioned_asset_check(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetChecksDefinition]:
    """`dg.asset_check` evaluated per dataset partition.

    A blocking check must see the partition it guards (`context.partition_key`), and in Dagster 1.13 that
    takes `partitions_def` on the check, which Dagster labels preview and warns about at every import. We
    rely on exactly two behaviours of it — one evaluation per materialised partition, and a failed
    blocking check stops the downstream assets of that run — and tests/pipelines pin both against the
    pinned dagster version (a breaking patch release fails them). So the warning is silenced here, for
    this call only, not process-wide.
    """

    def decorate(fn: Callable[..., Any]) -> dg.AssetChecksDefinition:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="Specifying a partitions_def on an AssetCheckSpec",
                category=dg.PreviewWarning,
            )
            return dg.asset_check(partitions_def=datasets_partitions, **kwargs)(fn)

    return decorate
