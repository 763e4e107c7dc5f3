"""Tensors as Lance cells: raw little-endian bytes + shape + dtype name.

Raw bytes (not npy/safetensors) keep a cell readable by any reader that knows the three columns, and
bfloat16, which numpy lacks, travels as its int16 bit pattern, so every round trip is bit-exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from dualforce_core.errors import UserError

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
# numpy dtype that carries each torch dtype's bits; bfloat16 rides as int16.
_CARRIERS: dict[str, np.dtype] = {
    "float32": np.dtype("<f4"),
    "float16": np.dtype("<f2"),
    "bfloat16": np.dtype("<i2"),
}


def _check_dtype(dtype_name: str) -> torch.dtype:
    if dtype_name not in DTYPES:
        raise UserError(f"unsupported tensor dtype {dtype_name!r}; supported: {', '.join(DTYPES)}")
    return DTYPES[dtype_name]


def encode_tensor(
    tensor: torch.Tensor | np.ndarray, dtype: str | torch.dtype
) -> tuple[bytes, list[int], str]:
    """Cast to `dtype` (round to nearest) and return (bytes, shape, dtype name)."""
    name = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
    torch_dtype = _check_dtype(name)
    t = torch.as_tensor(tensor).detach().to("cpu", torch_dtype).contiguous()
    carrier = t.view(torch.int16) if name == "bfloat16" else t
    data = carrier.numpy().astype(_CARRIERS[name], copy=False).tobytes()
    return data, list(t.shape), name


def decode_tensor(blob: bytes, shape: Sequence[int], dtype_name: str) -> torch.Tensor:
    """Inverse of `encode_tensor`: a tensor of `dtype_name` with exactly the stored bits."""
    torch_dtype = _check_dtype(dtype_name)
    carrier = _CARRIERS[dtype_name]
    expected = int(np.prod(shape, dtype=np.int64)) * carrier.itemsize
    if len(blob) != expected:
        raise UserError(
            f"tensor cell holds {len(blob)} bytes but shape {list(shape)} of {dtype_name} needs {expected}"
        )
    array = np.frombuffer(blob, dtype=carrier).reshape(tuple(shape)).copy()
    t = torch.from_numpy(array.astype(carrier.newbyteorder("="), copy=False))
    return t.view(torch_dtype) if dtype_name == "bfloat16" else t.to(torch_dtype)
