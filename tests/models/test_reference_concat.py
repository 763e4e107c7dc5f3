"""`reference_concat`: the clean reference latent beside every frame (Wan 2.1 I2V's conditioning input)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel


def later_frames(kw: dict[str, torch.Tensor], start: int) -> dict[str, torch.Tensor]:
    return {
        "video": kw["video"][:, :, start:],
        "struct": kw["struct"][:, start:],
        "sigma_video": kw["sigma_video"][:, start:],
        "sigma_struct": kw["sigma_struct"][:, start:],
        "audio": kw["audio"],
    }


def test_every_frame_reads_the_reference_without_attending_frame_0(
    tiny: Callable[..., DualForceModel],
) -> None:
    model = tiny()
    assert model.config.reference_concat and model.patch_embedding.in_channels == 32
    kw = model.dummy_inputs(batch_size=2, latent_frames=6, seed=3)
    part = later_frames(kw, 3)  # frames 3..5 only: frame 0 is not in the pass, there is no cache
    with torch.no_grad():
        own = model(**part, frame_offset=3, reference=kw["reference"]).video
        other = model(**part, frame_offset=3, reference=kw["reference"] + 1.0).video
    assert (own - other).abs().mean() > 1e-3  # the reference reaches frames that cannot attend it

    # A pass from frame 0 takes the reference from its own first frame: passing it changes nothing.
    with torch.no_grad():
        implicit = model(**{k: v for k, v in kw.items() if k != "reference"}).video
        explicit = model(**kw).video
    assert torch.equal(implicit, explicit)  # same tensors, same kernels


def test_a_later_chunk_without_its_reference_is_one_clear_error(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=1, latent_frames=4, seed=0)
    with pytest.raises(UserError, match="needs `reference` for chunks after frame 0"):
        model(**later_frames(kw, 2), frame_offset=2)
    with pytest.raises(UserError, match=r"reference must be \[B, C, 1, H, W\]"):
        model(**later_frames(kw, 2), frame_offset=2, reference=kw["video"][:, :, :2])


def test_without_reference_concat_the_input_is_the_latents_alone(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny(reference_concat=False)
    assert model.patch_embedding.in_channels == 16 and "reference" not in model.dummy_inputs(latent_frames=2)
