"""TorchScript in and out: the real FID and FVD detectors are shipped only as TorchScript files."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from dualforce_core.errors import UserError


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    """`torch.jit.load` on CPU in eval mode; the real FID / FVD detectors are only shipped as TorchScript."""
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, but these files exist only in this format.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except Exception as error:
            raise UserError(f"cannot load TorchScript network {path}: {error}") from error
    return module.eval()


def save_torchscript(module: nn.Module, path: Path) -> None:
    """Script and save a stand-in in the format of the real detector files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), str(path))
