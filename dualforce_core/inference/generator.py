"""Live generation: speech arrives in pieces, decoded video frames leave in chunks.

`StreamingGenerator.stream(portrait, audio_chunks)` is the one code path behind `dualforce generate`,
the benchmark and live use. It yields the reference frame as soon as the first HuBERT window is in,
then every chunk as soon as the audio its window (including `audio_lookahead`) needs has arrived, and
stops when the video covers the audio. Audio tokens no later pass can read are dropped, so a live
stream holds a bounded amount of everything: audio, K/V cache and VAE causal cache.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.models.autoencoders.autoencoder_kl_wan import AutoencoderKLWan
from torch import Tensor
from transformers import HubertModel

from dualforce_core.config import DualForceConfig
from dualforce_core.errors import UserError
from dualforce_core.features.audio import load_hubert
from dualforce_core.features.latents import encode_latents, load_vae
from dualforce_core.features.liveportrait import MotionExtractor, load_motion_extractor
from dualforce_core.inference.frontend import HubertStreamer, reference_struct
from dualforce_core.inference.provenance import provenance_notes
from dualforce_core.inference.sampler import AudioTrack, ChunkedSampler
from dualforce_core.inference.vae_stream import StreamingVaeDecoder, to_uint8_frames
from dualforce_core.models import DualForceModel, StructTokenProjector
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.timeline import latent_frames_covering, video_frames_for_samples
from dualforce_core.weights import WeightsRegistry
from dualforce_core.weights.registry import MissingWeightsError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class FrameChunk:
    frames: np.ndarray  # uint8 [T, H, W, 3]
    first_frame: int  # index of frames[0] in the output video (25 fps)
    latents: Tensor  # normalised latents [1, 16, F, h, w] behind these frames
    struct: Tensor  # structure tokens [1, F, K, D]


@dataclass
class StreamStats:
    """Where the time went; `first_chunk_s` is from the start of `stream` to the first generated chunk."""

    frames: int = 0
    chunks: int = 0
    model_s: float = 0.0
    decode_s: float = 0.0
    audio_s: float = 0.0
    wall_s: float = 0.0
    first_chunk_s: float | None = None
    cache_bytes: int = 0
    peak_memory_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0


@dataclass
class GenerationInputs:
    """The prepared reference: cropped portrait, its frame-0 latent and structure tokens."""

    portrait: np.ndarray
    latent: Tensor
    struct: Tensor


class StreamingGenerator:
    def __init__(
        self,
        model: DualForceModel,
        vae: AutoencoderKLWan,
        hubert: HubertModel,
        hubert_normalize: bool,
        config: DualForceConfig,
        motion_extractor: MotionExtractor | None = None,
        preprocessing: Preprocessing | None = None,
        no_kv_cache: bool = False,
    ) -> None:
        self.model, self.vae, self.hubert = model, vae, hubert
        self.hubert_normalize = hubert_normalize
        self.config = config
        self.motion_extractor = motion_extractor
        self.preprocessing = preprocessing
        self.no_kv_cache = no_kv_cache
        self.stats = StreamStats()

    @classmethod
    def from_config(
        cls,
        config: DualForceConfig,
        model: DualForceModel,
        no_kv_cache: bool = False,
        preprocessing: Preprocessing | None = None,
    ) -> StreamingGenerator:
        """Load the VAE, HuBERT and (when its weights are there) the LivePortrait extractor from the registry.

        `preprocessing` is the trained checkpoint's record (`Preprocessing.load(checkpoint)`): it decides how
        the reference structure and the latents are normalised. Only a random preset runs without one.
        """
        inf = config.inference
        registry = WeightsRegistry.from_config(config.weights)
        device = torch.device(inf.device)
        vae = load_vae(registry.path("wan_vae")).to(device)  # type: ignore[arg-type]
        hubert, normalize = load_hubert(registry.path("hubert"))
        layers, dim = hubert.config.num_hidden_layers + 1, hubert.config.hidden_size
        if (layers, dim) != (model.config.audio_layers, model.config.audio_dim):
            raise UserError(
                f"the HuBERT at {registry.path('hubert')} gives {layers} hidden states of width {dim}; the model "
                f"expects {model.config.audio_layers} x {model.config.audio_dim} (random stand-ins match only "
                "the tiny preset)"
            )
        notes = [] if preprocessing is None else provenance_notes(preprocessing, registry, vae)
        extractor: MotionExtractor | None = None
        if preprocessing is not None and preprocessing.struct.uses_sidecar:
            notes.append(
                "the model was trained on sidecar ground-truth motion (a synthetic stand-in): the portrait's "
                "reference structure is the training dataset's mean unless the caller gives its motion"
            )
        else:
            try:
                extractor = load_motion_extractor(registry.path("liveportrait_motion")).to(device)
            except MissingWeightsError:
                notes.append("no LivePortrait weights: the reference structure is the dataset mean")
        model.set_attention_backend(inf.attention_backend)
        generator = cls(
            model.to(device, DTYPES[inf.dtype]),
            vae,
            hubert.to(device),  # type: ignore[arg-type]
            normalize,
            config,
            extractor,
            preprocessing,
            no_kv_cache,
        )
        generator.stats.notes.extend(notes)
        return generator

    def prepare(self, portrait: np.ndarray, reference_motion: np.ndarray | None = None) -> GenerationInputs:
        """uint8 [S, S, 3] cropped portrait → its normalised frame-0 latent and structure tokens.

        `reference_motion`: the portrait's raw 70-d motion when the caller knows it (a dataset clip's first
        frame); otherwise the LivePortrait extractor measures it, or the dataset mean stands in.
        """
        if portrait.ndim != 3 or portrait.shape[0] != portrait.shape[1] or portrait.shape[0] % 16:
            raise UserError(
                f"portrait must be a square uint8 [S, S, 3] with S a multiple of 16, got {portrait.shape}"
            )
        latent = encode_latents(self.vae, portrait[None, None])
        projector = StructTokenProjector.from_config(self.model.config)
        normalisation = None if self.preprocessing is None else self.preprocessing.struct
        struct = reference_struct(projector, portrait, self.motion_extractor, normalisation, reference_motion)
        return GenerationInputs(portrait, latent, struct)

    def stream(
        self,
        portrait: np.ndarray,
        audio_chunks: Iterable[np.ndarray],
        reference_motion: np.ndarray | None = None,
    ) -> Iterator[FrameChunk]:
        """Yield decoded frames chunk by chunk while 16 kHz mono float32 speech pieces arrive."""
        start = time.perf_counter()
        self.stats = StreamStats(notes=list(self.stats.notes))
        inputs = self.prepare(portrait, reference_motion)
        inf = self.config.inference
        streamer = HubertStreamer(
            self.hubert, self.hubert_normalize, inf.hubert_window_s, inf.hubert_context_s
        )
        audio = AudioTrack(streamer.push(np.zeros(0, np.float32)))
        sampler = ChunkedSampler(self.model, inf, self.config.diffusion, no_kv_cache=self.no_kv_cache)
        decoder = StreamingVaeDecoder(self.vae)
        state = _StreamState()
        for piece in audio_chunks:
            t0 = time.perf_counter()
            audio.append(streamer.push(piece))
            self.stats.audio_s += time.perf_counter() - t0
            state.samples += len(piece)
            yield from self._drain(inputs, audio, sampler, decoder, state, start)
        if state.samples == 0:
            raise UserError("no audio arrived: there is nothing to animate")
        t0 = time.perf_counter()
        audio.append(streamer.flush())
        self.stats.audio_s += time.perf_counter() - t0
        audio.ended = True
        state.total_frames = video_frames_for_samples(state.samples)
        latent_frames = latent_frames_covering(state.total_frames)
        chunks = -(-(latent_frames - 1) // sampler.chunk_frames)
        sampler.total_chunks = max(chunks, state.chunks)
        yield from self._drain(inputs, audio, sampler, decoder, state, start)
        self.stats.wall_s = time.perf_counter() - start
        self.stats.cache_bytes = sampler.cache.allocated_bytes()
        self.stats.peak_memory_bytes = peak_memory(self.model)

    def _drain(
        self,
        inputs: GenerationInputs,
        audio: AudioTrack,
        sampler: ChunkedSampler,
        decoder: StreamingVaeDecoder,
        state: _StreamState,
        start: float,
    ) -> Iterator[FrameChunk]:
        model = sampler.model
        if not state.started:
            if not audio.ended and audio.end < model.audio_span(0, 1)[1]:
                return
            with self._timer("model_s"):
                sampler.start(inputs.latent, inputs.struct, audio)
            with self._timer("decode_s"):
                frames = to_uint8_frames(decoder.decode(inputs.latent))
            state.started = True
            yield self._emit(frames, inputs.latent, inputs.struct, state)
        while state.total_frames is None or state.emitted < state.total_frames:
            if sampler.total_chunks is not None and state.chunks >= sampler.total_chunks:
                break
            if not audio.ended and audio.end < sampler.tokens_needed():
                return
            with self._timer("model_s"):
                chunk = sampler.next_chunk(audio)
            with self._timer("decode_s"):
                frames = to_uint8_frames(decoder.decode(chunk.video))
            state.chunks += 1
            if self.stats.first_chunk_s is None:
                self.stats.first_chunk_s = time.perf_counter() - start
            self.stats.chunks = state.chunks
            if not self.no_kv_cache:
                audio.drop_before(
                    model.audio_span(sampler.chunk_first_frame(state.chunks), sampler.chunk_frames)[0]
                )
            yield self._emit(frames, chunk.video, chunk.struct, state)

    def _emit(self, frames: Tensor, latents: Tensor, struct: Tensor, state: _StreamState) -> FrameChunk:
        if state.total_frames is not None:
            frames = frames[: max(0, state.total_frames - state.emitted)]
        chunk = FrameChunk(frames.numpy(), state.emitted, latents, struct)
        state.emitted += len(frames)
        self.stats.frames = state.emitted
        return chunk

    @contextmanager
    def _timer(self, counter: str) -> Iterator[None]:
        """Add the block's wall time to `stats.<counter>` (after a CUDA sync, so kernels are counted)."""
        sync = next(self.model.parameters()).device.type == "cuda"
        t0 = time.perf_counter()
        yield
        if sync:
            torch.cuda.synchronize()
        setattr(self.stats, counter, getattr(self.stats, counter) + time.perf_counter() - t0)


@dataclass
class _StreamState:
    samples: int = 0
    started: bool = False
    chunks: int = 0
    emitted: int = 0
    total_frames: int | None = None


def peak_memory(model: torch.nn.Module) -> int:
    """Peak accelerator memory on CUDA, else the process's peak resident set (bytes)."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
