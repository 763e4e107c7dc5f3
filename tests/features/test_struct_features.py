from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows
from dualforce_core.data.struct_stats import load_struct_stats, stats_path
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.struct import extract_struct_features, prepare_frames
from dualforce_core.features.struct_sidecar import motion_from_tracks, mouth_open_from_motion
from tests.features.feature_fixtures import MakeClips


def test_frames_are_prepared_like_liveportrait() -> None:
    frames = np.full((2, 32, 48, 3), 255, np.uint8)
    frames[1] = 0
    x = prepare_frames(frames)
    assert x.shape == (2, 3, 256, 256) and x.dtype == torch.float32
    assert torch.equal(x[0], torch.ones(3, 256, 256)) and torch.equal(x[1], torch.zeros(3, 256, 256))


def test_rows_hold_motion_per_frame_and_first_frame_keypoints_and_stats(
    config: DualForceConfig, make_clips: MakeClips
) -> None:
    with pytest.raises(UserError, match="dualforce extract struct"):
        load_struct_stats("faces")
    make_clips("faces", 2, num_frames=2)
    report = extract_struct_features("faces", config, progress=False)
    assert report.written == 2 and report.extractor_id.startswith("liveportrait_motion:")
    rows = read_rows("struct_features").to_pylist()
    motion = []
    for row in rows:
        assert row["shape"] == [2, 70]
        m = decode_tensor(row["motion"], row["shape"], "float32")
        kp = decode_tensor(row["canonical_kp"], [21, 3], "float32")
        assert torch.isfinite(m).all() and torch.isfinite(kp).all()
        assert ((m[:, 63:66] >= -97.5) & (m[:, 63:66] <= 97.5)).all()  # degrees from 66 bins
        motion.append(m)
    stats = load_struct_stats("faces")
    assert stats_path("faces").is_file() and (stats.num_clips, stats.num_frames) == (2, 4)
    stacked = torch.cat(motion).double()
    assert np.allclose(stats.mean, stacked.mean(0).numpy(), atol=1e-6)
    assert np.allclose(stats.std, stacked.std(0, correction=0).clamp_min(1e-6).numpy(), atol=1e-6)


def test_sidecar_extractor_writes_the_ground_truth_motion_in_liveportrait_layout(
    config: DualForceConfig, make_clips: MakeClips, tmp_path: Path
) -> None:
    frames = 12
    t = np.arange(frames)
    tracks = {
        "mouth_open": 0.5 + 0.5 * np.sin(t),
        "yaw": 10 * np.cos(t),
        "pitch": 4 * np.sin(2 * t),
        "roll": 2 * np.cos(3 * t),
        "blink": (t % 5 == 0).astype(float),
    }
    sidecar = tmp_path / "clip.json"
    sidecar.write_text(json.dumps({"fps": 25, **{k: v.tolist() for k, v in tracks.items()}}))
    make_clips("faces", 1, num_frames=5, sidecar=sidecar)
    make_clips("faces", 1, num_frames=5, first=1)  # no sidecar: no row, counted
    sidecar_config = config.model_copy(
        update={"data": config.data.model_copy(update={"struct_extractor": "sidecar"})}
    )
    report = extract_struct_features("faces", sidecar_config, progress=False)
    assert (report.written, report.without_source, report.extractor_id) == (1, 1, "struct:sidecar")
    row = read_rows("struct_features").to_pylist()[0]
    motion = decode_tensor(row["motion"], row["shape"], "float32").numpy()
    assert motion.shape == (5, 70)
    np.testing.assert_allclose(
        motion[:, 63:66], np.stack([tracks[k][:5] for k in ("pitch", "yaw", "roll")], 1), rtol=1e-6
    )
    # float32 storage of deltas ~0.03 × opening: a few ulps relative.
    np.testing.assert_allclose(mouth_open_from_motion(motion), tracks["mouth_open"][:5], rtol=1e-5, atol=1e-6)
    closed = motion_from_tracks(*(np.zeros(3) for _ in range(5)))
    assert not closed[:, :63].any(), "a closed, unblinking face has no expression delta"
    assert load_struct_stats("faces").num_clips == 1
