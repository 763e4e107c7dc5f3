"""Lip-sync InfoNCE: a window of predicted lip motion must pick out its own audio window.

Negatives are the same clip's audio shifted by whole windows (same speaker, same voice: only timing
differs, so the only way to win is to be in sync) and, optionally, other clips' audio at the same time.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dualforce_core.errors import UserError


class LipSyncOutput(NamedTuple):
    loss: Tensor
    accuracy: Tensor
    skipped: bool


def _window_encoder(in_features: int, hidden: int, embed_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, embed_dim))


class LipSyncContrastiveLoss(nn.Module):
    """InfoNCE between windows of lip structure [B, F, L] and audio [B, F, D_a], both per latent frame.

    Every start frame gives one anchor window of `window` frames (stride 1); its candidates are the
    aligned audio window (positive), the audio windows shifted by ±1..`max_shift` windows that fit in the
    clip, and with `cross_sample` the other clips' aligned audio windows. Anchors without any negative are
    left out; when no anchor has one (too few frames, single clip) the loss is a 0 that back-propagates and
    `skipped` is True. `accuracy` is the share of anchors whose positive scores highest (detached).
    """

    offsets: Tensor

    def __init__(
        self,
        lip_dim: int,
        audio_dim: int,
        window: int = 2,
        max_shift: int = 3,
        embed_dim: int = 128,
        hidden: int = 256,
        temperature: float = 0.07,
        cross_sample: bool = True,
    ) -> None:
        super().__init__()
        if window < 1 or max_shift < 1 or temperature <= 0:
            raise UserError(
                f"need window >= 1, max_shift >= 1, temperature > 0; got {window}, {max_shift}, {temperature}"
            )
        self.window = window
        self.max_shift = max_shift
        self.temperature = temperature
        self.cross_sample = cross_sample
        self.audio_norm = nn.LayerNorm(audio_dim)
        self.lip_encoder = _window_encoder(window * lip_dim, hidden, embed_dim)
        self.audio_encoder = _window_encoder(window * audio_dim, hidden, embed_dim)
        offsets = [0] + [sign * k for k in range(1, max_shift + 1) for sign in (-1, 1)]
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)

    def _embed(self, encoder: nn.Module, x: Tensor) -> Tensor:
        windows = x.unfold(1, self.window, 1).flatten(2)
        return nn.functional.normalize(encoder(windows), dim=-1)

    def forward(self, lip: Tensor, audio: Tensor) -> LipSyncOutput:
        if lip.ndim != 3 or audio.ndim != 3 or lip.shape[:2] != audio.shape[:2]:
            raise ValueError(
                f"need lip [B, F, L] and audio [B, F, D_a]; got {tuple(lip.shape)}, {tuple(audio.shape)}"
            )
        batch, frames = lip.shape[:2]
        anchors = frames - self.window + 1
        cross = self.cross_sample and batch > 1
        if anchors < 1 or (anchors <= self.window and not cross):
            # A zero linked to the inputs and heads, so every rank back-propagates through the same graph.
            link = sum(t.sum() for t in (lip, audio, *self.parameters()))
            zero = lip.new_zeros((), dtype=torch.float32) + link * 0.0
            return LipSyncOutput(zero, zero.detach(), True)

        lip_emb = self._embed(self.lip_encoder, lip.float())
        audio_emb = self._embed(self.audio_encoder, self.audio_norm(audio.float()))

        start = torch.arange(anchors, device=lip.device)
        candidate = start[:, None] + self.offsets[None, :] * self.window
        valid = (candidate >= 0) & (candidate < anchors)
        same = torch.einsum("bie,bje->bij", lip_emb, audio_emb)
        logits = same.gather(2, candidate.clamp(0, anchors - 1)[None].expand(batch, -1, -1))
        valid = valid[None].expand(batch, -1, -1)
        if cross:
            other = torch.einsum("bie,cie->bic", lip_emb, audio_emb)
            not_self = ~torch.eye(batch, dtype=torch.bool, device=lip.device)[:, None, :].expand(
                -1, anchors, -1
            )
            logits = torch.cat([logits, other], dim=2)
            valid = torch.cat([valid, not_self], dim=2)
        logits = (logits / self.temperature).masked_fill(~valid, float("-inf"))

        used = valid[..., 1:].any(dim=-1).float()
        per_anchor = torch.logsumexp(logits, dim=-1) - logits[..., 0]
        count = used.sum()
        loss = (per_anchor * used).sum() / count
        hits = (logits.argmax(dim=-1) == 0).float()
        accuracy = ((hits * used).sum() / count).detach()
        return LipSyncOutput(loss, accuracy, False)
