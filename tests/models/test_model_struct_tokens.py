"""The fixed structure-token layout other stages rely on."""

from __future__ import annotations

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.models import LIP_KEYPOINTS, StructTokenProjector


def motion(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, frames, 70, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("tokens", [21, 7, 3, 1])
def test_pack_unpack_round_trip(tokens: int) -> None:
    proj = StructTokenProjector(tokens_per_frame=tokens)
    params = motion(2, 1 + 4 * 3)
    packed = proj.pack(params)
    g = 21 // tokens
    assert packed.shape == (2, 4, tokens, 4 * (3 * g + 7))
    # unpack averages the `tokens` copies of each global: fp32 mean of ≤ 21 identical values, relative error
    # ≤ 21 eps (measured: 1 ulp, 4.8e-7 at |x| ≈ 4); keypoints come back exactly.
    torch.testing.assert_close(proj.unpack(packed), params, rtol=21 * torch.finfo(torch.float32).eps, atol=0)


def test_default_layout_is_frame_major_keypoint_then_globals() -> None:
    proj = StructTokenProjector()
    assert proj.token_dim == 40
    params = motion(1, 9)
    packed = proj.pack(params)  # [1, 3, 21, 40]
    # Latent frame 0 is video frame 0 four times.
    for j in range(4):
        assert torch.equal(packed[0, 0, 5, j * 10 : j * 10 + 3], params[0, 0, 15:18])
    # Latent frame 2 holds video frames 5..8; token 20 = keypoint 20; globals follow the xyz.
    for j in range(4):
        slot = packed[0, 2, 20, j * 10 : (j + 1) * 10]
        assert torch.equal(slot[:3], params[0, 5 + j, 60:63])
        assert torch.equal(slot[3:], params[0, 5 + j, 63:70])


def test_unpack_averages_duplicated_globals() -> None:
    proj = StructTokenProjector()
    packed = proj.pack(motion(1, 5))
    packed[0, 1, 0, 3:10] += 2.0  # one token's copy of frame 1's globals
    # fp32 means of 21 copies of values ≲ 4, one with +2: ~1 ulp of 4 absolute even where the result is near 0.
    assert torch.allclose(
        proj.unpack(packed)[0, 1, 63:], proj.unpack(proj.pack(motion(1, 5)))[0, 1, 63:] + 2 / 21, atol=1e-6
    )


@pytest.mark.parametrize("tokens", [21, 3])
def test_lip_channels_pick_the_lip_keypoints(tokens: int) -> None:
    assert LIP_KEYPOINTS == (6, 12, 14, 17, 19, 20)
    proj = StructTokenProjector(tokens_per_frame=tokens)
    params = motion(2, 5)
    lips = proj.lip_channels(proj.pack(params))
    assert lips.shape == (2, 2, 6, 12)
    for i, kp in enumerate(LIP_KEYPOINTS):
        for j in range(4):
            assert torch.equal(lips[:, 1, i, 3 * j : 3 * j + 3], params[:, 1 + j, 3 * kp : 3 * kp + 3])


def test_bad_shapes_are_user_errors() -> None:
    proj = StructTokenProjector()
    with pytest.raises(UserError, match="T ≡ 1"):
        proj.pack(motion(1, 6))
    with pytest.raises(UserError, match="70"):
        proj.pack(torch.zeros(1, 5, 63))
    with pytest.raises(UserError, match="struct tokens"):
        proj.unpack(torch.zeros(1, 2, 21, 39))
    with pytest.raises(UserError, match="divide"):
        StructTokenProjector(tokens_per_frame=4)
