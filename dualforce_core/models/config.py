"""Model hyper-parameters. Presets (`tiny`, `small`, `base`) are YAML files under `configs/model/`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from dualforce_core.config_model import ConfigModel
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.timeline import AUDIO_TOKENS_PER_FRAME, TEMPORAL_STRIDE

BridgeStrategy = Literal["shallow_focus", "distributed", "progressive", "custom", "full", "none"]
# Saved by checkpoints from before the attention backend became a per-run choice
# (`DualForceModel.set_attention_backend`); dropped on reading, so those checkpoints load anywhere.
RETIRED_FIELDS = frozenset({"attention_backend"})


def saved_fields(data: dict[str, Any]) -> dict[str, Any]:
    """A saved model config (`config.json`, a training checkpoint's meta) without its retired fields."""
    return {k: v for k, v in data.items() if k not in RETIRED_FIELDS}


class ModelConfig(ConfigModel):
    preset: str = "custom"

    # Video tower: Wan-VAE latents, (1, 2, 2) patches.
    video_in_channels: int = 16
    patch_size: tuple[int, int, int] = (1, 2, 2)
    video_dim: int = 64
    video_heads: int = 2
    video_layers: int = 2
    video_ffn_dim: int = 256
    # Wan 2.1 I2V's conditioning: every latent frame's patch embedding also sees the clean reference latent
    # (frame 0), channel-concatenated, so the face is copied through a skip rather than found by attention
    # across frames; a tiny tower otherwise loses the portrait chunk after chunk.
    reference_concat: bool = False

    # Structure tower: LivePortrait implicit keypoints, `struct_tokens_per_frame` tokens per latent frame.
    struct_dim: int = 64
    struct_heads: int = 2
    struct_layers: int = 2
    struct_ffn_dim: int = 256
    num_keypoints: int = 21
    struct_tokens_per_frame: int = 21
    video_frames_per_latent: int = TEMPORAL_STRIDE

    # Audio conditioning: HuBERT hidden states (all layers), 50 Hz, time-major.
    audio_dim: int = 768
    audio_layers: int = 13
    audio_tokens_per_video_frame: int = AUDIO_TOKENS_PER_FRAME
    audio_lookahead: int = Field(1, ge=0, description="latent frames a frame may look ahead in the audio")
    audio_past: int = Field(1, ge=0, description="latent frames of past audio context a frame also sees")

    # Attention.
    chunk_frames: int = Field(3, ge=1)
    causal: bool = Field(True, description="block-causal attention; off only to compare against Wan")
    qk_norm: bool = True
    eps: float = 1e-6
    rope_theta: float = 10000.0
    freq_dim: int = 256

    # Bridge between the towers.
    bridge_strategy: BridgeStrategy = "shallow_focus"
    bridge_layers: list[int] | None = None

    # Optional text cross-attention (off by default; lets Wan weights initialise the video tower).
    text_dim: int | None = None

    # FLAME alignment head: expression + jaw.
    flame_dim: int = FLAME_DIM

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        for tower in ("video", "struct"):
            dim, heads = getattr(self, f"{tower}_dim"), getattr(self, f"{tower}_heads")
            if dim % heads:
                raise ValueError(f"{tower}_dim ({dim}) must be divisible by {tower}_heads ({heads})")
            if (dim // heads) % 2:
                raise ValueError(f"{tower} head dim ({dim // heads}) must be even for rotary embeddings")
        if self.patch_size[0] != 1:
            raise ValueError(
                "patch_size must not merge latent frames (first entry 1): σ and chunks are per frame"
            )
        if self.bridge_strategy == "custom" and not self.bridge_layers:
            raise ValueError("bridge_strategy 'custom' needs bridge_layers")
        if self.bridge_layers and not all(0 <= i < self.video_layers for i in self.bridge_layers):
            raise ValueError(f"bridge_layers must be video layer indices in [0, {self.video_layers})")
        if self.num_keypoints % self.struct_tokens_per_frame:
            raise ValueError(
                f"struct_tokens_per_frame ({self.struct_tokens_per_frame}) must divide "
                f"num_keypoints ({self.num_keypoints})"
            )
        return self
