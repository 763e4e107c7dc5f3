"""Identity metrics, CSIM and ACD, on ArcFace embeddings run through onnxruntime (or dlib's descriptors).

ArcFace (Deng et al., CVPR 2019), as insightface ships it (`w600k_r50.onnx` of buffalo_l): one input
[N, 3, 112, 112] of aligned RGB faces normalised (x − 127.5) / 127.5, one output [N, 512], the raw
(unnormalised) embedding. Our faces are centre/box crops resized to 112 (`crops.face_crops`), not
five-point aligned, which lowers absolute similarities a little for every method alike.

CSIM (cosine similarity of identity embeddings, introduced for talking heads by Zakharov et al.,
ICCV 2019, and used since by audio-driven portrait papers): the mean over generated frames of
cos(e(frame), e(reference portrait)). A video scored against its own frames gives exactly 1.

ACD (Average Content Distance, Tulyakov et al., MoCoGAN, CVPR 2018; the identity variant ACD-I of
Vougioukas et al., IJCV 2019): here the mean over corresponding frames i of ‖â_i − b̂_i‖₂, where â, b̂
are the L2-normalised identity embeddings of the two sequences (e.g. generated vs ground truth).
On unit vectors this is √(2 − 2·cos), so it lies in [0, 2] and 0 means the same identity.

The same two numbers are computed on dlib's 128-d face descriptors when `eval.identity_network=dlib`
(`dlib_faces`: a real network that runs offline, with its own detection and 5-point alignment). Those
carry a NaN row for a frame without a detected face; `identity_scores` leaves such frames out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from dualforce_core.errors import UserError

FACE_SIZE = 112
EMBEDDING_DIM = 512


def load_arcface(path: str | Path) -> ort.InferenceSession:
    """An onnxruntime CPU session on the ArcFace file, checked to take [N, 3, 112, 112]."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise UserError(f"cannot load ArcFace ONNX model {path}: {error}") from error
    inputs = session.get_inputs()
    if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, FACE_SIZE, FACE_SIZE]:
        shapes = [i.shape for i in inputs]
        raise UserError(f"{path} takes inputs {shapes}; an ArcFace model takes one [N, 3, 112, 112]")
    return session


def identity_embeddings(session: ort.InferenceSession, faces: Any, batch_size: int = 32) -> np.ndarray:
    """Raw ArcFace embeddings [N, 512] (float64) of uint8 RGB face crops [N, 112, 112, 3]."""
    crops = np.asarray(faces)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (FACE_SIZE, FACE_SIZE, 3):
        raise UserError(
            f"ArcFace needs uint8 RGB faces [N, {FACE_SIZE}, {FACE_SIZE}, 3], got {crops.dtype} {crops.shape} "
            "(metrics.crops.face_crops makes them)"
        )
    name = session.get_inputs()[0].name
    batches = []
    for start in range(0, crops.shape[0], batch_size):
        batch = crops[start : start + batch_size].astype(np.float32).transpose(0, 3, 1, 2)
        (embedding,) = session.run(None, {name: (batch - 127.5) / 127.5})
        if embedding.shape != (batch.shape[0], EMBEDDING_DIM):
            raise UserError(f"the ArcFace model returned {embedding.shape}, not [N, {EMBEDDING_DIM}]")
        batches.append(embedding.astype(np.float64))
    return np.concatenate(batches)


def _unit(embeddings: Any, name: str) -> np.ndarray:
    array = np.asarray(embeddings, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise UserError(f"{name} must be embeddings [N, D] with N ≥ 1, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if not np.isfinite(array).all() or (norms == 0).any():
        raise UserError(f"{name} contains a zero, NaN or Inf embedding")
    return array / norms


def csim_from_embeddings(generated: Any, reference: Any) -> float:
    """Mean cosine similarity of embeddings [N, D] to one reference embedding [D] (or [1, D])."""
    gen = _unit(generated, "generated embeddings")
    ref = _unit(np.asarray(reference, dtype=np.float64).reshape(1, -1), "reference embedding")
    if ref.shape[1] != gen.shape[1]:
        raise UserError(f"embedding sizes differ: {gen.shape[1]} vs {ref.shape[1]}")
    return float((gen @ ref[0]).mean())


def csim(session: ort.InferenceSession, generated_faces: Any, reference_face: Any) -> float:
    """CSIM of generated face crops [N, 112, 112, 3] to the reference portrait's crop [112, 112, 3]."""
    reference = identity_embeddings(session, np.asarray(reference_face)[None])
    return csim_from_embeddings(identity_embeddings(session, generated_faces), reference)


def acd(emb_a: Any, emb_b: Any) -> float:
    """Mean Euclidean distance between L2-normalised embeddings of corresponding frames, [N, D] each."""
    a, b = _unit(emb_a, "emb_a"), _unit(emb_b, "emb_b")
    if a.shape != b.shape:
        raise UserError(f"ACD compares corresponding frames: shapes {a.shape} and {b.shape} differ")
    return float(np.linalg.norm(a - b, axis=1).mean())


def identity_scores(real: Any, fake: Any) -> tuple[float, float, float]:
    """(CSIM, ACD, ground-truth CSIM) of a clip from per-frame embeddings [T, D] of both videos.

    The reference is the ground truth's frame 0 (the portrait a generator starts from). Frames whose row is
    NaN (no face found) are left out: CSIM over the frames with a face, ACD over frames with a face on both
    sides; NaN where nothing is left (or the reference has no face).
    """
    real_emb, fake_emb = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real_emb.shape != fake_emb.shape or real_emb.ndim != 2:
        raise UserError(
            f"identity embeddings must be [T, D] on both sides, got {real_emb.shape} and {fake_emb.shape}"
        )
    real_ok = np.asarray(np.isfinite(real_emb).all(axis=1))
    fake_ok = np.asarray(np.isfinite(fake_emb).all(axis=1))
    nan = float("nan")
    both = real_ok & fake_ok
    acd_value = acd(fake_emb[both], real_emb[both]) if both.any() else nan
    if not real_ok[0]:
        return nan, acd_value, nan
    reference = real_emb[0]
    csim_value = csim_from_embeddings(fake_emb[fake_ok], reference) if fake_ok.any() else nan
    return csim_value, acd_value, csim_from_embeddings(real_emb[real_ok], reference)


def write_stand_in(path: Path, seed: int) -> None:
    """A tiny random ONNX graph with ArcFace's contract: strided conv, ReLU, flatten, linear to 512."""
    rng = np.random.default_rng(seed)
    patch, channels = 16, 16
    cells = (FACE_SIZE // patch) ** 2 * channels
    initializers = [
        numpy_helper.from_array(rng.normal(0, 0.1, (channels, 3, patch, patch)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(np.zeros(channels, np.float32), "conv_b"),
        numpy_helper.from_array(
            rng.normal(0, cells**-0.5, (cells, EMBEDDING_DIM)).astype(np.float32), "fc_w"
        ),
        numpy_helper.from_array(np.zeros(EMBEDDING_DIM, np.float32), "fc_b"),
    ]
    nodes = [
        helper.make_node("Conv", ["input.1", "conv_w", "conv_b"], ["conv"], strides=[patch, patch]),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Flatten", ["relu"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "arcface_stand_in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, FACE_SIZE, FACE_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", EMBEDDING_DIM])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
