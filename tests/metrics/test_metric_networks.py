"""Each metric network's stand-in goes through the real loader and gives features of the real size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.metrics import (
    MetricNetworks,
    SyncNet,
    face_crops,
    fvd_clip,
    i3d_features,
    identity_embeddings,
    inception_features,
    load_arcface,
    load_inception,
    load_syncnet,
    protocol,
    real_clip_start,
    sync_scores,
    syncnet_distances,
    video_clips,
)
from dualforce_core.metrics.dlib_faces import WEIGHT_NAMES
from dualforce_core.weights.registry import WeightsRegistry, init_random
from tests.metrics.real_faces import photo

KEYS_FILE = Path(__file__).parent / "data" / "syncnet_v2_keys.json"


@pytest.fixture(scope="module")
def networks(tmp_path_factory: pytest.TempPathFactory) -> MetricNetworks:
    root = tmp_path_factory.mktemp("weights")
    init_random(root, ["inception", "i3d", "syncnet", "arcface"], seed=0)
    return MetricNetworks.from_registry(WeightsRegistry(root))


def frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def test_registry_loads_all_four_and_records_them_as_stand_ins(networks: MetricNetworks) -> None:
    assert set(networks.weights) == {"inception", "i3d", "syncnet", "arcface"}
    assert networks.any_stand_in
    assert all(len(entry["sha256"]) == 64 for entry in networks.weights.values())
    assert "±15" in protocol()["Sync"]


def test_inception_gives_2048_features_at_any_input_size_independent_of_batching(
    networks: MetricNetworks,
) -> None:
    images = frames(5, 40, 56)
    whole = inception_features(networks.inception, images, batch_size=5)
    batched = inception_features(networks.inception, images, batch_size=2)
    assert whole.shape == (5, 2048) and whole.dtype == np.float64
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-6)
    assert not np.allclose(whole[0], whole[1])


def test_inception_rejects_float_images(networks: MetricNetworks) -> None:
    with pytest.raises(UserError, match="uint8"):
        inception_features(networks.inception, frames(2, 8, 8).astype(np.float32))


def test_i3d_gives_400_features_per_16_frame_clip(networks: MetricNetworks) -> None:
    clips = video_clips(frames(35, 32, 32))
    assert clips.shape == (2, 16, 32, 32, 3)
    features = i3d_features(networks.i3d, clips)
    assert features.shape == (2, 400)
    assert video_clips(frames(15, 8, 8)).shape[0] == 0
    with pytest.raises(UserError, match="at least 9"):
        i3d_features(networks.i3d, frames(8, 16, 16)[None])


def test_syncnet_strict_loads_a_state_dict_with_the_official_key_list(tmp_path: Path) -> None:
    official = json.loads(KEYS_FILE.read_text())["keys"]
    generator = torch.Generator().manual_seed(0)
    state = {
        key: torch.zeros(shape, dtype=torch.long)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in official.items()
    }
    path = tmp_path / "syncnet_v2.model"
    torch.save(state, path)
    net = load_syncnet(path)
    assert not net.training
    loaded = net.state_dict()
    assert set(loaded) == set(official)
    torch.testing.assert_close(loaded["netcnnlip.18.weight"], state["netcnnlip.18.weight"])

    # Pre-0.4.1 checkpoints have no BatchNorm counters: still loads.
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, path)
    load_syncnet(path)

    torch.save({k: v for k, v in state.items() if k != "netfcaud.3.weight"}, path)
    with pytest.raises(UserError, match=r"netfcaud\.3\.weight"):
        load_syncnet(path)
    torch.save({**state, "netcnnaud.0.weight": torch.zeros(64, 1, 5, 5)}, path)
    with pytest.raises(UserError, match="size mismatch"):
        load_syncnet(path)


def test_syncnet_distances_have_one_row_per_offset_and_one_column_per_window(
    networks: MetricNetworks,
) -> None:
    crops = face_crops(frames(12, 96, 80), 224)
    audio = np.random.default_rng(1).normal(0, 0.1, 12 * 640).astype(np.float32)
    dists = syncnet_distances(networks.syncnet, crops, audio, max_offset=3)
    assert dists.shape == (7, 12 - 5)
    assert np.isfinite(dists).all() and (dists >= 0).all()
    with pytest.raises(UserError, match="at least 6 frames"):
        syncnet_distances(networks.syncnet, crops[:5], audio, max_offset=3)
    with pytest.raises(UserError, match="224"):
        syncnet_distances(networks.syncnet, frames(12, 64, 64), audio)


class BrightnessLoudnessNet(SyncNet):
    """Lips embed as window brightness, audio as the share of loud MFCC steps: in sync, they agree."""

    def forward_lip(self, frame_windows: torch.Tensor) -> torch.Tensor:
        return (frame_windows.mean(dim=(1, 2, 3, 4)) / 255.0)[:, None].repeat(1, 8)

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        return (mfcc_windows[:, 0, 0, :] > 19.0).float().mean(dim=1)[:, None].repeat(1, 8)


@pytest.mark.parametrize("lag", [3, -2])
def test_offset_sign_lips_lagging_the_sound_is_positive(lag: int) -> None:
    pattern = np.random.default_rng(2).integers(0, 2, 60)
    lips = np.array([pattern[max(i - lag, 0)] for i in range(40)])  # lips show the sound `lag` frames late
    video = np.repeat(lips * 255, 224 * 224 * 3).astype(np.uint8).reshape(40, 224, 224, 3)
    noise = np.random.default_rng(3).normal(size=40 * 640)
    audio = (noise * np.repeat(np.where(pattern[:40] == 1, 0.5, 0.001), 640)).astype(np.float32)
    with torch.device("meta"):  # its parameters are never used
        net = BrightnessLoudnessNet()
    dists = syncnet_distances(net, video, audio, max_offset=6)
    np.testing.assert_allclose(syncnet_distances(net, video, audio, max_offset=6, batch_size=7), dists)
    scores = sync_scores(dists)
    assert scores.offset == lag
    assert scores.sync_c > 0.1


def test_arcface_gives_512_embeddings_and_rejects_wrong_files(
    networks: MetricNetworks, tmp_path: Path
) -> None:
    faces = face_crops(frames(3, 120, 100), 112)
    assert identity_embeddings(networks.arcface, faces).shape == (3, 512)
    with pytest.raises(UserError, match="112"):
        identity_embeddings(networks.arcface, frames(2, 64, 64))
    broken = tmp_path / "arcface.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(UserError, match="cannot load ArcFace"):
        load_arcface(broken)
    with pytest.raises(UserError, match="cannot load TorchScript"):
        load_inception(broken)


def test_inception_features_are_clean_fid_legacy_tensorflow_features(networks: MetricNetworks) -> None:
    """clean-fid `legacy_tensorflow`: float images in [0, 255] at native size straight into
    `net(x, return_features=True)` (no resize outside the network). Our uint8 frames give the same features."""
    image = photo("smiling_man")
    real = np.ascontiguousarray(
        np.stack([image[110 + dy : 210 + dy, 130:250] for dy in (0, 3, 6)])
    )  # 100x120
    ours = inception_features(networks.inception, real)
    as_clean_fid = torch.from_numpy(real).permute(0, 3, 1, 2).float()  # ToTensor() * 255: the same values
    with torch.inference_mode():
        theirs = networks.inception(as_clean_fid, return_features=True).double().numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert "legacy_tensorflow" in protocol()["FID"] and "N-1" in protocol()["FID"]


def test_fvd_takes_one_clip_per_video_from_stylegan_vs_start() -> None:
    """Ground truth: uniform start in [0, T − 16] (seeded by the clip id); generated: frame 0; short: none."""
    video = np.arange(40, dtype=np.uint8)[:, None, None, None].repeat(3, axis=3)  # frame i has value i
    start = real_clip_start(40, "clip-a")
    assert start is not None and 0 <= start <= 24 and real_clip_start(40, "clip-a") == start
    real = fvd_clip(video, start)
    generated = fvd_clip(video, 0)
    assert real is not None and generated is not None
    assert real.shape == (1, 16, 1, 1, 3) and real[0, :, 0, 0, 0].tolist() == list(range(start, start + 16))
    assert generated[0, :, 0, 0, 0].tolist() == list(range(16))
    assert real_clip_start(15, "clip-a") is None and fvd_clip(video[:15], 0) is None
    assert real_clip_start(16, "clip-a") == 0  # exactly one clip long: one possible start
    starts = np.array([real_clip_start(20, f"clip-{i}") for i in range(2000)])
    counts = np.bincount(starts, minlength=5)
    assert counts.shape == (5,) and counts.min() > 320 and counts.max() < 480  # uniform over 0..4: 400 ± 4σ
    assert "ONE 16-frame clip per video" in protocol()["FVD"] and "divided by N" in protocol()["FVD"]


def test_dlib_identity_loads_dlibs_real_files_and_does_not_need_arcface(tmp_path: Path) -> None:
    init_random(tmp_path, ["inception", "i3d", "syncnet"], seed=0)  # no ArcFace in this weights folder
    nets = MetricNetworks.from_registry(WeightsRegistry(tmp_path), identity_network="dlib")
    assert nets.dlib is not None and nets.arcface_session is None
    with pytest.raises(UserError, match="identity is measured with dlib"):
        _ = nets.arcface
    dlib_files = {name: nets.weights[name] for name in WEIGHT_NAMES.values()}
    assert all(not w["stand_in"] and len(w["sha256"]) == 64 for w in dlib_files.values())
    assert Path(dlib_files["dlib_recognition"]["path"]).name == "dlib_face_recognition_resnet_model_v1.dat"
    definitions = protocol(identity_network="dlib", landmarks=True)
    assert "dlib face-recognition ResNet" in definitions["CSIM/ACD"]
    assert "48-67" in definitions["LMD"] and "256x256" in definitions["LMD"]
    assert "inner-lip opening" in definitions["mouth-audio r (landmarks)"]
    assert "LMD" not in protocol()
    with pytest.raises(UserError, match="weights for 'arcface' not found"):
        MetricNetworks.from_registry(WeightsRegistry(tmp_path))
