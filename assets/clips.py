"""`clips` and `rejects`: ingestion of one dataset folder, and the gates on what it produced: the reject
rate, and (crop_mode=track) the median face size; the curation statistics, with the SyncNet filter's
confidence histogram, are in the `clips` metadata."""

import base64
from collections.abc import Iterator

import dagster as dg

from dualforce_core import paths
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.ingest_summary import curation_summary, face_size_within, ingest_summary
from dualforce_core.data.lance_store import table_version
from dualforce_core.data.previews import contact_sheet
from dualforce_core.weights.registry import WeightsRegistry
from pipelines.failures import user_errors_as_failures
from pipelines.partitions import datasets_partitions, partitioned_asset_check
from pipelines.resources import DualForceSettings


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "clips",
            deps=["raw_videos"],
            kinds={"lance"},
            description="fixed-length A/V clips",
            automation_condition=dg.AutomationCondition.eager(),
        ),
        dg.AssetSpec(
            "rejects",
            deps=["raw_videos"],
            kinds={"lance"},
            description="quarantined inputs",
            automation_condition=dg.AutomationCondition.eager(),
        ),
    ],
    partitions_def=datasets_partitions,
    group_name="data",
)
def ingest(context: dg.AssetExecutionContext, settings: DualForceSettings) -> Iterator[dg.MaterializeResult]:
    """Cut the dataset's videos into clips; a bad file becomes a `rejects` row, never a failed run."""
    dataset = context.partition_key
    with user_errors_as_failures():
        config = settings.config()
        report = ingest_dataset(
            dataset,
            settings.data_root() / "raw" / dataset,
            config.data,
            settings.progress,
            weights=WeightsRegistry.from_config(config.weights),  # SyncNet, for the sync filter
        )
    context.log.info(report.summary())
    summary = ingest_summary(dataset)
    sheet = contact_sheet(dataset, paths.home() / "previews" / dataset / "clips.png")
    preview: dict[str, dg.MetadataValue] = {}
    if sheet is not None:
        encoded = base64.b64encode(sheet.read_bytes()).decode()
        preview = {
            "preview": dg.MetadataValue.md(f"![first clips](data:image/png;base64,{encoded})"),
            "preview_path": dg.MetadataValue.path(str(sheet)),
        }
    curation = curation_summary(dataset)  # crop_mode=track (the preview then shows the aligned crops)
    if curation is not None:
        preview.update(
            {
                "curation": dg.MetadataValue.json(curation.as_dict()),
                "curation_tracks": dg.MetadataValue.int(curation.tracks),
                "curation_cuts": dg.MetadataValue.int(curation.cuts),
                "curation_clips": dg.MetadataValue.int(curation.clips),
                "curation_rejects_by_reason": dg.MetadataValue.json(curation.rejects),
                "face_px": dg.MetadataValue.json(curation.face_px),
            }
        )
        if curation.face_px:
            preview["face_px_median"] = dg.MetadataValue.float(curation.face_px["median"])
        preview["sync_filter"] = dg.MetadataValue.text(report.sync_filter)  # this run: on, or why skipped
        if curation.sync:
            preview["sync_confidence_histogram"] = dg.MetadataValue.md(curation.sync_histogram_markdown())
            preview["sync_verdicts"] = dg.MetadataValue.json(curation.sync_verdicts)
    yield dg.MaterializeResult(
        asset_key="clips",
        metadata={
            "table_uri": dg.MetadataValue.path(paths.table_uri("clips")),
            "lance_version": report.versions.get("clips"),
            "rows": summary.clips,
            "clips_written": report.clips_written,
            "files_ingested": report.files_ingested,
            "files_skipped": report.files_skipped,
            "seconds": round(report.seconds, 2),
            "frames_per_s": round(report.frames_per_s, 1),
            **preview,
        },
    )
    yield dg.MaterializeResult(
        asset_key="rejects",
        metadata={
            "table_uri": dg.MetadataValue.path(paths.table_uri("rejects")),
            "lance_version": table_version("rejects"),
            "rows": summary.files_rejected,
            "rejects_by_reason": dg.MetadataValue.json(summary.rejects),
            "rejected_this_run": report.files_rejected,
            **(
                {"frame_ranges_rejected_by_reason": dg.MetadataValue.json(summary.segment_rejects)}
                if summary.segment_rejects
                else {}
            ),
        },
    )


@partitioned_asset_check(asset="clips", blocking=True)
def reject_rate_below_threshold(
    context: dg.AssetCheckExecutionContext, settings: DualForceSettings
) -> dg.AssetCheckResult:
    """Many rejects mean a systematic problem (wrong codec, no audio): stop before features are computed."""
    summary = ingest_summary(context.partition_key)
    return dg.AssetCheckResult(
        passed=summary.reject_rate <= settings.max_reject_rate and summary.clips > 0,
        metadata={
            "reject_rate": round(summary.reject_rate, 4),
            "threshold": settings.max_reject_rate,
            "clips": summary.clips,
            "rejects_by_reason": dg.MetadataValue.json(summary.rejects),
        },
    )


@partitioned_asset_check(asset="clips", blocking=True)
def median_face_size_within_bounds(
    context: dg.AssetCheckExecutionContext, settings: DualForceSettings
) -> dg.AssetCheckResult:
    """crop_mode=track: a median face size outside [data.face_px_median_min, data.face_px_median_max]
    means the sources changed (resolution, framing): stop before features are computed. Other crop modes
    have no face size and pass."""
    data = settings.config().data
    if data.crop_mode != "track":
        return dg.AssetCheckResult(passed=True, metadata={"skipped": f"data.crop_mode={data.crop_mode}"})
    curation = curation_summary(context.partition_key)
    passed, why = face_size_within(curation, data.face_px_median_min, data.face_px_median_max)
    return dg.AssetCheckResult(
        passed=passed,
        description=why,
        metadata={
            "face_px": dg.MetadataValue.json(curation.face_px if curation else {}),
            "bounds": dg.MetadataValue.json([data.face_px_median_min, data.face_px_median_max]),
        },
    )
