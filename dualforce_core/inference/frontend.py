"""Inputs of a generation run: reference portrait → frame-0 latent and structure; speech → HuBERT tokens.

The portrait is cropped the way ingestion crops training clips, so the model sees faces framed as it was
trained on: `data.crop_mode` / `data.face_scale` (one box), or for `crop_mode=track` the LivePortrait-aligned
crop of the training clips, `align_portrait` with the checkpoint's recorded `AlignConfig` (the same
`align_crop` that cut the clips). Speech of any container PyAV reads is resampled to
16 kHz mono. HuBERT runs on bounded windows (`hubert_window_s`, plus `hubert_context_s` of audio on each
side that is computed and thrown away), so a long talk never builds one huge attention and a live
stream gets features as soon as a window's right context has arrived. Features near a window edge
therefore differ slightly from a whole-clip pass; the context margin keeps that small.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from transformers import HubertModel

from dualforce_core.config import DualForceConfig
from dualforce_core.curation import FaceModels, align_portrait
from dualforce_core.data.config import DataConfig
from dualforce_core.data.crop import center_box, detect_face_box, load_detector
from dualforce_core.data.media import MediaError, decode_audio_track, to_square
from dualforce_core.errors import UserError
from dualforce_core.features.audio import normalize_waveform
from dualforce_core.features.liveportrait import MotionExtractor
from dualforce_core.features.struct import motion_params
from dualforce_core.models import StructTokenProjector
from dualforce_core.motion_layout import MOTION_DIM
from dualforce_core.preprocessing import Preprocessing, StructNormalisation
from dualforce_core.timeline import (
    AUDIO_TOKENS_PER_FRAME,
    FPS,
    SAMPLE_RATE,
    SAMPLES_PER_TOKEN,
    video_frames_for_samples,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".mp4", ".m4a")
RECEPTIVE_FIELD = 400  # samples behind HuBERT's first token
SILENCE_PEAK = 1e-4


def portrait_settings(config: DualForceConfig, record: Preprocessing | None) -> tuple[int, DataConfig]:
    """(square size, crop settings) for a model's portrait: what it was trained on, unless
    `inference.size` asks for another size; a random preset (no record) follows the config."""
    size = config.inference.size or (record.size if record else config.data.size)
    if record is None:
        return size, config.data
    update: dict[str, object] = {"crop_mode": record.crop_mode, "face_scale": record.face_scale}
    if record.align is not None:  # crop_mode=track: the framing the training clips were cut with
        update["curation"] = config.data.curation.model_copy(update={"align": record.align})
    return size, config.data.model_copy(update=update)


_FACE_MODELS_LOCK = threading.Lock()
"""dlib's detector and predictor are not documented as thread-safe; `serve` decodes portraits in threads."""


@lru_cache(maxsize=2)
def _face_models(detector: str, upsample: int) -> FaceModels:
    """dlib's networks, loaded once per process (~1.3 s): `serve` crops every session's portrait."""
    return FaceModels(detector, upsample=upsample)


def aligned_portrait(rgb: np.ndarray, size: int, data: DataConfig, name: str) -> np.ndarray:
    """crop_mode=track: `align_portrait` (dlib's largest face, 68 landmarks, `align_crop`) with the
    recorded `data.curation.align`; no face is one UserError naming the image."""
    curation = data.curation
    with _FACE_MODELS_LOCK:
        models = _face_models(curation.detector, curation.upsample)
        try:
            crop, _, _ = align_portrait(rgb, size, curation.align, models)
        except UserError:
            raise UserError(
                f"no face found in the portrait {name}: this model was trained on aligned face crops "
                "(data.crop_mode=track), so use a photo with one clearly visible, roughly frontal face at "
                f"least ~{curation.min_face_px:g} px across"
            ) from None
    return crop


