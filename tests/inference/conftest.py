"""Tiny shared fixtures for the streaming-inference tests: a random tiny model, VAE and HuBERT stand-ins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.models import DualForceModel
from dualforce_core.weights import init_random
from tests.models.awake import wake

# Tiny shapes: intra-op threads only add contention on the shared CPU.
torch.set_num_threads(1)


@pytest.fixture
def tiny_model() -> DualForceModel:
    torch.manual_seed(0)
    return wake(DualForceModel.from_preset("tiny")).eval()


@pytest.fixture
def tiny_vae() -> AutoencoderKLWan:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    return AutoencoderKLWan(
        base_dim=8,
        z_dim=16,
        latents_mean=rng.normal(0, 0.1, 16).tolist(),
        latents_std=rng.uniform(0.5, 1.5, 16).tolist(),
    ).eval()


@pytest.fixture(scope="session")
def stand_in_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random stand-ins of the networks generation loads (VAE, HuBERT, LivePortrait), written once."""
    root = tmp_path_factory.mktemp("weights")
    init_random(root, names=["wan_vae", "hubert", "liveportrait_motion"])
    return root
