"""Fitted stand-ins shipped with the repository: networks fitted to the synthetic faces, not real ones.

A 2-core CPU cannot fit a VAE that carries the face inside the demo's budget, so one fit was run once
(`dualforce weights fit`, the exact command in `fitted/synthetic64/README.md`) and its small weights are
committed. `install_fitted` copies them over the random stand-ins of a weights folder and labels each
one FITTED in `STAND-INS.txt`: reports still say stand-in, and nothing they produce is a real result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from dualforce_core.errors import UserError
from dualforce_core.weights.registry import COMPONENTS, STAND_IN_MARKER, WeightsRegistry, mark_fitted

FITTED_ROOT = Path(__file__).parent / "fitted" / "synthetic64"
FITTED_COMPONENTS = ("wan_vae", "mouth_probe")  # relative paths below FITTED_ROOT follow the registry's


def install_fitted(root: Path) -> list[str]:
    """Copy the shipped fitted stand-ins into the weights folder `root`; returns the components written.

    Refuses to overwrite a component that is not a stand-in (real weights are never replaced)."""
    registry = WeightsRegistry(root)
    written = []
    for name in FITTED_COMPONENTS:
        source = FITTED_ROOT / COMPONENTS[name].relpath
        if not source.exists():
            raise UserError(f"the shipped fitted {name} is missing from {source} (a partial checkout?)")
        target = registry.location(name)
        if target.exists() and not registry.is_stand_in(name):
            raise UserError(
                f"{target} holds a {name} that is not a stand-in (real weights?): not replacing it"
            )
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
        mark_fitted(registry.root, name, "shipped synthetic-64 fit (dualforce weights install-fitted)")
        written.append(name)
    return written


def has_fitted(root: Path) -> bool:
    """True when every shipped fitted component is installed in `root` (labelled in STAND-INS.txt)."""
    marker = root / STAND_IN_MARKER
    if not marker.is_file():
        return False
    text = marker.read_text()
    return all(f"{COMPONENTS[n].relpath} {n} FITTED stand-in, shipped" in text for n in FITTED_COMPONENTS)
