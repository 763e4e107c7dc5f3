"""`raw_videos`: the files of one dataset folder, as the graph's source asset."""

import dagster as dg

from dualforce_core.data.raw_inventory import scan_raw_folder
from pipelines.partitions import datasets_partitions
from pipelines.resources import DualForceSettings


@dg.asset(partitions_def=datasets_partitions, group_name="data", kinds={"python"})
def raw_videos(context: dg.AssetExecutionContext, settings: DualForceSettings) -> dg.MaterializeResult:
    """Inventory of `$DUALFORCE_HOME/raw/<dataset>/`: what ingestion will read."""
    root = settings.data_root() / "raw" / context.partition_key
    inventory = scan_raw_folder(root, settings.config().data.extensions)
    if not inventory.videos and not inventory.other_files:
        raise dg.Failure(f"dataset folder {root} is missing or empty")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(root)),
            "videos": len(inventory.videos),
            "other_files": len(inventory.other_files),
            "total_mb": round(inventory.total_bytes / 1e6, 2),
        },
        data_version=dg.DataVersion(inventory.fingerprint()),
    )
