"""`dualforce weights fit` / `install-fitted`: stand-ins that carry the face, in the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan

from dualforce_core.cli.main import main
from dualforce_core.data.config import DataConfig
from dualforce_core.data.ingest import ingest_dataset
from dualforce_core.data.media import decode_video
from dualforce_core.features.latents import load_vae
from dualforce_core.features.struct_sidecar import sidecar_tracks
from dualforce_core.metrics.mouth import MouthReader, fit_mouth_reader, pearson
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import WeightsRegistry, init_random
from dualforce_core.weights.fit_data import split_clips
from dualforce_core.weights.fit_vae import (
    FIT_REPORT,
    VaeFitSettings,
    _window,
    decode_unclamped,
    fit_vae,
    latent_balanced_mse,
    mean_psnr,
    psnr_db,
)
from dualforce_core.weights.fitted import FITTED_COMPONENTS

DATASET = "faces"


@pytest.fixture
def ingested(dualforce_home: Path) -> str:
    src = dualforce_home / "raw" / DATASET
    generate_dataset(src, clips=6, seed=0, seconds=0.4, size=64, identities=6)
    ingest_dataset(
        DATASET,
        src,
        DataConfig(clip_frames=9, clip_stride=9, size=32, video_preset="ultrafast"),
        progress=False,
    )
    return DATASET


def test_unclamped_decode_is_the_vae_decode_inside_the_range() -> None:
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=8, z_dim=16).eval()
    z = torch.randn(1, 16, 3, 4, 4) * 0.1
    with torch.no_grad():
        clamped, raw = vae.decode(z).sample, decode_unclamped(vae, z)
    assert raw.shape == clamped.shape == (1, 3, 9, 32, 32)
    torch.testing.assert_close(raw.clamp(-1, 1), clamped, atol=0, rtol=0)  # same kernels, same order


def test_motion_crops_land_on_what_moves() -> None:
    clip = np.full((9, 64, 64, 3), 90, np.uint8)
    clip[:, 40:48, 16:24] = (np.arange(9) * 25)[
        :, None, None, None
    ]  # a blinking 8-px patch, nothing else moves
    rng = np.random.default_rng(0)
    for _ in range(20):
        window = _window(clip, 5, 32, rng, at_motion=True)
        assert window.shape == (5, 32, 32, 3)
        assert np.ptp(window.astype(int), axis=0).max() > 0  # the patch is inside every crop
    uniform = [np.ptp(_window(clip, 5, 32, rng).astype(int), axis=0).max() > 0 for _ in range(40)]
    assert 0 < sum(uniform) < 40  # anywhere-crops miss it sometimes: the reason for --motion-crops


def test_latent_balanced_mse_weighs_the_first_latent_like_the_others() -> None:
    error = torch.zeros(1, 3, 9, 4, 4)
    error[:, :, 0] = 1.0  # frame 0: one latent on its own
    first = latent_balanced_mse(error).item()
    error = torch.zeros(1, 3, 9, 4, 4)
    error[:, :, 1:5] = 1.0  # frames 1-4: the next latent
    second = latent_balanced_mse(error).item()
    assert first == pytest.approx(second, rel=1e-6)  # fp32 means of exact small multiples
    assert latent_balanced_mse(torch.ones(1, 3, 1, 4, 4)).item() == pytest.approx(1.0, rel=1e-6)


def test_fit_writes_a_loadable_wan_vae_with_its_latent_statistics(ingested: str, tmp_path: Path) -> None:
    settings = VaeFitSettings(base_dim=8, steps=3, batch_size=1, window_frames=5, eval_clips=2)
    train = [c.frames for c in split_clips(ingested, "train", 8)]
    heldout = [c.frames for c in split_clips(ingested, "test", 2)]
    report = fit_vae(ingested, train, heldout, tmp_path / "vae", settings, log=lambda _: None)
    assert report.steps == 3 and report.train_clips > 0 and report.heldout_clips > 0
    assert np.isfinite(report.heldout_psnr_db) and report.heldout_psnr_db > 0
    vae = load_vae(tmp_path / "vae")  # the real loader
    assert isinstance(vae, AutoencoderKLWan) and vae.config["z_dim"] == 16
    assert len(vae.config["latents_mean"]) == len(vae.config["latents_std"]) == 16
    assert json.loads((tmp_path / "vae" / FIT_REPORT).read_text())["stand_in"] == "fitted"


def test_psnr_of_identical_and_offset_images() -> None:
    a = np.full((2, 4, 4, 3), 100, np.uint8)
    assert psnr_db(a, a) == float("inf")
    assert psnr_db(a, a + 1) == pytest.approx(20 * np.log10(255.0), rel=1e-12)  # MSE 1


def test_fit_on_a_missing_or_empty_dataset_is_one_clear_error(
    dualforce_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["weights", "fit", "--out", str(tmp_path / "vae"), "--steps", "1"]
    assert main([*args, "--dataset", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "no clips of dataset 'nowhere'" in err and "Traceback" not in err
    empty = dualforce_home / "raw" / "empty"
    empty.mkdir(parents=True)
    ingest_dataset("empty", empty, DataConfig(), progress=False)
    assert main([*args, "--dataset", "empty"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "'empty'" in err and "Traceback" not in err
    assert not (tmp_path / "vae").exists()


def test_fit_refuses_to_overwrite_a_vae_that_is_not_a_stand_in(
    ingested: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "weights" / "wan_vae"
    AutoencoderKLWan(base_dim=8, z_dim=16).save_pretrained(real)  # no STAND-INS.txt: looks real
    assert main(["weights", "fit", "--dataset", ingested, f"weights.root={tmp_path / 'weights'}"]) == 2
    assert "not a stand-in" in capsys.readouterr().err


def test_mouth_reader_learns_a_visible_quantity_and_round_trips(tmp_path: Path) -> None:
    """A bright bar whose height is the target: learnable from pixels; held-out r is measured on new bars."""
    rng = np.random.default_rng(0)

    def bars(n: int) -> tuple[np.ndarray, np.ndarray]:
        height = rng.uniform(0, 1, n)
        frames = np.zeros((n, 64, 64, 3), np.uint8)
        for i, h in enumerate(height):
            frames[i, 40 : 40 + 1 + int(16 * h), 24:40] = 255
        return frames, height

    reader = fit_mouth_reader([bars(256)], [bars(64)], steps=150, batch_size=32)
    assert reader.heldout_r > 0.9  # a 17-level bar height: any working regressor reads it
    reader.save(tmp_path / "probe.safetensors")
    loaded = MouthReader.load(tmp_path / "probe.safetensors")
    frames, height = bars(32)
    assert loaded.heldout_r == reader.heldout_r
    np.testing.assert_array_equal(
        loaded.opening(frames), reader.opening(frames)
    )  # same weights, same kernels
    assert pearson(loaded.opening(frames), height) > 0.9


# The shipped VAE reads 21.0-23.0 dB on one-second clips of three people it never saw (seeds 1234, 99, 5);
# a random stand-in reads 13.7 dB. The floor sits between: it catches a shipped file that stopped carrying
# the face, not a fraction of a dB.
SHIPPED_VAE_FLOOR_DB = 18.0
SHIPPED_PROBE_FLOOR_R = 0.8  # measured 0.96-0.98 on those clips, 0.89 over 32 held-out clips


def test_install_fitted_gives_a_vae_and_a_probe_that_read_a_face_they_never_saw(
    dualforce_home: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "weights"
    init_random(weights)
    assert main(["weights", "install-fitted", "--out", str(weights)]) == 0
    registry = WeightsRegistry(weights)
    marker = (weights / "STAND-INS.txt").read_text()
    for name in FITTED_COMPONENTS:
        assert registry.is_stand_in(name)  # still a stand-in everywhere: reports keep their banner
        assert f"{name} FITTED stand-in" in marker
    videos = generate_dataset(tmp_path / "raw", clips=1, seed=1234, seconds=1.0, size=64, identities=1)
    frames = decode_video(videos[0].read_bytes())[:25]
    vae = load_vae(registry.path("wan_vae"))  # the real loader
    assert mean_psnr(vae, [frames]) >= SHIPPED_VAE_FLOOR_DB
    truth = sidecar_tracks(videos[0].with_suffix(".json"), 0, 25)["mouth_open"]
    reader = MouthReader.load(registry.path("mouth_probe"))
    assert pearson(reader.opening(frames), truth) >= SHIPPED_PROBE_FLOOR_R


def test_install_fitted_never_replaces_real_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "weights" / "wan_vae"
    AutoencoderKLWan(base_dim=8, z_dim=16).save_pretrained(real)
    (tmp_path / "weights" / "STAND-INS.txt").write_text("# nothing here is a stand-in\n")
    before = (real / "config.json").read_text()
    assert main(["weights", "install-fitted", "--out", str(tmp_path / "weights")]) == 2
    assert "not a stand-in" in capsys.readouterr().err
    assert (real / "config.json").read_text() == before
