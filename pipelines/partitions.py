"""Every asset is partitioned by dataset; a dataset folder under `$DUALFORCE_HOME/raw/` is a partition."""

from __future__ import annotations

import dagster as dg

datasets_partitions = dg.DynamicPartitionsDefinition(name="datasets")
