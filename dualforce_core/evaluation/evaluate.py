"""`evaluate`: generate every held-out clip, score it against the ground truth, write and log the report.

The library entry point behind `dualforce evaluate` and the Dagster evaluation asset. A report lives in
`$DUALFORCE_HOME/reports/<name>/` (re-using a name replaces that report) and is logged to MLflow as one
run (or into `MLFLOW_RUN_ID` when a launcher set it), metrics as `eval/<metric>`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlib
import numpy as np

from dualforce_core import paths
from dualforce_core.config import DualForceConfig
from dualforce_core.data import lance_store
from dualforce_core.data.split import SplitClip, dataset_clips, select_split
from dualforce_core.errors import UserError
from dualforce_core.evaluation import report as report_files
from dualforce_core.evaluation.clips import iter_clips
from dualforce_core.evaluation.config import EvalConfig
from dualforce_core.evaluation.generation import Generator, checkpoint_generator, generate_clip
from dualforce_core.evaluation.scoring import HEADLINE, MetricAccumulator
from dualforce_core.metrics import DlibFaces, MetricNetworks, protocol
from dualforce_core.metrics.dlib_faces import WEIGHT_NAMES
from dualforce_core.timeline import FPS, SAMPLE_RATE
from dualforce_core.training.tracking import RunLogger
from dualforce_core.weights import WeightsRegistry

REPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
GENERATION_WEIGHTS = ("wan_vae", "hubert", "liveportrait_motion")
SYNC_LANDMARKS = WEIGHT_NAMES["landmarks68"]
"""The dlib model file whose landmarks place `eval.sync_crop=aligned` (its name in a report's `weights`)."""


@dataclass
class EvalReport:
    metrics: dict[str, float]  # NaN where a metric could not be computed (see `notes`)
    report_dir: Path
    markdown: str
    record: dict[str, Any] = field(default_factory=dict)  # the content of report.json
    mlflow_run_id: str | None = None

    @property
    def stand_in_weights(self) -> bool:
        return bool(self.record.get("stand_in_weights"))


def _identity_rule(config: EvalConfig) -> str:
    if config.identity == "source_folder":
        return f"source_folder (depth {config.identity_folder_depth})"
    return config.identity


def source_label(checkpoint: str | Path | None, generator: Generator | None, ground_truth_only: bool) -> str:
    """What produced the videos, for the report's name: `ground-truth`, a baseline's name, `<run>-<model dir>`."""
    if ground_truth_only:
        return "ground-truth"
    if generator is not None:
        return getattr(generator, "__name__", "generator").removesuffix("_generator")
    path = Path(str(checkpoint)).resolve()
    return f"{path.parent.name}-{path.name}"


def _generation_weights(registry: WeightsRegistry) -> dict[str, dict[str, Any]]:
    """Path, sha256 and stand-in flag of each network the sampler loaded (LivePortrait is optional)."""
    return {
        name: {
            "path": str(registry.location(name)),
            "sha256": registry.fingerprint(name),
            "stand_in": registry.is_stand_in(name),
        }
        for name in GENERATION_WEIGHTS
        if registry.location(name).exists()
    }


def _report_dir(name: str) -> Path:
    """`reports/<name>/`, checked before any work: an earlier report may be replaced, nothing else."""
    if not REPORT_NAME.match(name):
        raise UserError(f"report name {name!r} must be letters, digits, '_', '-' or '.'")
    target = paths.reports_dir() / name
    if target.exists() and not (target / report_files.REPORT_JSON).is_file() and any(target.iterdir()):
        raise UserError(f"{target} exists and is not an evaluation report; choose another --name")
    return target


def _fresh(report_dir: Path) -> None:
    shutil.rmtree(report_dir, ignore_errors=True)
    (report_dir / report_files.SAMPLES_DIR).mkdir(parents=True)


def _selected_clips(dataset: str, split: str, limit: int | None, config: EvalConfig) -> list[SplitClip]:
    clips = dataset_clips(dataset, config)
    selected = select_split(clips, split, config.test_fraction)
    if not selected:
        identities = len({clip.identity for clip in clips})
        raise UserError(
            f"split {split!r} of dataset {dataset!r} is empty: its {len(clips)} clips show {identities} "
            f"identit{'y' if identities == 1 else 'ies'} (eval.identity={config.identity}), and a held-out "
            f"split needs at least 2; ingest more people with `dualforce ingest --dataset {dataset} --src "
            "FOLDER`, or evaluate --split all"
        )
    return selected[:limit] if limit else selected


@dataclass
class _Scored:
    scorer: MetricAccumulator
    samples: list[str]  # side-by-side videos, relative to the report dir
    strips: list[str]  # their frame strips (PNG), relative to the report dir
    resolution: tuple[int, ...]  # ground truth (height, width)
    generated_resolutions: set[tuple[int, ...]]


def _score(
    selected: list[SplitClip], generator: Generator | None, scorer: MetricAccumulator, report_dir: Path
) -> _Scored:
    """Generate (unless ground-truth-only) and score clip by clip, writing the first side-by-side videos."""
    scored = _Scored(scorer, [], [], (), set())
    for clip in iter_clips(selected):
        generated = None
        if generator is not None:
            with scorer.timed("generate"):
                generated = generate_clip(generator, clip.reference, clip.audio)
            scored.generated_resolutions.add(generated.shape[1:3])
        scorer.add(clip, generated)
        if len(scored.samples) < scorer.config.samples:
            sample = f"{report_files.SAMPLES_DIR}/{clip.clip_id}.mp4"
            right = clip.frames if generated is None else generated
            report_files.write_side_by_side(
                report_dir / sample, clip.frames, right, clip.audio, clip.fps, SAMPLE_RATE
            )
            strip = f"{report_files.SAMPLES_DIR}/{clip.clip_id}_strip.png"
            report_files.write_frame_strip(report_dir / strip, clip.frames, right)
            scored.samples.append(sample)
            scored.strips.append(strip)
        scored.resolution = clip.frames.shape[1:3]
    return scored


def _sync_crop(config: EvalConfig, faces: DlibFaces | None, scorer: MetricAccumulator) -> dict[str, Any]:
    """SyncNet's crop: Sync-C/D of two reports compare only when this matches, so the report records it."""
    if faces is None:
        return {"mode": "box"}
    return {
        "box_fallback_videos": scorer.sync_box_fallbacks,
        "mode": "aligned",
        "align": config.sync_align.model_dump(mode="json"),
        "smoothing": config.sync_smoothing.model_dump(mode="json"),
        "detector": f"dlib {dlib.__version__} HOG frontal detector, ×2 upsampled only when it finds none, "
        "largest face",
        "landmarks": {SYNC_LANDMARKS: faces.files[SYNC_LANDMARKS]},
    }


def _protocol(
    selected: list[SplitClip],
    scored: _Scored,
    config: EvalConfig,
    weights: dict[str, dict[str, Any]],
    sync_crop: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to reproduce the numbers or to tell that two reports are not comparable."""
    clip_ids = sorted(clip.clip_id for clip in selected)
    return {
        "clips": len(selected),
        "clip_ids": clip_ids,
        "clip_list_sha256": hashlib.sha256("\n".join(clip_ids).encode()).hexdigest(),
        "identities": len({clip.identity for clip in selected}),
        "identity_rule": _identity_rule(config),
        "test_fraction": config.test_fraction,
        "clips_table_version": lance_store.table_version("clips"),
        "resolution": list(scored.resolution),
        "generated_resolution": [list(r) for r in sorted(scored.generated_resolutions)],
        "frames_per_clip": sorted({c.frames for c in scored.scorer.clips}),
        "fps": FPS,
        "audio_sample_rate": SAMPLE_RATE,
        "sync_offsets": config.sync_offsets,
        "sync_crop": sync_crop,
        "fvd_clip_frames": config.fvd_clip_frames,
        "fvd_clips": scored.scorer.fvd_clips(),
        "identity_network": config.identity_network,
        "landmarks": config.landmarks,
        "face_box": "none: clips are stored as face-centred squares, so every crop is the whole frame",
        "definitions": protocol(
            config.sync_offsets,
            config.fvd_clip_frames,
            config.identity_network,
            config.landmarks,
            config.sync_crop,
        ),
        "weights": weights,
    }


def _face_notes(metrics: dict[str, float], config: EvalConfig) -> list[str]:
    """What dlib could not see: frames without a face are left out of the numbers that need one."""
    if not np.isfinite(metrics["gt_face_rate"]):  # dlib did not run
        return []
    uses = " and ".join(
        name
        for name, used in (
            ("CSIM/ACD", config.identity_network == "dlib"),
            ("LMD and the landmark mouth-audio r", config.landmarks),
        )
        if used
    )
    if metrics["face_rate"] == metrics["gt_face_rate"] == 1.0:
        return [f"dlib found a face in every frame ({uses})"]
    return [
        f"dlib found a face in {metrics['face_rate']:.0%} of generated and {metrics['gt_face_rate']:.0%} of "
        f"ground-truth frames (mean over clips); {uses} use only the frames and clips with a face"
    ]


def _sync_crop_params(sync_crop: dict[str, Any]) -> dict[str, str]:
    """The crop as MLflow params, so runs can be filtered by it."""
    if sync_crop["mode"] == "box":
        return {"sync_crop": "box"}
    return {
        "sync_crop": "aligned",
        "sync_align": json.dumps(sync_crop["align"], sort_keys=True),
        "sync_smoothing": json.dumps(sync_crop["smoothing"], sort_keys=True),
        "sync_landmarks_sha256": sync_crop["landmarks"][SYNC_LANDMARKS]["sha256"],
    }


def _log_to_mlflow(logger: RunLogger, record: dict[str, Any], report_dir: Path) -> None:
    finite = {f"eval/{k}": v for k, v in record["metrics"].items() if v is not None and np.isfinite(v)}
    logger.log_step(0, finite, to_mlflow=True)
    logger.log_params(
        {
            "dataset": record["dataset"],
            "split": record["split"],
            "mode": record["mode"],
            "checkpoint": record["checkpoint"],
            "clips": record["protocol"]["clips"],
            "clip_list_sha256": record["protocol"]["clip_list_sha256"],
            **_sync_crop_params(record["protocol"]["sync_crop"]),
        }
    )
    logger.set_tags({"dualforce.kind": "evaluation", "stand_in_weights": record["stand_in_weights"]})
    logger.log_artifacts(report_dir, "report")


def evaluate(
    checkpoint: str | Path | None,
    dataset: str,
    config: DualForceConfig,
    *,
    split: str | None = None,
    limit: int | None = None,
    name: str | None = None,
    ground_truth_only: bool = False,
    generator: Generator | None = None,
) -> EvalReport:
    """Score `dataset`'s `split` and write the report; see the module doc.

    The video comes from `generator` when given (a baseline such as `still_generator`), otherwise from
    the streaming sampler on `checkpoint`; `ground_truth_only` scores the ground truth against itself.
    """
    eval_config = config.eval
    split = split or eval_config.split
    limit = eval_config.limit if limit is None else limit
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, got {limit}")
    mode = "ground_truth_only" if ground_truth_only else "baseline" if generator is not None else "checkpoint"
    if mode == "checkpoint":
        if checkpoint is None:
            raise UserError("a checkpoint is needed to generate videos (or use --ground-truth-only)")
        if not Path(checkpoint).exists():
            raise UserError(
                f"checkpoint {checkpoint} does not exist; pass a saved model directory (config.json + "
                "model.safetensors), e.g. the `final/` folder of a `dualforce train` run"
            )
    label = source_label(checkpoint, generator, ground_truth_only)
    report_dir = _report_dir(name or f"{dataset}-{split}-{label}")
    selected = _selected_clips(dataset, split, limit, eval_config)
    registry = WeightsRegistry.from_config(config.weights)
    networks = MetricNetworks.from_registry(
        registry,
        identity_network=eval_config.identity_network,
        landmarks=eval_config.landmarks,
        dlib_models=eval_config.dlib_models,
    )
    weights = dict(networks.weights)
    sync_faces = None
    if eval_config.sync_crop == "aligned":  # loaded before any generation, so missing dlib files fail first
        sync_faces = networks.dlib or DlibFaces(eval_config.dlib_models)
        weights[SYNC_LANDMARKS] = sync_faces.files[SYNC_LANDMARKS]
    if mode == "checkpoint":
        generator = checkpoint_generator(Path(str(checkpoint)), config)
        weights |= _generation_weights(registry)
    elif mode == "ground_truth_only":
        generator = None
    _fresh(report_dir)

    scored = _score(selected, generator, MetricAccumulator(networks, eval_config), report_dir)
    metrics = scored.scorer.metrics()
    notes = []
    if not np.isfinite(metrics["fvd"]):
        notes.append(
            f"FVD needs at least 2 clips of {eval_config.fvd_clip_frames} frames on each side (one per video "
            f"of at least {eval_config.fvd_clip_frames} frames); this split has {scored.scorer.fvd_clips()}"
        )
    notes += _face_notes(metrics, eval_config)
    if scored.scorer.sync_box_fallbacks:
        notes.append(
            f"sync_crop=aligned: dlib found no face in {scored.scorer.sync_box_fallbacks} video(s) (ground truth "
            "and generated counted apart); SyncNet scored their box crop instead"
        )
    if mode == "ground_truth_only":
        zeros = "FID, FVD, ACD and LMD" if eval_config.landmarks else "FID, FVD and ACD"
        notes.append(f"ground-truth-only: the ground truth is scored against itself, so {zeros} are 0")
    record: dict[str, Any] = {
        "name": report_dir.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "source": label,
        "checkpoint": None if mode != "checkpoint" else str(Path(str(checkpoint)).resolve()),
        "dataset": dataset,
        "split": split,
        "stand_in_weights": any(entry["stand_in"] for entry in weights.values()),
        "metrics": {k: (v if np.isfinite(v) else None) for k, v in metrics.items()},
        "headline": list(HEADLINE),
        "notes": notes,
        "seconds_total": dict(scored.scorer.seconds),
        "seconds_per_clip": scored.scorer.seconds_per_clip(),
        "protocol": _protocol(
            selected, scored, eval_config, weights, _sync_crop(eval_config, sync_faces, scored.scorer)
        ),
        "clips": [c.as_dict() for c in scored.scorer.clips],
        "samples": scored.samples,
        "strips": scored.strips,
        "plot": report_files.PLOT,
        "mlflow_run_id": None,
    }
    logger = RunLogger(report_dir, True, eval_config.mlflow, eval_config.experiment, report_dir.name)
    try:
        record["mlflow_run_id"] = logger.run_id
        markdown = report_files.write_report(report_dir, record)
        _log_to_mlflow(logger, record, report_dir)
    finally:
        logger.close()
    return EvalReport(metrics, report_dir, markdown, record, logger.run_id)