def load_portrait(path: Path, size: int, data: DataConfig) -> np.ndarray:
    """uint8 [size, size, 3] RGB, cropped as training clips are (a face crop mode needs a face)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"reference image {path} must be one of {', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"reference image {path} does not exist")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise UserError(f"reference image {path} cannot be decoded (corrupt or not an image)")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    if data.crop_mode == "track":
        return aligned_portrait(rgb, size, data, str(path))
    if data.crop_mode == "none":
        box = None
    elif data.crop_mode == "center":
        box = center_box(width, height)
    else:
        box = detect_face_box([rgb], load_detector(data), data.face_scale)
        if box is None:
            raise UserError(
                f"no usable face in {path} (data.crop_mode={data.crop_mode}); use a frontal portrait, or "
                "data.crop_mode=center if the face already fills the image"
            )
    return to_square(rgb, box, size)


def load_speech(path: Path, max_seconds: float) -> np.ndarray:
    """Float32 mono 16 kHz samples; refuses formats we do not take, silence and over-long tracks."""
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise UserError(f"audio {path}: unsupported format {path.suffix!r}; use {', '.join(AUDIO_SUFFIXES)}")
    if not path.is_file():
        raise UserError(f"audio {path} does not exist")
    try:
        samples, _ = decode_audio_track(path, SAMPLE_RATE)
    except MediaError as err:
        if err.reason == "no_audio":
            raise UserError(f"audio {path} is empty: {err.detail}") from None
        raise UserError(f"audio {path} cannot be used: {err.detail}") from None
    check_speech(samples, str(path), max_seconds)
    return samples


def check_speech(samples: np.ndarray, name: str, max_seconds: float) -> None:
    seconds = len(samples) / SAMPLE_RATE
    if len(samples) < RECEPTIVE_FIELD:
        raise UserError(f"audio {name} is empty ({seconds * 1000:.0f} ms of samples)")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise UserError(f"audio {name} is silent: there is no speech to animate")
    if seconds > max_seconds:
        raise UserError(
            f"audio {name} is {seconds:.1f} s long, more than inference.max_audio_s={max_seconds:g}; cut it "
            "or raise the limit"
        )


class HubertStreamer:
    """Windowed HuBERT: `push` waveform pieces, get the tokens whose right context has arrived; `flush`
    at the end returns the rest, padded (last token repeated) to 2 tokens per covered video frame."""

    def __init__(self, model: HubertModel, normalize: bool, window_s: float, context_s: float) -> None:
        self.model = model
        self.normalize = normalize
        self.window = max(1, round(window_s * FPS * AUDIO_TOKENS_PER_FRAME))
        self.context = round(context_s * FPS * AUDIO_TOKENS_PER_FRAME)
        self.samples = np.zeros(0, np.float32)
        self.sample_offset = 0  # global index of samples[0], a multiple of SAMPLES_PER_TOKEN
        self.emitted = 0
        self.received = 0
        self._last: Tensor | None = None

    def push(self, samples: np.ndarray) -> Tensor:
        self.samples = np.concatenate([self.samples, np.asarray(samples, np.float32).reshape(-1)])
        self.received += len(samples)
        out = []
        while self._sample_end(self.emitted + self.window + self.context) <= self.received:
            out.append(self._tokens(self.emitted + self.window, self.emitted + self.window + self.context))
        return self._cat(out)

    def flush(self) -> Tensor:
        target = AUDIO_TOKENS_PER_FRAME * video_frames_for_samples(self.received)
        if self.emitted >= target:
            return self._cat([])
        if self.received - self._sample_start() < RECEPTIVE_FIELD:
            raise UserError("audio too short for HuBERT (less than 25 ms of samples)")
        available = (self.received - self._sample_start() - RECEPTIVE_FIELD) // SAMPLES_PER_TOKEN + 1
        start = self._first_token()
        tokens = self._tokens(min(target, start + available), None)
        if self.emitted < target:
            assert self._last is not None, "HuBERT produced at least one token"
            tokens = torch.cat([tokens, self._last.expand(target - self.emitted, -1, -1)])
            self.emitted = target
        return tokens

    def _first_token(self) -> int:
        return max(0, self.emitted - self.context)

    def _sample_start(self) -> int:
        return self._first_token() * SAMPLES_PER_TOKEN

    @staticmethod
    def _sample_end(token_end: int) -> int:
        """Samples needed for tokens [0, token_end)."""
        return (token_end - 1) * SAMPLES_PER_TOKEN + RECEPTIVE_FIELD

    @torch.no_grad()
    def _tokens(self, keep_end: int, run_end: int | None) -> Tensor:
        """Run HuBERT on tokens [first, run_end) (None: every sample held) and keep [emitted, keep_end)."""
        first = self._first_token()
        lo = first * SAMPLES_PER_TOKEN - self.sample_offset
        hi = len(self.samples) if run_end is None else self._sample_end(run_end) - self.sample_offset
        wave = self.samples[lo:hi]
        if self.normalize:
            wave = normalize_waveform(wave)
        device = next(self.model.parameters()).device
        states = self.model(torch.from_numpy(wave)[None].to(device), output_hidden_states=True).hidden_states
        features = torch.stack(states, dim=2)[0].float().cpu()
        kept = features[self.emitted - first : keep_end - first]
        self.emitted += kept.shape[0]
        self._last = features[-1:]
        drop = self._first_token() * SAMPLES_PER_TOKEN - self.sample_offset
        self.samples, self.sample_offset = self.samples[drop:], self.sample_offset + drop
        return kept

    def _cat(self, parts: list[Tensor]) -> Tensor:
        if parts:
            return torch.cat(parts)
        config = self.model.config
        return torch.zeros(0, config.num_hidden_layers + 1, config.hidden_size)


def reference_struct(
    projector: StructTokenProjector,
    portrait: np.ndarray,
    extractor: MotionExtractor | None,
    normalisation: StructNormalisation | None,
    motion: np.ndarray | None = None,
) -> Tensor:
    """Frame-0 structure tokens [1, 1, K, D]: the portrait's raw motion (given, else measured by the
    extractor) normalised exactly as training normalised its dataset; with neither, the normalised zero
    vector, i.e. the training dataset's mean face. Without a record (a random preset) motion stays raw."""
    if motion is None and extractor is not None:
        motion = motion_params(extractor, portrait[None])[0].numpy()
    if motion is None:
        normalised = np.zeros((1, MOTION_DIM))
    elif normalisation is None:
        normalised = np.asarray(motion, np.float64)
    else:
        normalised = normalisation.normalise(motion)
    return projector.pack(torch.as_tensor(normalised, dtype=torch.float32).reshape(1, 1, MOTION_DIM))
