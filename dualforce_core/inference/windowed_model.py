"""The model fed only the HuBERT tokens a streaming pass can see, not the whole track from time 0.

Handing the model the full track on every pass would cost O(track length) per pass (the audio layer mix
and every block's audio K/V projections); for a 10-minute track that dwarfs the chunk itself. This
subclass takes a slice starting at global token `audio_offset` (an attribute the sampler sets before
each pass) and hands it to `DualForceModel.forward` as its `audio_offset`, so the masks, and therefore
the outputs, are those of the full track, and a cache keys the slice's audio K/V by its global place.
"""

from __future__ import annotations

from typing import Any

import torch

from dualforce_core.models import DualForceModel, DualForceOutput


class WindowedAudioModel(DualForceModel):
    audio_offset: int = 0

    @classmethod
    def wrap(cls, model: DualForceModel) -> WindowedAudioModel:
        """The same network, parameters shared (not copied), with the offset-aware audio window."""
        if isinstance(model, cls):
            return model
        with torch.device("meta"):
            windowed = cls(model.config)
        windowed.load_state_dict(model.state_dict(keep_vars=True), assign=True)
        windowed.set_attention_backend(model.attention_backend)
        return windowed.train(model.training)

    def forward(self, *args: Any, **kwargs: Any) -> DualForceOutput:
        kwargs.setdefault("audio_offset", self.audio_offset)
        return super().forward(*args, **kwargs)

    def audio_span(self, first_frame: int, frames: int) -> tuple[int, int]:
        """Global token range [start, end) that latent frames first_frame..first_frame+frames-1 may attend."""
        c = self.config
        bound = (
            c.audio_tokens_per_video_frame
            * c.video_frames_per_latent
            * (first_frame + frames + c.audio_lookahead + 2)
        )
        index = torch.arange(first_frame, first_frame + frames)
        window = DualForceModel.audio_window(self, index, bound, 1, None)[0, :, :-1].any(0).nonzero()
        if window.numel() == 0:
            return 0, 0
        return int(window[0]), int(window[-1]) + 1
