"""Fitted stand-ins shipped with the code: a Wan-architecture VAE and the mouth probe, fitted to the synthetic data.

Fitting a VAE to ≥ 28 dB takes longer than the demo's CPU budget, so `dualforce weights fit` was run once on
a synthetic dataset and its outputs are committed here (`fitted/FIT.md` says exactly how, and how well).
`install_fitted` copies them into a weights folder where the registry looks for `wan_vae` and
`mouth_probe`, and labels them FITTED stand-ins in `STAND-INS.txt`: they carry the synthetic faces,
nothing else, and every report says so.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dualforce_core.errors import UserError
from dualforce_core.weights.registry import COMPONENTS, mark_fitted

FITTED_DIR = Path(__file__).parent / "fitted"
FITTED = {"wan_vae": "wan_vae", "mouth_probe": "mouth_probe.safetensors"}


def install_fitted(root: Path) -> list[str]:
    """Copy the committed fitted stand-ins into the weights folder `root`; returns the components written."""
    written = []
    for name, source in FITTED.items():
        src = FITTED_DIR / source
        if not src.exists():
            raise UserError(f"the fitted stand-in {src} is missing from this checkout")
        target = root / COMPONENTS[name].relpath
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("*.md"))
        else:
            shutil.copy2(src, target)
        mark_fitted(
            root, name, "committed fit to the synthetic dataset (dualforce_core/weights/fitted/FIT.md)"
        )
        written.append(name)
    return written
