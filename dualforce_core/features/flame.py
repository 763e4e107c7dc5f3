"""FLAME parameters → the `flame_params` table: float32 [T, 53] per clip, laid out as `flame_layout` says.

`DataConfig.flame_extractor` picks the source:
- `sidecar`: ground truth from the clip's sidecar JSON (the synthetic dataset writes per-source-frame
  `flame` lists and its `fps`); clip frame i is source frame round((start_frame + i) · fps_src / 25).
- `onnx` / `torchscript`: a regressor network at the `flame_regressor` weights path. Input contract:
  float32 [N, 3, 224, 224], RGB in [0, 1] (the clip frames resized bilinearly); output [N, 53].
- `none`: nothing is written (the FLAME loss then switches itself off).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
import pyarrow as pa
import torch
from onnx import TensorProto, helper, numpy_helper

from dualforce_core.config import DualForceConfig
from dualforce_core.data.media import decode_video
from dualforce_core.data.tables import FLAME_PARAMS
from dualforce_core.data.tensor_codec import encode_tensor
from dualforce_core.errors import UserError
from dualforce_core.features.stage import ExtractReport, run_extractor
from dualforce_core.flame_layout import FLAME_DIM
from dualforce_core.timeline import FPS
from dualforce_core.weights import WeightsRegistry

INPUT_SIZE = 224
FRAME_BATCH = 16

Regressor = Callable[[np.ndarray], np.ndarray]


def build_stand_in(target: Path, seed: int) -> None:
    """A tiny random ONNX regressor with the real input contract: conv 4×4/4 → ReLU → pool → linear."""
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(0, 0.1, (8, 3, 4, 4)).astype(np.float32)
    fc_w = rng.normal(0, 0.1, (8, FLAME_DIM)).astype(np.float32)
    fc_b = np.zeros(FLAME_DIM, np.float32)
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["conv"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["flame"]),
    ]
    graph = helper.make_graph(
        nodes,
        "flame_regressor_stand_in",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("flame", TensorProto.FLOAT, ["N", FLAME_DIM])],
        [numpy_helper.from_array(a, n) for a, n in ((conv_w, "conv_w"), (fc_w, "fc_w"), (fc_b, "fc_b"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, target)


def load_regressor(kind: str, path: Path, device: str = "cpu") -> Regressor:
    """A function from network input [N, 3, 224, 224] to [N, 53], whichever runtime holds the network
    (`device` applies to TorchScript; ONNX runs on onnxruntime's CPU provider)."""
    if kind == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: np.asarray(session.run(None, {name: x})[0])
    module = torch.jit.load(str(path), map_location=device).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x).to(device)).float().cpu().numpy()

    return run


def prepare_frames(frames: np.ndarray) -> np.ndarray:
    """uint8 [T, H, W, 3] → float32 [T, 3, 224, 224] in [0, 1] (the regressor input contract)."""
    resized = np.stack([cv2.resize(f, (INPUT_SIZE, INPUT_SIZE)) for f in frames])
    return np.ascontiguousarray(resized.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def regress_frames(regressor: Regressor, frames: np.ndarray) -> np.ndarray:
    out = [regressor(prepare_frames(frames[s : s + FRAME_BATCH])) for s in range(0, len(frames), FRAME_BATCH)]
    params = np.concatenate(out).astype(np.float32)
    if params.shape != (len(frames), FLAME_DIM):
        raise UserError(f"the FLAME regressor returned {params.shape}; expected [{len(frames)}, {FLAME_DIM}]")
    return params


def sidecar_params(sidecar: Path, start_frame: int, num_frames: int) -> np.ndarray:
    """The clip's frames of the sidecar's `flame` lists, mapped from the 25 fps timeline to source frames."""
    try:
        record = json.loads(sidecar.read_text())
        flame = np.asarray(record["flame"], np.float32)
        fps = float(record.get("fps", FPS))
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"cannot read FLAME lists from sidecar {sidecar}: {err}") from None
    index = np.rint((start_frame + np.arange(num_frames)) * fps / FPS).astype(np.int64)
    if flame.ndim != 2 or flame.shape[1] != FLAME_DIM or index[-1] >= len(flame):
        raise UserError(
            f"sidecar {sidecar} has flame {list(flame.shape)}; clip needs source frames up to {index[-1]} "
            f"of {FLAME_DIM} values"
        )
    return flame[index]


class FlameStage:
    table = FLAME_PARAMS.name

    def __init__(self, kind: str, registry: WeightsRegistry, device: str = "cpu"):
        self.kind = kind
        self.device = device
        self.regressor: Regressor | None = None
        if kind == "sidecar":
            self.extractor_id = "flame:sidecar"
            self.clip_columns: tuple[str, ...] = ("sidecar_path", "start_frame", "num_frames")
        else:
            self.weights = registry.path("flame_regressor")
            self.extractor_id = f"flame:{kind}:{registry.fingerprint('flame_regressor')[:16]}"
            self.clip_columns = ("video", "num_frames")

    def load(self) -> None:
        if self.kind != "sidecar":
            self.regressor = load_regressor(self.kind, self.weights, self.device)

    def _params(self, clip: dict) -> np.ndarray | None:
        if self.kind == "sidecar":
            path = clip["sidecar_path"]
            return None if not path else sidecar_params(Path(path), clip["start_frame"], clip["num_frames"])
        assert self.regressor is not None, "load() first"
        return regress_frames(self.regressor, decode_video(clip["video"]))

    def process(self, clips: pa.Table) -> pa.Table:
        ids, datasets, blobs, shapes = [], [], [], []
        for clip in clips.to_pylist():
            params = self._params(clip)
            if params is None:
                continue
            blob, shape, _ = encode_tensor(params, "float32")
            ids.append(clip["clip_id"])
            datasets.append(clip["dataset"])
            blobs.append(blob)
            shapes.append(shape)
        return FLAME_PARAMS.rows(
            {
                "clip_id": ids,
                "dataset": datasets,
                "extractor_id": [self.extractor_id] * len(ids),
                "params": blobs,
                "shape": shapes,
            }
        )


def extract_flame_params(
    dataset: str, config: DualForceConfig, device: str = "cpu", progress: bool = True
) -> ExtractReport | None:
    """FLAME rows for `dataset` from the configured source; None (and a printed line) when it is `none`."""
    kind = config.data.flame_extractor
    if kind == "none":
        print(f"flame_params[{dataset}]: data.flame_extractor=none, no FLAME rows written (FLAME loss off)")
        return None
    report = run_extractor(
        FlameStage(kind, WeightsRegistry.from_config(config.weights), device),
        dataset,
        config.data.feature_batch_size,
        progress,
    )
    if report.without_source:
        print(
            f"flame_params[{dataset}]: {report.without_source} clips have no sidecar JSON, so no FLAME rows "
            f"for them (set data.flame_extractor=onnx|torchscript to regress them, or none)"
        )
    return report
