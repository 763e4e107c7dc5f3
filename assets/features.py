"""The four feature tables of a dataset, one asset each, all computed from `clips` by `dualforce_core.features`.

Each asset is the same thin call: run the extractor (it skips clips already done with the same network
and settings) and report the table. HuBERT, LivePortrait and the VAE run on the compute device and share
the `gpu` concurrency pool; FLAME parameters come from sidecars or a small CPU regressor.
"""

from collections.abc import Callable

import dagster as dg

from dualforce_core import paths
from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import existing_ids, sql_str, table_version
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.stage import ExtractReport
from dualforce_core.features.struct import extract_struct_features
from pipelines.failures import user_errors_as_failures
from pipelines.partitions import datasets_partitions
from pipelines.resources import ComputeSettings, DualForceSettings

Extract = Callable[[str, DualForceConfig, str, bool], ExtractReport | None]


def feature_asset(name: str, extract: Extract, description: str, pool: str | None) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        deps=["clips"],
        partitions_def=datasets_partitions,
        group_name="data",
        pool=pool,
        kinds={"pytorch", "lance"},
        automation_condition=dg.AutomationCondition.eager(),
        description=description,
    )
    def _feature(
        context: dg.AssetExecutionContext, settings: DualForceSettings, compute: ComputeSettings
    ) -> dg.MaterializeResult:
        dataset = context.partition_key
        with user_errors_as_failures():
            report = extract(dataset, settings.config(), compute.device, settings.progress)
        rows = len(existing_ids(name, where=f"dataset = {sql_str(dataset)}"))
        metadata: dict[str, dg.RawMetadataValue] = {
            "table_uri": dg.MetadataValue.path(paths.table_uri(name)),
            "lance_version": table_version(name),
            "rows": rows,
        }
        if report is None:
            metadata["skipped"] = "data.flame_extractor=none: no FLAME rows, the FLAME loss is off"
        else:
            context.log.info(report.summary())
            metadata.update(
                written=report.written,
                already_done=report.skipped,
                without_source=report.without_source,
                clips_per_s=round(report.clips_per_s, 3),
                seconds=round(report.seconds, 2),
                extractor_id=report.extractor_id,
            )
        return dg.MaterializeResult(metadata=metadata)

    return _feature


audio_features = feature_asset(
    "audio_features", extract_audio_features, "HuBERT hidden states per clip (50 Hz, fp16)", "gpu"
)
struct_features = feature_asset(
    "struct_features", extract_struct_features, "LivePortrait motion per frame + dataset statistics", "gpu"
)
flame_params = feature_asset(
    "flame_params", extract_flame_params, "FLAME expression/jaw/pose per frame (optional)", None
)
video_latents = feature_asset(
    "video_latents", extract_video_latents, "normalised Wan-VAE latents + reference latent", "gpu"
)

FEATURE_ASSETS = [audio_features, struct_features, flame_params, video_latents]
