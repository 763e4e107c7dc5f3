"""Bytes at the edges of the server: the uploaded portrait, PCM from the client, JPEG frames out."""

from __future__ import annotations

import base64
import binascii
import io
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dualforce_core.data.config import DataConfig
from dualforce_core.errors import UserError
from dualforce_core.inference.frontend import load_portrait

MAX_IMAGE_BYTES = 20 << 20
PCM_SCALE = 32768.0


def decode_portrait(image_b64: object, size: int, data: DataConfig) -> np.ndarray:
    """A base64 PNG/JPEG → uint8 [size, size, 3], cropped exactly as `dualforce generate` crops a file."""
    if not isinstance(image_b64, str) or not image_b64:
        raise UserError('"image" must be a base64-encoded PNG or JPEG string')
    if image_b64.startswith("data:"):  # a data URL straight from a browser's FileReader
        image_b64 = image_b64.partition(",")[2]
    if len(image_b64) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise UserError(f"image is larger than {MAX_IMAGE_BYTES >> 20} MiB")
    try:
        raw = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        raise UserError('"image" is not valid base64') from None
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        suffix = ".png"
    elif raw.startswith(b"\xff\xd8\xff"):
        suffix = ".jpg"
    else:
        raise UserError("image is neither a PNG nor a JPEG")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"portrait{suffix}"
        path.write_bytes(raw)
        return load_portrait(path, size, data)


def pcm_to_float(data: bytes) -> np.ndarray:
    """PCM s16le mono → float32 in [-1, 1); an odd byte count is a client bug, not something to guess at."""
    if len(data) % 2:
        raise UserError(
            f"PCM message of {len(data)} bytes: s16le audio has 2 bytes per sample, so the length must be even"
        )
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM_SCALE


def float_to_pcm(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0 - 1.0 / PCM_SCALE) * PCM_SCALE).astype(np.int16)


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
