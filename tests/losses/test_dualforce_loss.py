"""The combined objective: weighted components, heads trained through it, auxiliaries off at weight 0."""

from __future__ import annotations

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.losses.dualforce_loss import DualForceLoss, LossInputs
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.schedulers.flow_match import STRUCT_FRAME_DIM, add_noise, velocity_target
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.training.config import LossWeights

B, F, K, D, A = 2, 7, 5, 4, 8
LIPS = (3, 4)


def _batch(exact: bool = False, flame: bool = True) -> LossInputs:
    g = torch.Generator().manual_seed(0)
    sigmas = SigmaSampler(DiffusionConfig()).sample(B, F, g)
    video0, video_noise = torch.randn(B, 3, F, 2, 2, generator=g), torch.randn(B, 3, F, 2, 2, generator=g)
    struct0, struct_noise = torch.randn(B, F, K, D, generator=g), torch.randn(B, F, K, D, generator=g)
    target_video, target_struct = velocity_target(video0, video_noise), velocity_target(struct0, struct_noise)
    perturb = 0.0 if exact else 0.3
    return LossInputs(
        pred_video=(target_video + perturb * torch.randn(target_video.shape, generator=g)).requires_grad_(),
        target_video=target_video,
        pred_struct=(
            target_struct + perturb * torch.randn(target_struct.shape, generator=g)
        ).requires_grad_(),
        target_struct=target_struct,
        noisy_struct=add_noise(struct0, struct_noise, sigmas.struct, STRUCT_FRAME_DIM),
        sigma_struct=sigmas.struct,
        audio=torch.randn(B, F, A, generator=g),
        flame_target=torch.randn(B, F, 53, generator=g) if flame else None,
        flame_mask=torch.tensor([True, False]) if flame else None,
    )


def _loss(**weights: float) -> DualForceLoss:
    torch.manual_seed(0)
    return DualForceLoss(
        LossWeights(**weights), struct_tokens=K, struct_token_dim=D, audio_dim=A, lip_tokens=LIPS
    )


def test_total_is_the_weighted_sum_and_reaches_every_learned_part() -> None:
    loss = _loss(video=1.0, struct=0.5, lipsync=0.2, flame=0.3)
    batch = _batch()
    out = loss(batch)
    c = out.components
    assert set(c) == {"total", "video", "struct", "lipsync", "lipsync_accuracy", "lipsync_skipped", "flame"}
    assert all(isinstance(v, float) for v in c.values())
    expected = c["video"] + 0.5 * c["struct"] + 0.2 * c["lipsync"] + 0.3 * c["flame"]
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert c["video"] > 0 and c["struct"] > 0 and c["lipsync"] > 0 and c["flame"] > 0
    assert c["lipsync_skipped"] == 0.0
    out.total.backward()
    assert loss.lipsync is not None and loss.flame_head is not None
    for part in (loss.lipsync, loss.flame_head):
        assert all(
            p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters() if p.requires_grad
        )
    assert batch.pred_video.grad is not None and batch.pred_struct.grad is not None


def test_exact_velocities_give_zero_flow_loss_and_clean_structure_to_the_heads() -> None:
    loss = _loss(lipsync=0.0, flame=1.0)
    batch = _batch(exact=True)
    out = loss(batch)
    assert out.components["video"] == 0.0 and out.components["struct"] == 0.0
    assert loss.flame_head is not None
    assert batch.noisy_struct is not None and batch.sigma_struct is not None
    clean = batch.noisy_struct - batch.sigma_struct[..., None, None] * batch.pred_struct
    head_out = loss.flame_head(clean)
    assert batch.flame_target is not None
    # fp32 per-frame means summed under the mask vs one plain mean of 3·53 values ≈ 1: other summation order,
    # a few ulps (measured 1).
    assert out.components["flame"] == pytest.approx(
        (head_out[0] - batch.flame_target[0]).square().mean().item(), rel=1e-5
    )


def test_zero_weights_build_and_run_no_auxiliaries() -> None:
    loss = _loss(lipsync=0.0, flame=0.0)
    assert loss.lipsync is None and loss.flame_head is None and not list(loss.parameters())
    batch = _batch()
    batch.noisy_struct = batch.sigma_struct = batch.audio = None
    out = loss(batch)
    assert out.components["lipsync"] == 0.0 and out.components["flame"] == 0.0
    assert out.total.item() == pytest.approx(out.components["video"] + out.components["struct"])


def test_missing_flame_targets_leave_a_finite_total() -> None:
    out = _loss()(_batch(flame=False))
    assert out.components["flame"] == 0.0 and torch.isfinite(out.total)


def test_lipsync_without_lip_tokens_is_a_user_error() -> None:
    with pytest.raises(UserError, match="lip_tokens"):
        DualForceLoss(LossWeights(lipsync=0.1), struct_tokens=K, struct_token_dim=D, audio_dim=A)
    with pytest.raises(UserError, match="outside"):
        DualForceLoss(LossWeights(), struct_tokens=K, struct_token_dim=D, audio_dim=A, lip_tokens=(5,))


def test_lipsync_without_audio_is_a_clear_error() -> None:
    batch = _batch()
    batch.audio = None
    with pytest.raises(ValueError, match="audio"):
        _loss()(batch)


def test_video_frames_are_on_axis_two() -> None:
    batch = _batch(exact=True)
    batch.pred_video = batch.pred_video.detach().clone()
    batch.pred_video[:, :, 0] += 10.0
    assert _loss(lipsync=0.0, flame=0.0)(batch).components["video"] == 0.0
    batch.pred_video[:, :, 1] += 1.0
    assert _loss(lipsync=0.0, flame=0.0)(batch).components["video"] == pytest.approx(1.0 / (F - 1))
