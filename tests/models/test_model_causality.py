"""Block-causal attention, per-frame σ, the reference frame, audio windows and the K/V cache.

Tiny preset: chunk_frames = 2, so 6 latent frames form chunks [0] [1 2] [3 4] [5].

torch.equal where both outputs come from the same shapes and kernels (what changed is masked out, and a masked
key adds an exact 0); fp32 tolerances where the shapes differ (cache, audio slice, backend).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
import torch

from dualforce_core.models import DualForceModel, DualForceOutput, KVCache
from dualforce_core.models.attention import AttentionBackend, BlockCausal, FrameSpan, attend, prefix_runs

FRAMES = 6


def run(model: DualForceModel, kw: Mapping[str, torch.Tensor | None], **extra: object) -> DualForceOutput:
    with torch.no_grad():
        return model(**kw, **extra)


def edited(kw: dict[str, torch.Tensor], name: str, frames: slice) -> dict[str, torch.Tensor]:
    out = dict(kw)
    value = kw[name].clone()
    if name == "video":
        value[:, :, frames] += 1.0
    else:
        value[:, frames] = (value[:, frames] + 0.3) if name == "struct" else 1.0 - value[:, frames]
    out[name] = value
    return out


def video_frames(out: DualForceOutput, frames: slice) -> torch.Tensor:
    return out.video[:, :, frames]


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_later_chunks_never_change_earlier_outputs(
    tiny: Callable[..., DualForceModel], backend: AttentionBackend
) -> None:
    model = tiny()
    model.set_attention_backend(backend)
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=1)
    base = run(model, kw)
    for name in ("video", "struct", "sigma_video", "sigma_struct"):
        out = run(model, edited(kw, name, slice(3, None)))  # chunks 2 and 3
        assert torch.equal(video_frames(out, slice(0, 3)), video_frames(base, slice(0, 3))), name
        assert torch.equal(out.struct[:, :3], base.struct[:, :3]), name
        assert not torch.allclose(video_frames(out, slice(3, None)), video_frames(base, slice(3, None))), name
        assert not torch.allclose(out.struct[:, 3:], base.struct[:, 3:]), name
    # Inside a chunk attention is full: frame 2 does reach frame 1.
    out = run(model, edited(kw, "video", slice(2, 3)))
    assert not torch.allclose(video_frames(out, slice(1, 2)), video_frames(base, slice(1, 2)))
    assert torch.equal(video_frames(out, slice(0, 1)), video_frames(base, slice(0, 1)))


def test_backends_agree(tiny: Callable[..., DualForceModel]) -> None:
    sdpa = tiny()
    flex = tiny()
    flex.set_attention_backend("flex")
    flex.load_state_dict(sdpa.state_dict())
    kw = sdpa.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=2)
    drop = torch.tensor([True, False])
    a, b = run(sdpa, kw, audio_drop=drop), run(flex, kw, audio_drop=drop)
    torch.testing.assert_close(a.video, b.video, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.struct, b.struct, atol=1e-5, rtol=1e-5)


def test_sigma_is_per_frame_and_reaches_both_towers(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=3)
    base = run(model, kw)
    for name in ("sigma_video", "sigma_struct"):
        out = run(model, edited(kw, name, slice(4, 5)))
        assert not torch.allclose(video_frames(out, slice(4, 5)), video_frames(base, slice(4, 5))), name
        assert not torch.allclose(out.struct[:, 4], base.struct[:, 4]), name
        assert torch.equal(video_frames(out, slice(0, 3)), video_frames(base, slice(0, 3))), name


def test_reference_frame_depends_only_on_itself(tiny: Callable[..., DualForceModel]) -> None:
    """Frame 0 is its own chunk: its output ignores every later frame and every later σ.

    At σ = 0 the predicted clean frame x0 = x - σ·v is the input frame itself, whatever v is.
    """
    model = tiny()
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=4)
    assert torch.all(kw["sigma_video"][:, 0] == 0) and torch.all(kw["sigma_struct"][:, 0] == 0)
    base = run(model, kw)
    for name in ("video", "struct", "sigma_video", "sigma_struct"):
        out = run(model, edited(kw, name, slice(1, None)))
        assert torch.equal(video_frames(out, slice(0, 1)), video_frames(base, slice(0, 1))), name
        assert torch.equal(out.struct[:, 0], base.struct[:, 0]), name


def test_audio_window_bounds_what_a_chunk_hears(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=5)
    base = run(model, kw)
    # Chunk [1 2]: frame 2 covers video frames 5..8, lookahead 1 → up to video frame 12 → audio tokens < 26.
    late = dict(kw, audio=kw["audio"].clone())
    late["audio"][:, 26:] += 1.0
    out = run(model, late)
    assert torch.equal(video_frames(out, slice(0, 3)), video_frames(base, slice(0, 3)))
    assert torch.equal(out.struct[:, :3], base.struct[:, :3])
    assert not torch.allclose(video_frames(out, slice(3, None)), video_frames(base, slice(3, None)))
    early = dict(kw, audio=kw["audio"].clone())
    early["audio"][:, 20:26] += 1.0
    assert not torch.allclose(run(model, early).video[:, :, 1:3], base.video[:, :, 1:3])


def test_audio_drop_means_no_audio_for_that_sample_only(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=6)
    dropped = run(model, kw, audio_drop=torch.tensor([True, False]))
    silent = run(model, {**kw, "audio": None})
    full = run(model, kw)
    # A dropped sample attends T_a + 1 audio keys (all but the null token masked), a silent one only the null
    # token: other shapes, other kernels. fp32, ~30 ops deep on outputs ≲ 3: 1e-5 (measured ≤ 5e-7).
    torch.testing.assert_close(dropped.video[0], silent.video[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dropped.struct[0], silent.struct[0], atol=1e-5, rtol=1e-5)
    # Sample 1 runs the same shapes and kernels in both calls; only sample 0's mask differs: bit-identical.
    assert torch.equal(dropped.video[1], full.video[1]) and torch.equal(dropped.struct[1], full.struct[1])
    assert not torch.allclose(full.video[0], silent.video[0])


def test_an_audio_slice_with_its_offset_equals_the_full_track(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    kw = model.dummy_inputs(batch_size=2, latent_frames=FRAMES, seed=8)
    # Frames 3..5 (chunks [3 4] [5]) with past 1 and lookahead 1 hear global tokens 10.. onwards.
    part = {
        "video": kw["video"][:, :, 3:],
        "struct": kw["struct"][:, 3:],
        "sigma_video": kw["sigma_video"][:, 3:],
        "sigma_struct": kw["sigma_struct"][:, 3:],
        "reference": kw["reference"],  # frame 0's latent, which every frame reads beside its own
    }
    sliced = run(model, {**part, "audio": kw["audio"][:, 10:]}, frame_offset=3, audio_offset=10)
    whole = run(model, {**part, "audio": kw["audio"]}, frame_offset=3)
    # Other audio K/V lengths, other kernels. fp32, ~30 ops deep on outputs ≲ 3: 1e-5 (measured ≤ 6e-7).
    torch.testing.assert_close(sliced.video, whole.video, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sliced.struct, whole.struct, atol=1e-5, rtol=1e-5)
    shifted = run(model, {**part, "audio": kw["audio"][:, 10:]}, frame_offset=3)
    assert not torch.allclose(shifted.video, whole.video)


def test_chunk_by_chunk_with_cache_matches_the_full_sequence(tiny: Callable[..., DualForceModel]) -> None:
    model = tiny()
    frames = 5
    kw = model.dummy_inputs(batch_size=2, latent_frames=frames, seed=7)
    full = run(model, kw)
    cache = KVCache()
    cache.write = True
    videos, structs = [], []
    for start, end in ((0, 1), (1, 3), (3, 5)):
        part = {
            "video": kw["video"][:, :, start:end],
            "struct": kw["struct"][:, start:end],
            "sigma_video": kw["sigma_video"][:, start:end],
            "sigma_struct": kw["sigma_struct"][:, start:end],
            "audio": kw["audio"],
            "reference": kw["reference"],
        }
        out = run(model, part, frame_offset=start, cache=cache)
        videos.append(out.video)
        structs.append(out.struct)
    torch.testing.assert_close(torch.cat(videos, dim=2), full.video, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(structs, dim=1), full.struct, atol=1e-5, rtol=1e-5)
    assert cache.store["video.blocks.0.self_attn"][0].shape[1] == frames * 16  # 4×4 tokens per latent frame


def test_prefix_runs_decompose_the_block_causal_mask() -> None:
    """The flash backend's per-chunk calls on key prefixes equal the masked attention (checked via sdpa)."""
    g = torch.Generator().manual_seed(0)
    span = FrameSpan(start=2, frames=5, tokens_per_frame=3)  # frames 2..6: chunks 1, 2, 2, 3, 3
    for past in (0, 4):
        mask = BlockCausal(2, span, span, past=past)
        q, k, v = (torch.randn(2, span.tokens + (past if i else 0), 2, 8, generator=g) for i in range(3))
        assert [n for _, _, n in prefix_runs(mask)] == [past + 3, past + 9, past + 15]
        pieces = [attend(q[:, a:b], k[:, :n], v[:, :n], None, "sdpa") for a, b, n in prefix_runs(mask)]
        torch.testing.assert_close(torch.cat(pieces, dim=1), attend(q, k, v, mask, "sdpa"))
