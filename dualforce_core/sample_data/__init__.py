"""A synthetic talking-face dataset with exact ground truth, for tests, demos and pipeline smoke runs.

`generate_dataset` writes `videos/<name>.mp4` (H.264 25 fps + mono AAC), `videos/<name>.json` (per
frame: mouth opening, head pose, blinks, a FLAME-shaped vector) and `metadata.json` (MOVA's list of
`{"video_path", "caption"}`). The mouth follows the loudness of the speech, so lip-sync metrics and
losses have a known right answer; clips share identities so splits by identity are possible.
"""

from __future__ import annotations

import json
from pathlib import Path

from dualforce_core.errors import UserError
from dualforce_core.sample_data.clip import SyntheticClip, synthesize_clip
from dualforce_core.sample_data.flame import flame_params
from dualforce_core.sample_data.identity import Identity, make_identity
from dualforce_core.sample_data.writer import write_mp4
from dualforce_core.timeline import FPS, SAMPLE_RATE

AUDIO_RATES = (SAMPLE_RATE, 48000)
MIN_SIZE, MAX_SIZE = 64, 1024

__all__ = [
    "AUDIO_RATES",
    "Identity",
    "SyntheticClip",
    "flame_params",
    "generate_dataset",
    "make_identity",
    "synthesize_clip",
]


def _check(clips: int, seconds: float, size: int, audio_rate: int, identities: int) -> None:
    if clips < 1:
        raise UserError(f"--clips must be at least 1, got {clips}")
    if not 0.2 <= seconds <= 600:
        raise UserError(f"--seconds must be between 0.2 and 600, got {seconds}")
    if not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise UserError(
            f"--size must be an even number of pixels in [{MIN_SIZE}, {MAX_SIZE}] (H.264 4:2:0), got {size}"
        )
    if audio_rate not in AUDIO_RATES:
        raise UserError(f"--audio-rate must be one of {', '.join(map(str, AUDIO_RATES))}, got {audio_rate}")
    if identities < 1:
        raise UserError(f"--identities must be at least 1, got {identities}")


def generate_dataset(
    out_dir: str | Path,
    clips: int = 8,
    seed: int = 0,
    seconds: float = 5.0,
    size: int = 256,
    audio_rate: int = SAMPLE_RATE,
    identities: int | None = None,
) -> list[Path]:
    """Write `clips` clips under `out_dir`; clip i shows identity i % identities. Returns the mp4 paths.

    `identities` defaults to max(2, clips // 2), so most identities appear in several clips.
    """
    identities = max(2, clips // 2) if identities is None else identities
    _check(clips, seconds, size, audio_rate, identities)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)

    people = [make_identity(seed, k) for k in range(min(identities, clips))]
    written: list[Path] = []
    metadata: list[dict[str, str]] = []
    for index in range(clips):
        clip = synthesize_clip(seed, index, people[index % identities], seconds, size, audio_rate)
        mp4 = videos / f"{clip.name}.mp4"
        write_mp4(mp4, clip.frames(), size, FPS, clip.speech.audio, audio_rate)
        (videos / f"{clip.name}.json").write_text(json.dumps(clip.sidecar()))
        metadata.append({"video_path": f"videos/{mp4.name}", "caption": clip.caption()})
        written.append(mp4)
    (out / "metadata.json").write_text(json.dumps(metadata, indent=1))
    return written
