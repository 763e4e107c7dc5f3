from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from dualforce_core.config import load_config
from dualforce_core.features.audio import hubert_features, load_hubert
from dualforce_core.inference.frontend import HubertStreamer
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel

RATE = 16000


def wave(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.2 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def test_windowed_hubert_matches_a_whole_clip_pass_inside_one_window(stand_in_weights: Path) -> None:
    model, normalize = load_hubert(stand_in_weights / "hubert")
    audio = wave(0.6)
    whole = hubert_features(model, audio[None], num_frames=15, normalize=normalize)[0]
    streamer = HubertStreamer(model, normalize, window_s=10.0, context_s=1.0)
    pieces = [streamer.push(audio[i : i + 1600]) for i in range(0, len(audio), 1600)]
    streamed = torch.cat([*pieces, streamer.flush()])
    assert sum(p.shape[0] for p in pieces) == 0  # nothing before the window's right context arrives
    assert streamed.shape == whole.shape == (30, 3, 32)
    torch.testing.assert_close(streamed, whole, rtol=1e-4, atol=1e-4)


def test_windowed_hubert_emits_early_with_short_windows(stand_in_weights: Path) -> None:
    model, normalize = load_hubert(stand_in_weights / "hubert")
    streamer = HubertStreamer(model, normalize, window_s=0.2, context_s=0.1)
    audio = wave(2.0, seed=1)
    counts = [streamer.push(audio[i : i + 4000]).shape[0] for i in range(0, len(audio), 4000)]
    assert counts[0] == 0 and counts[1] > 0 and sum(counts) < 100  # 0.25 s: the first window + context
    assert sum(counts) + streamer.flush().shape[0] == 100  # 2 tokens per 25 fps video frame


def test_stream_yields_frames_while_audio_is_still_arriving(stand_in_weights: Path) -> None:
    config = load_config(
        None,
        [
            f"weights.root={stand_in_weights}",
            "inference.steps=1",
            "inference.hubert_window_s=0.2",
            "inference.hubert_context_s=0.1",
            "inference.cache_frames=2",
        ],
    )
    torch.manual_seed(0)
    generator = StreamingGenerator.from_config(config, DualForceModel.from_preset("tiny").eval())
    fed = []
    audio = wave(3.0, seed=2)

    def live() -> Iterator[np.ndarray]:
        for i in range(0, len(audio), 3200):
            fed.append(i + 3200)
            yield audio[i : i + 3200]

    portrait = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    chunks = []
    for chunk in generator.stream(portrait, live()):
        chunks.append((chunk, min(fed[-1], len(audio))))
    frames = np.concatenate([c.frames for c, _ in chunks])
    assert frames.dtype == np.uint8 and frames.shape == (75, 32, 32, 3)
    assert [c.first_frame for c, _ in chunks] == list(
        np.cumsum([0] + [len(c.frames) for c, _ in chunks[:-1]])
    )
    # Live: the reference frame and the first chunks left before the last audio piece came in.
    assert chunks[1][1] < len(audio) / 2
    assert generator.stats.chunks == 10 and generator.stats.first_chunk_s is not None
    assert generator.stats.cache_bytes > 0
