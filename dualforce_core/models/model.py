"""DualForce: video tower (Wan-VAE latents) + structure tower (LivePortrait keypoints) + bridge + audio.

Timing is `dualforce_core.timeline`'s: latent frame 0 ↔ video frame 0 and is the clean reference
portrait (σ = 0 in both modalities); latent frame f ≥ 1 ↔ video frames 4f-3..4f; HuBERT gives 2 tokens per
video frame. A latent frame attends the audio of its own video frames, plus `audio_past` latent frames
before and `audio_lookahead` after (the streaming latency), plus a learned null token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from pydantic import ValidationError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dualforce_core.errors import UserError
from dualforce_core.models.attention import (
    BACKENDS,
    AttentionBackend,
    AttentionCache,
    BlockCausal,
    DenseMask,
    FrameSpan,
    require_flash,
)
from dualforce_core.models.block import Attention, BlockInputs, DiTBlock, FP32LayerNorm, Rope, zero_gate_rows_
from dualforce_core.models.bridge import BridgeInputs, BridgeLayer, bridge_layer_indices, struct_layer_for
from dualforce_core.models.config import ModelConfig, saved_fields
from dualforce_core.models.embeddings import (
    AudioLayerMix,
    AudioProjection,
    TextProjection,
    TimestepEmbedder,
    linear_fp32,
)
from dualforce_core.models.rope import temporal_rope, time_rope, video_rope
from dualforce_core.models.struct_tokens import StructTokenProjector
from dualforce_core.timeline import first_video_frame, video_frames_of

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _validated(data: dict[str, Any], source: str) -> ModelConfig:
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(f"invalid model config from {source}: {err}") from None


def checkpoint_config(directory: str | Path) -> ModelConfig:
    """The model config of a `save_pretrained` checkpoint, validated (defaults filled in)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{directory} is not a saved DualForce model: {CONFIG_FILE} is missing")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not a valid DualForce model config: {err}") from None
    return _validated(saved_fields(data), str(path))


@dataclass
class DualForceOutput:
    """Flow-matching velocities (target ε - x0), shaped like the inputs."""

    video: Tensor  # [B, C, F, H, W]
    struct: Tensor  # [B, F, K, D]


@dataclass
class Layout:
    """What every block of one forward reads, built once by `DualForceModel.layout`."""

    grid: tuple[int, int, int]  # latent frames, patch rows, patch columns
    video: BlockInputs
    struct: BlockInputs
    bridge: BridgeInputs


class Tower(nn.Module):
    """One tower's blocks, its DualAdaLN-Zero conditioning and its output head.

    Block modulation is `table + proj_v(emb_v(σ_v[f])) + proj_s(emb_s(σ_s[f]))`: each tower knows
    both noise levels of a frame. The projections are shared by the tower's blocks, as Wan shares
    its time projection; each block's `table` makes it its own. The head is modulated by the
    tower's own modality's embedding only.
    """

    def __init__(
        self,
        config: ModelConfig,
        dim: int,
        heads: int,
        layers: int,
        ffn_dim: int,
        out_features: int,
        own_is_video: bool,
        text_dim: int | None,
    ) -> None:
        super().__init__()
        c = config
        self.dim = dim
        self.head_dim = dim // heads
        self.own_is_video = own_is_video
        self.time_v = TimestepEmbedder(c.freq_dim, dim)
        self.time_s = TimestepEmbedder(c.freq_dim, dim)
        self.proj_v = nn.Linear(dim, 6 * dim)
        self.proj_s = nn.Linear(dim, 6 * dim)
        zero_gate_rows_(self.proj_v, dim)
        zero_gate_rows_(self.proj_s, dim)
        self.text_in = TextProjection(text_dim, dim) if text_dim else None
        self.audio_in = AudioProjection(c.audio_dim, dim)
        self.blocks = nn.ModuleList(
            DiTBlock(dim, heads, ffn_dim, c.eps, c.qk_norm, text=text_dim is not None) for _ in range(layers)
        )
        self.norm_out = FP32LayerNorm(dim, c.eps, elementwise_affine=False)
        self.head_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)
        self.proj_out = nn.Linear(dim, out_features)

    def forward(
        self, x: Tensor, mod: Tensor, inputs: BlockInputs, start: int = 0, stop: int | None = None
    ) -> Tensor:
        """Blocks [start, stop): a tower runs in stretches, halted at each bridge to meet the other one."""
        for block in self.blocks[start:stop]:
            x = block(x, mod, inputs)
        return x

    def conditioning(self, sigma_video: Tensor, sigma_struct: Tensor) -> tuple[Tensor, Tensor]:
        """(block modulation [B, F, 6, dim] fp32, head embedding [B, F, dim]) from per-frame σ."""
        emb_v, emb_s = self.time_v(sigma_video), self.time_s(sigma_struct)
        mod = linear_fp32(self.proj_v, F.silu(emb_v)) + linear_fp32(self.proj_s, F.silu(emb_s))
        return mod.unflatten(-1, (6, self.dim)), emb_v if self.own_is_video else emb_s

    def head(self, x: Tensor, emb: Tensor) -> Tensor:
        shift, scale = (self.head_table.float() + emb.float()[:, :, None]).unsqueeze(3).unbind(2)
        h = self.norm_out(x).unflatten(1, (emb.shape[1], -1)) * (1 + scale) + shift
        return self.proj_out(h.flatten(1, 2).type_as(x))


