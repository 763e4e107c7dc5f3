"""A real `dualforce serve` app on loopback: uvicorn in a thread, tiny random model, stand-in weights."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dualforce_core.config import load_config
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel
from dualforce_core.sample_data.speech import synthesize_speech
from dualforce_core.serve.background import BackgroundServer, free_port, serve_in_background
from dualforce_core.serve.config import ServeLimits
from dualforce_core.weights import init_random

torch.set_num_threads(1)  # tiny shapes; the machine is shared

SIZE = 32
LIVE_OVERRIDES = [
    f"inference.size={SIZE}",
    "inference.steps=1",
    "inference.cache_frames=4",
    "inference.hubert_window_s=0.32",
    "inference.hubert_context_s=0.16",
]


__all__ = ["LiveServer", "free_port"]

LiveServer = BackgroundServer


def start_server(generator: StreamingGenerator, limits: ServeLimits, token: str | None = None) -> LiveServer:
    return serve_in_background(generator, limits, token)


@pytest.fixture(scope="session")
def serve_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve_weights")
    init_random(root, names=["wan_vae", "hubert", "liveportrait_motion"])
    return root


@pytest.fixture(scope="session")
def generator(serve_weights: Path) -> StreamingGenerator:
    config = load_config(None, [f"weights.root={serve_weights}", *LIVE_OVERRIDES])
    torch.manual_seed(0)
    return StreamingGenerator.from_config(config, DualForceModel.from_preset("tiny").eval())


@pytest.fixture(scope="module")
def server(generator: StreamingGenerator) -> Iterator[LiveServer]:
    live = start_server(generator, ServeLimits(max_sessions=4, max_message_bytes=64_000, max_queue_s=20.0))
    yield live
    live.stop()


def portrait_png(seed: int = 0, size: int = 48) -> bytes:
    rgb = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like audio (voiced syllables, formants, pauses) at 16 kHz."""
    return synthesize_speech(np.random.default_rng(seed), seconds, 16000, f0=140.0, formant_scale=1.0).audio
