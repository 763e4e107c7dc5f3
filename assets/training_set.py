"""`training_set`: the clips every required feature table has, and the blocking checks that gate training.

The checks are blocking: a failed one stops `dualforce_checkpoint` in the same run, so a model is never
trained on clips with missing, non-finite or inconsistent features. They vet the Lance versions the
manifest recorded, and training reads exactly those (`launch_training` passes the manifest on).
"""

import hashlib
import json

import dagster as dg

from dualforce_core.data.tables import FEATURES
from dualforce_core.data.training_set import build_training_set, manifest_path, read_training_set
from dualforce_core.features.checks import (
    missing_features,
    nonfinite_features,
    shape_mismatches,
)
from pipelines.partitions import datasets_partitions, partitioned_asset_check

MAX_LISTED = 20  # offending clips named in a check's metadata


@dg.asset(
    deps=[table.name for table in FEATURES],
    partitions_def=datasets_partitions,
    group_name="training",
    kinds={"lance"},
)
def training_set(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The joined, versioned clip list training will read (manifest under `$DUALFORCE_HOME/training_sets/`)."""
    manifest = build_training_set(context.partition_key)
    versions = json.dumps(manifest.versions, sort_keys=True)
    return dg.MaterializeResult(
        metadata={
            "manifest": dg.MetadataValue.path(str(manifest_path(manifest.dataset))),
            "clips": len(manifest.clip_ids),
            "clips_with_flame": manifest.with_flame,
            "missing_by_table": dg.MetadataValue.json({t: len(ids) for t, ids in manifest.missing.items()}),
            "frames": manifest.frames,
            "hours": round(manifest.seconds / 3600, 4),
            "latent_shapes": dg.MetadataValue.json(manifest.latent_shapes),
            "lance_versions": dg.MetadataValue.json(manifest.versions),
            **{f"lance_version/{table}": version for table, version in manifest.versions.items()},
        },
        data_version=dg.DataVersion(hashlib.sha256(versions.encode()).hexdigest()[:16]),
    )


def _vetted_versions(dataset: str) -> dict[str, int] | None:
    """The versions the training set recorded, so the checks vet what training will read."""
    path = manifest_path(dataset)
    return read_training_set(path).versions if path.is_file() else None


def _by_table(found: dict[str, list[str]]) -> dict[str, dg.MetadataValue]:
    return {
        "count_by_table": dg.MetadataValue.json({t: len(ids) for t, ids in found.items()}),
        "examples": dg.MetadataValue.json({t: ids[:MAX_LISTED] for t, ids in found.items()}),
    }


@partitioned_asset_check(asset=training_set, blocking=True)
def every_clip_has_every_feature(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    missing = missing_features(context.partition_key, _vetted_versions(context.partition_key))
    return dg.AssetCheckResult(passed=not missing, metadata=_by_table(missing))


@partitioned_asset_check(asset=training_set, blocking=True)
def features_are_finite(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    bad = nonfinite_features(context.partition_key, _vetted_versions(context.partition_key))
    return dg.AssetCheckResult(passed=not bad, metadata=_by_table(bad))


@partitioned_asset_check(asset=training_set, blocking=True)
def shapes_and_lengths_agree(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    problems = shape_mismatches(context.partition_key, _vetted_versions(context.partition_key))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"mismatches": len(problems), "examples": dg.MetadataValue.json(problems[:MAX_LISTED])},
    )


TRAINING_SET_CHECKS = [every_clip_has_every_feature, features_are_finite, shapes_and_lengths_agree]