class DualForceModel(nn.Module):
    """Both towers, the bridge and the audio path; `forward` returns the two velocities.

    `projector` holds the structure-token layout (`pack`/`unpack`, `lip_channels`). The FLAME head
    of the FLAME alignment loss lives with the loss (`dualforce_core.losses`), not here.
    `attention_backend` is how this run computes attention (`set_attention_backend`): the same function
    whichever it is, so it is not part of the config a checkpoint saves.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        self.attention_backend: AttentionBackend = "sdpa"
        self.projector = StructTokenProjector.from_config(c)
        token_dim = self.projector.token_dim
        in_channels = c.video_in_channels * (2 if c.reference_concat else 1)
        self.patch_embedding = nn.Conv3d(in_channels, c.video_dim, c.patch_size, stride=c.patch_size)
        self.struct_embedding = nn.Linear(token_dim, c.struct_dim)
        # Keypoint identity: without it the K tokens of a frame would be interchangeable.
        self.struct_slots = nn.Parameter(torch.randn(c.struct_tokens_per_frame, c.struct_dim) * 0.02)
        self.audio_mix = AudioLayerMix(c.audio_layers)
        patch_out = c.video_in_channels * c.patch_size[0] * c.patch_size[1] * c.patch_size[2]
        self.video = Tower(
            c,
            c.video_dim,
            c.video_heads,
            c.video_layers,
            c.video_ffn_dim,
            patch_out,
            own_is_video=True,
            text_dim=c.text_dim,
        )
        self.struct = Tower(
            c,
            c.struct_dim,
            c.struct_heads,
            c.struct_layers,
            c.struct_ffn_dim,
            token_dim,
            own_is_video=False,
            text_dim=None,
        )
        self.bridge = nn.ModuleDict({str(i): BridgeLayer(c) for i in bridge_layer_indices(c)})
        # Layers a streaming cache serves, named by module path: self-attention and the bridge extend
        # the cached K/V of earlier chunks; audio cross-attention reuses its K/V while its slice stays.
        for name, module in self.named_modules():
            if isinstance(module, Attention) and (
                name.endswith(("self_attn", "audio_attn")) or name.startswith("bridge.")
            ):
                module.cache_key = name

    def set_attention_backend(self, name: AttentionBackend) -> None:
        """Compute attention with `name` (sdpa, flex or flash) from now on; flash needs flash-attn."""
        if name not in BACKENDS:
            raise UserError(f"unknown attention backend {name!r}; choose one of {', '.join(BACKENDS)}")
        if name == "flash":
            require_flash()
        self.attention_backend = name

    # ----------------------------------------------------------------------------------------- forward

    def forward(
        self,
        video: Tensor,
        struct: Tensor,
        sigma_video: Tensor,
        sigma_struct: Tensor,
        audio: Tensor | None = None,
        audio_drop: Tensor | None = None,
        text: Tensor | None = None,
        frame_offset: int = 0,
        audio_offset: int = 0,
        cache: AttentionCache | None = None,
        reference: Tensor | None = None,
    ) -> DualForceOutput:
        """Velocities for `video` [B, C, F, H, W] and `struct` [B, F, K, D] at per-frame σ [B, F].

        `audio` [B, T_a, L, D_a] is time-major HuBERT whose first token is global token `audio_offset`
        (token 0 = video frame 0; None = no audio); `audio_drop` [B] bool drops a sample's audio
        (classifier-free guidance). For streaming, the frames start at absolute latent frame
        `frame_offset` and attend `cache` (earlier chunks' K/V, always visible) plus themselves under
        the block-causal rule; pass only the audio slice those frames can hear (`audio_span`), with its
        offset. A cache keeps audio K/V per (offset, token count): one cache serves one audio track.
        `reference` [B, C, 1, H, W] is the clean latent of frame 0, which `reference_concat` models read at
        every frame; a pass that starts at frame 0 takes it from `video`, later chunks must pass it.
        """
        c = self.config
        self._check_inputs(video, struct, sigma_video, sigma_struct, audio, audio_drop, text)
        layout = self.layout(video, frame_offset, audio, audio_offset, audio_drop, text, cache)
        dtype = self.patch_embedding.weight.dtype
        x_v = self.patch_embedding(self.video_input(video, frame_offset, reference).to(dtype))
        x_v = x_v.flatten(2).transpose(1, 2)
        x_s = (self.struct_embedding(struct.to(dtype)) + self.struct_slots).flatten(1, 2)
        mod_v, emb_v = self.video.conditioning(sigma_video, sigma_struct)
        mod_s, emb_s = self.struct.conditioning(sigma_video, sigma_struct)

        # The towers run side by side and meet at the input of each bridged video layer.
        depth_v = depth_s = 0
        for i in bridge_layer_indices(c):  # ascending, so each stretch starts where the last one stopped
            j = struct_layer_for(i, c)
            x_v = self.video(x_v, mod_v, layout.video, depth_v, i)
            x_s = self.struct(x_s, mod_s, layout.struct, depth_s, j)
            x_v, x_s = self.bridge[str(i)](x_v, x_s, layout.bridge)
            depth_v, depth_s = i, j
        x_v = self.video(x_v, mod_v, layout.video, depth_v)
        x_s = self.struct(x_s, mod_s, layout.struct, depth_s)

        frames, h, w = layout.grid
        # Fresh tensors, not views, as FSDP2 wants of a wrapped module's outputs (`unpatchify`'s reshape
        # of a permuted tensor already copies); the struct head's output is small, so the copy is cheap.
        out_s = self.struct.head(x_s, emb_s).unflatten(1, (frames, c.struct_tokens_per_frame)).clone()
        return DualForceOutput(video=self.unpatchify(self.video.head(x_v, emb_v), frames, h, w), struct=out_s)

    def video_input(self, video: Tensor, frame_offset: int, reference: Tensor | None) -> Tensor:
        """The patch embedding's input: the latents, and for `reference_concat` the reference beside each frame."""
        if not self.config.reference_concat:
            return video
        if reference is None:
            if frame_offset != 0:
                raise UserError("a reference_concat model needs `reference` for chunks after frame 0")
            reference = video[:, :, :1]
        if reference.shape != (*video.shape[:2], 1, *video.shape[3:]):
            raise UserError(
                f"reference must be [B, C, 1, H, W] = {[*video.shape[:2], 1, *video.shape[3:]]}, "
                f"got {list(reference.shape)}"
            )
        return torch.cat([video, reference.to(video.dtype).expand_as(video)], dim=1)

    def layout(
        self,
        video: Tensor,
        frame_offset: int,
        audio: Tensor | None,
        audio_offset: int,
        audio_drop: Tensor | None,
        text: Tensor | None,
        cache: AttentionCache | None,
    ) -> Layout:
        """Where `video`'s tokens sit in time, turned once per forward into the masks, RoPE tables and
        audio/text context that every block reads (arguments as `forward`'s)."""
        c = self.config
        if frame_offset < 0 or audio_offset < 0:
            raise UserError(f"frame_offset and audio_offset must be >= 0, got {frame_offset}, {audio_offset}")
        batch, _, frames, height, width = video.shape
        h, w = height // c.patch_size[1], width // c.patch_size[2]
        tokens_s = c.struct_tokens_per_frame
        dtype, device = self.patch_embedding.weight.dtype, video.device
        frame_idx = torch.arange(frame_offset, frame_offset + frames, device=device)
        span_v, span_s = FrameSpan(frame_offset, frames, h * w), FrameSpan(frame_offset, frames, tokens_s)

        def causal(q: FrameSpan, k: FrameSpan) -> BlockCausal | None:
            return BlockCausal(c.chunk_frames, q, k) if c.causal else None

        mixed = None if audio is None else self.audio_mix(audio.to(dtype))
        audio_tokens = 0 if audio is None else audio.shape[1]
        window = self.audio_window(frame_idx, audio_offset + audio_tokens, batch, audio_drop)[
            ..., audio_offset:
        ]
        query_time = self.audio_time(frame_idx)
        key_time = torch.arange(audio_offset, audio_offset + audio_tokens, device=device) + 0.5

        def tower_inputs(tower: Tower, tokens: int, rope: Rope, span: FrameSpan) -> BlockInputs:
            hd = tower.head_dim
            return BlockInputs(
                frames=frames,
                rope=rope,
                mask=causal(span, span),
                backend=self.attention_backend,
                audio=tower.audio_in(mixed, batch),
                audio_mask=DenseMask(window.repeat_interleave(tokens, dim=1)),
                text=tower.text_in(text.to(dtype)) if tower.text_in and text is not None else None,
                cache=cache,
                # Global tokens [audio_offset, +audio_tokens) of one track: a cache keeps their K/V by it.
                audio_window=(audio_offset, audio_tokens, batch),
                audio_q_rope=time_rope(query_time.repeat_interleave(tokens), hd, c.rope_theta),
                audio_k_rope=time_rope(key_time, hd, c.rope_theta, unrotated_tail=1),
            )

        hd_v, hd_s = self.video.head_dim, self.struct.head_dim
        return Layout(
            grid=(frames, h, w),
            video=tower_inputs(self.video, h * w, video_rope(frame_idx, h, w, hd_v, c.rope_theta), span_v),
            struct=tower_inputs(
                self.struct, tokens_s, temporal_rope(frame_idx, tokens_s, hd_s, c.rope_theta), span_s
            ),
            bridge=BridgeInputs(
                video_rope_v=temporal_rope(frame_idx, h * w, hd_v, c.rope_theta),
                struct_rope_v=temporal_rope(frame_idx, tokens_s, hd_v, c.rope_theta),
                video_rope_s=temporal_rope(frame_idx, h * w, hd_s, c.rope_theta),
                struct_rope_s=temporal_rope(frame_idx, tokens_s, hd_s, c.rope_theta),
                v_from_s_mask=causal(span_v, span_s),
                s_from_v_mask=causal(span_s, span_v),
                backend=self.attention_backend,
                cache=cache,
            ),
        )

    def unpatchify(self, x: Tensor, frames: int, h: int, w: int) -> Tensor:
        """[B, F·h·w, pt·ph·pw·C] → [B, C, F·pt, h·ph, w·pw] (Wan's channel order: C innermost)."""
        pt, ph, pw = self.config.patch_size
        x = x.reshape(x.shape[0], frames, h, w, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(x.shape[0], x.shape[1], frames * pt, h * ph, w * pw)

    def audio_time(self, frames: Tensor) -> Tensor:
        """Centre of each latent frame's video frames in audio tokens (token t spans [t, t+1)): [F]."""
        c = self.config
        per_video, per_latent = c.audio_tokens_per_video_frame, c.video_frames_per_latent
        first = first_video_frame(frames, per_latent)
        return per_video * (first + per_latent * frames + 1).double() / 2

    def audio_span(self, first_frame: int, frames: int) -> tuple[int, int]:
        """Global token range [start, end) that latent frames first_frame..first_frame+frames-1 may attend.

        A streaming pass hands `forward` only this slice, with `audio_offset=start`: the masks, and so the
        outputs, are those of the full track, while the cost of a pass (the audio layer mix and every
        block's audio K/V) does not grow with the length of the track.
        """
        c = self.config
        bound = (
            c.audio_tokens_per_video_frame
            * c.video_frames_per_latent
            * (first_frame + frames + c.audio_lookahead + 2)
        )
        index = torch.arange(first_frame, first_frame + frames)
        window = self.audio_window(index, bound, 1, None)[0, :, :-1].any(0).nonzero()
        if window.numel() == 0:
            return 0, 0
        return int(window[0]), int(window[-1]) + 1

    def audio_window(self, frames: Tensor, audio_tokens: int, batch: int, drop: Tensor | None) -> Tensor:
        """[B, F, T_a + 1] bool: which audio tokens (then the null token) each latent frame may attend."""
        c = self.config
        per_video, per_latent = c.audio_tokens_per_video_frame, c.video_frames_per_latent
        lo = per_video * first_video_frame((frames - c.audio_past).clamp(min=0), per_latent)
        hi = per_video * (per_latent * (frames + c.audio_lookahead) + 1)
        token = torch.arange(audio_tokens, device=frames.device)
        window = ((token >= lo[:, None]) & (token < hi[:, None]))[None].expand(batch, -1, -1)
        if drop is not None:
            window = window & ~drop.to(device=frames.device, dtype=torch.bool)[:, None, None]
        null = torch.ones(batch, frames.numel(), 1, dtype=torch.bool, device=frames.device)
        return torch.cat([window, null], dim=-1)

    def _check_inputs(
        self,
        video: Tensor,
        struct: Tensor,
        sigma_video: Tensor,
        sigma_struct: Tensor,
        audio: Tensor | None,
        audio_drop: Tensor | None,
        text: Tensor | None,
    ) -> None:
        c = self.config
        k, d = c.struct_tokens_per_frame, self.projector.token_dim
        if video.ndim != 5 or video.shape[1] != c.video_in_channels:
            raise UserError(f"video must be [B, {c.video_in_channels}, F, H, W], got {list(video.shape)}")
        batch, _, frames, height, width = video.shape
        if height % c.patch_size[1] or width % c.patch_size[2]:
            raise UserError(
                f"video latent size {height}x{width} must be divisible by the patch {c.patch_size[1:]}"
            )
        if tuple(struct.shape) != (batch, frames, k, d):
            raise UserError(
                f"struct must be [B, F, K, D] = {[batch, frames, k, d]}, got {list(struct.shape)}"
            )
        for name, sigma in (("sigma_video", sigma_video), ("sigma_struct", sigma_struct)):
            if tuple(sigma.shape) != (batch, frames):
                raise UserError(f"{name} must be [B, F] = {[batch, frames]}, got {list(sigma.shape)}")
        if audio is not None and (
            audio.ndim != 4 or audio.shape[0] != batch or audio.shape[2:] != (c.audio_layers, c.audio_dim)
        ):
            raise UserError(
                f"audio must be time-major HuBERT states [B, T_a, {c.audio_layers}, {c.audio_dim}], "
                f"got {list(audio.shape)}"
            )
        if audio_drop is not None and tuple(audio_drop.shape) != (batch,):
            raise UserError(f"audio_drop must be [B] = [{batch}], got {list(audio_drop.shape)}")
        if text is not None and (c.text_dim is None or text.ndim != 3 or text.shape[-1] != c.text_dim):
            raise UserError(
                f"text must be [B, L, text_dim={c.text_dim}] and text_dim configured, got {list(text.shape)}"
            )

    # ------------------------------------------------------------------------------- construction and io

    @classmethod
    def from_preset(
        cls,
        name: str,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        **overrides: Any,
    ) -> DualForceModel:
        """`configs/model/<name>.yaml` (plus field overrides); `device="meta"` to count parameters."""
        from dualforce_core.config.loader import model_preset_path  # the config package imports this one

        data = {**yaml.safe_load(model_preset_path(name).read_text()), **overrides}
        return cls.from_config(_validated(data, f"preset {name!r}"), device=device, dtype=dtype)

    @classmethod
    def from_config(
        cls, config: ModelConfig, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DualForceModel:
        with torch.device(device or "cpu"):
            model = cls(config)
        return model.to(dtype=dtype) if dtype is not None else model

    def save_pretrained(self, directory: str | Path) -> Path:
        """`config.json` + `model.safetensors`; `from_pretrained` reads them back exactly."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"), indent=2))
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, out / WEIGHTS_FILE
        )
        return out

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> DualForceModel:
        src = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (src / name).is_file():
                raise UserError(f"{src} is not a saved DualForce model: {name} is missing")
        model = cls.from_config(checkpoint_config(src), device=device)
        model.load_state_dict(load_file(src / WEIGHTS_FILE, device=str(device or "cpu")))
        return model.to(dtype=dtype) if dtype is not None else model

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def dummy_inputs(
        self, batch_size: int = 2, latent_frames: int = 6, seed: int = 0, height: int = 8, width: int = 8
    ) -> dict[str, Tensor]:
        """Random forward kwargs; `height`/`width` are the latent grid (pixels / 8). Frame 0 has σ = 0 and is
        the `reference` (for `reference_concat` models), which slices of the frames keep."""
        if latent_frames < 1:
            raise UserError(f"latent_frames must be >= 1, got {latent_frames}")
        c = self.config
        g = torch.Generator().manual_seed(seed)
        param = next(self.parameters())
        dtype = param.dtype if param.dtype.is_floating_point else torch.float32
        audio_tokens = c.audio_tokens_per_video_frame * video_frames_of(
            latent_frames, c.video_frames_per_latent
        )

        def randn(*shape: int) -> Tensor:
            return torch.randn(*shape, generator=g).to(device=param.device, dtype=dtype)

        sigma = torch.rand(2, batch_size, latent_frames, generator=g).to(param.device)
        sigma[:, :, 0] = 0.0
        video = randn(batch_size, c.video_in_channels, latent_frames, height, width)
        reference = {"reference": video[:, :, :1].clone()} if c.reference_concat else {}
        return {
            "video": video,
            **reference,
            "struct": randn(batch_size, latent_frames, c.struct_tokens_per_frame, self.projector.token_dim),
            "audio": randn(batch_size, audio_tokens, c.audio_layers, c.audio_dim),
            "sigma_video": sigma[0],
            "sigma_struct": sigma[1],
        }
