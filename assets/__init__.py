"""Dagster asset definitions: thin wrappers that call `dualforce_core`, one module per stage."""

from assets.raw_videos import raw_videos

ALL_ASSETS = [raw_videos]

__all__ = ["ALL_ASSETS", "raw_videos"]
