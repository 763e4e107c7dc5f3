"""Ground-truth clips decoded from the `clips` table, one at a time so a large split never sits in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dualforce_core.data import lance_store, media
from dualforce_core.data.split import SplitClip
from dualforce_core.errors import UserError
from dualforce_core.timeline import FPS, SAMPLE_RATE

_COLUMNS = ["clip_id", "fps", "video", "audio", "audio_sample_rate"]


@dataclass(frozen=True)
class EvalClip:
    clip_id: str
    identity: str
    frames: np.ndarray  # uint8 RGB [T, H, W, 3]
    audio: np.ndarray  # float32 mono [N] at 16 kHz
    fps: int

    @property
    def reference(self) -> np.ndarray:
        """The portrait a generator starts from: the clip's first frame."""
        return self.frames[0]


def load_clip(clip: SplitClip) -> EvalClip:
    table = lance_store.read_rows("clips", _COLUMNS, f"clip_id = '{clip.clip_id}'")
    if table.num_rows != 1:
        raise UserError(f"clip {clip.clip_id} is no longer in the clips table (found {table.num_rows} rows)")
    row = table.to_pylist()[0]
    frames = media.decode_video(row["video"])
    audio, rate = media.decode_audio(row["audio"])
    if rate != SAMPLE_RATE or row["fps"] != FPS or frames.shape[0] == 0:
        raise UserError(
            f"clip {clip.clip_id} has {frames.shape[0]} frames at {row['fps']} fps and audio at {rate} Hz; "
            f"the metrics need {FPS} fps video and {SAMPLE_RATE} Hz audio (re-ingest with the default data.fps "
            "and data.audio_sample_rate)"
        )
    return EvalClip(clip.clip_id, clip.identity, frames, np.asarray(audio, np.float32), int(row["fps"]))


def iter_clips(clips: list[SplitClip]) -> Iterator[EvalClip]:
    for clip in clips:
        yield load_clip(clip)
