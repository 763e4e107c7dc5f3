"""HuBERT speech features → the `audio_features` table: hidden states [T_a, L, D], fp16, 50 Hz.

HuBERT's conv front end (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2) turns N samples into
floor((N - 400) / 320) + 1 tokens: for a clip of T frames at 25 fps (N = 640·T samples at 16 kHz) that is
2T - 1. We repeat the last token once so that T_a = 2T exactly and token 2f, 2f+1 belong to video frame f.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from dualforce_core.config import DualForceConfig
from dualforce_core.data.media import decode_audio
from dualforce_core.data.tables import AUDIO_FEATURES
from dualforce_core.data.tensor_codec import encode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.stage import ExtractReport, run_extractor
from dualforce_core.timeline import AUDIO_TOKENS_PER_FRAME, SAMPLE_RATE
from dualforce_core.weights import WeightsRegistry

PREPROCESSOR_FILE = "preprocessor_config.json"


def build_stand_in(target: Path, seed: int) -> None:
    """A tiny random HubertModel (3 hidden states × 32) with the default 50 Hz conv front end."""
    torch.manual_seed(seed)
    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    HubertModel(config).save_pretrained(target)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(target)


def wants_normalized_input(model_dir: Path, config: HubertConfig) -> bool:
    """The checkpoint's own `do_normalize`; without a preprocessor file, the wav2vec2-family rule
    (layer-norm feature extractors were trained on zero-mean unit-variance audio, group-norm ones not)."""
    preprocessor = model_dir / PREPROCESSOR_FILE
    if preprocessor.is_file():
        return bool(json.loads(preprocessor.read_text()).get("do_normalize", True))
    return config.feat_extract_norm == "layer"


def load_hubert(model_dir: Path) -> tuple[HubertModel, bool]:
    """The model (eval mode) and whether its input must be normalised."""
    model = HubertModel.from_pretrained(model_dir).eval()
    return model, wants_normalized_input(model_dir, model.config)


def normalize_waveform(waveform: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, with the 1e-7 floor of transformers' Wav2Vec2FeatureExtractor."""
    return ((waveform - waveform.mean()) / np.sqrt(waveform.var() + 1e-7)).astype(np.float32)


@torch.no_grad()
def hubert_features(
    model: HubertModel,
    waveforms: np.ndarray,
    num_frames: int,
    normalize: bool,
    layers: Sequence[int] | None = None,
) -> torch.Tensor:
    """[B, N] 16 kHz waveforms of `num_frames` video frames → [B, 2·num_frames, L, D] float32."""
    if normalize:
        waveforms = np.stack([normalize_waveform(w) for w in waveforms])
    device = next(model.parameters()).device
    states = model(torch.from_numpy(waveforms).float().to(device), output_hidden_states=True).hidden_states
    if layers is not None:
        bad = [i for i in layers if not -len(states) <= i < len(states)]
        if bad:
            raise UserError(
                f"data.hubert_layers {bad} out of range: the model has {len(states)} hidden states"
            )
        states = tuple(states[i] for i in layers)
    features = torch.stack(states, dim=2).float().cpu()  # [B, T, L, D]
    target = AUDIO_TOKENS_PER_FRAME * num_frames
    if features.shape[1] < target:
        pad = features[:, -1:].expand(-1, target - features.shape[1], -1, -1)
        features = torch.cat([features, pad], dim=1)
    return features[:, :target]


def clip_waveform(blob: bytes, num_frames: int, fps: float) -> np.ndarray:
    """The clip's audio at 16 kHz, cut or zero-padded to exactly num_frames / fps seconds."""
    samples, rate = decode_audio(blob)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        raise UserError(f"clip audio is {rate} Hz; HuBERT needs {SAMPLE_RATE} Hz (re-ingest the dataset)")
    expected = round(num_frames * SAMPLE_RATE / fps)
    return np.pad(samples[:expected], (0, max(0, expected - len(samples)))).astype(np.float32)


class AudioFeatureStage:
    table = AUDIO_FEATURES.name
    clip_columns: tuple[str, ...] = ("audio", "num_frames", "fps")

    def __init__(self, registry: WeightsRegistry, layers: list[int] | None, device: str = "cpu"):
        self.model_dir = registry.path("hubert")
        self.layers = layers
        self.device = device
        layer_tag = "all" if layers is None else ",".join(map(str, layers))
        self.extractor_id = f"hubert:{registry.fingerprint('hubert')[:16]}:layers={layer_tag}"
        self.model: HubertModel | None = None
        self.normalize = True

    def load(self) -> None:
        self.model, self.normalize = load_hubert(self.model_dir)
        self.model.to(self.device)  # type: ignore[arg-type]

    def process(self, clips: pa.Table) -> pa.Table:
        assert self.model is not None, "load() first"
        rows: dict[str, list] = {
            k: [] for k in ("clip_id", "dataset", "features", "shape", "num_layers", "dim")
        }
        by_length: dict[int, list[tuple[str, str, np.ndarray]]] = {}
        for clip in clips.to_pylist():
            wave = clip_waveform(clip["audio"], clip["num_frames"], clip["fps"])
            by_length.setdefault(clip["num_frames"], []).append((clip["clip_id"], clip["dataset"], wave))
        for num_frames, group in by_length.items():
            features = hubert_features(
                self.model, np.stack([g[2] for g in group]), num_frames, self.normalize, self.layers
            )
            for (clip_id, dataset, _), feats in zip(group, features):
                blob, shape, _ = encode_tensor(feats, "float16")
                rows["clip_id"].append(clip_id)
                rows["dataset"].append(dataset)
                rows["features"].append(blob)
                rows["shape"].append(shape)
                rows["num_layers"].append(shape[1])
                rows["dim"].append(shape[2])
        n = len(rows["clip_id"])
        return AUDIO_FEATURES.rows(
            {
                "clip_id": rows["clip_id"],
                "dataset": rows["dataset"],
                "extractor_id": [self.extractor_id] * n,
                "features": rows["features"],
                "shape": rows["shape"],
                "dtype": ["float16"] * n,
                "num_layers": rows["num_layers"],
                "dim": rows["dim"],
            }
        )


def extract_audio_features(
    dataset: str, config: DualForceConfig, device: str = "cpu", progress: bool = True
) -> ExtractReport:
    """HuBERT features for every clip of `dataset` not yet extracted with these weights and layers."""
    stage = AudioFeatureStage(WeightsRegistry.from_config(config.weights), config.data.hubert_layers, device)
    return run_extractor(stage, dataset, config.data.feature_batch_size, progress)
