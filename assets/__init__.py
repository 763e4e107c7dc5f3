"""Dagster asset definitions: thin wrappers that call `dualforce_core`, one module per stage."""

from assets.checkpoint import dualforce_checkpoint
from assets.clips import ingest, median_face_size_within_bounds, reject_rate_below_threshold
from assets.evaluation import evaluation
from assets.features import FEATURE_ASSETS
from assets.lora import lora_adapter
from assets.raw_videos import raw_videos
from assets.training_set import TRAINING_SET_CHECKS, training_set

ALL_ASSETS = [raw_videos, ingest, *FEATURE_ASSETS, training_set, dualforce_checkpoint, evaluation]
ALL_CHECKS = [reject_rate_below_threshold, median_face_size_within_bounds, *TRAINING_SET_CHECKS]
# Needs run config (the base checkpoint), so it is not part of the graph that materialises with none.
LORA_ASSETS = [lora_adapter]

__all__ = ["ALL_ASSETS", "ALL_CHECKS", "LORA_ASSETS"]
