from __future__ import annotations

import numpy as np
import pytest
import torch

from dualforce_core.data.tensor_codec import decode_tensor, encode_tensor
from dualforce_core.errors import UserError


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_round_trip_is_bit_exact(dtype: str) -> None:
    source = torch.randn(3, 4, 5) * 100
    blob, shape, name = encode_tensor(source, dtype)
    back = decode_tensor(blob, shape, name)
    expected = source.to(getattr(torch, dtype))
    assert name == dtype and shape == [3, 4, 5] and back.dtype == expected.dtype
    assert torch.equal(back, expected)
    assert len(blob) == expected.numel() * expected.element_size()


def test_bfloat16_keeps_specials_and_accepts_numpy_and_torch_dtypes() -> None:
    source = np.array([0.0, -0.0, np.inf, -np.inf, 1e-40, 65504.0, 3.14159], np.float32)
    blob, shape, name = encode_tensor(source, torch.bfloat16)
    back = decode_tensor(blob, shape, name)
    assert name == "bfloat16"
    assert torch.equal(back.view(torch.int16), torch.from_numpy(source).to(torch.bfloat16).view(torch.int16))


def test_wrong_byte_count_and_unknown_dtype_are_user_errors() -> None:
    blob, _, _ = encode_tensor(torch.zeros(4), "float16")
    with pytest.raises(UserError, match=r"holds 8 bytes .* needs 32"):
        decode_tensor(blob, [8], "float32")
    with pytest.raises(UserError, match="unsupported tensor dtype"):
        encode_tensor(torch.zeros(2), "int8")
