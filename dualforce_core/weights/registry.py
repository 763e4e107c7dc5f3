"""Local pretrained weights: where each network lives, what format it must be in, and who has it.

Nothing is ever downloaded. A missing file is one `MissingWeightsError` naming the component, the
expected path and format, and where people usually get it. `init_random` writes small randomly
initialised stand-ins in the real formats (and `STAND-INS.txt` saying so), so every command runs on
a machine without the real networks, through the same loading code.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dualforce_core import paths
from dualforce_core.errors import UserError

STAND_IN_MARKER = "STAND-INS.txt"


class MissingWeightsError(UserError, FileNotFoundError):
    """A pretrained component is not where the config says it is."""


@dataclass(frozen=True)
class WeightComponent:
    name: str
    relpath: str  # below the weights root
    is_dir: bool
    required: tuple[str, ...]  # files that must exist (for a directory component)
    fmt: str
    source: str
    stand_in: str | None = None  # "module:function(path, seed)" that writes a random stand-in

    def builder(self) -> Callable[[Path, int], None] | None:
        if self.stand_in is None:
            return None
        module, func = self.stand_in.split(":")
        return getattr(importlib.import_module(module), func)


COMPONENTS: dict[str, WeightComponent] = {
    c.name: c
    for c in (
        WeightComponent(
            "wan_vae",
            "wan_vae",
            True,
            ("config.json", "diffusion_pytorch_model.safetensors"),
            "diffusers AutoencoderKLWan directory (config.json + diffusion_pytorch_model.safetensors)",
            "the `vae/` folder of Wan-AI/Wan2.1-T2V-1.3B-Diffusers on the Hugging Face Hub",
            stand_in="dualforce_core.features.latents:build_stand_in",
        ),
        WeightComponent(
            "hubert",
            "hubert",
            True,
            ("config.json",),
            "transformers HubertModel directory (config.json + model.safetensors)",
            "facebook/hubert-large-ls960-ft (or facebook/hubert-base-ls960) on the Hugging Face Hub",
            stand_in="dualforce_core.features.audio:build_stand_in",
        ),
        WeightComponent(
            "liveportrait_motion",
            "liveportrait/motion_extractor.pth",
            False,
            (),
            "LivePortrait motion extractor state dict (torch.save, loaded with weights_only=True)",
            "liveportrait/base_models/motion_extractor.pth of KwaiVGI/LivePortrait on the Hugging Face Hub",
            stand_in="dualforce_core.features.liveportrait:build_stand_in",
        ),
        WeightComponent(
            "flame_regressor",
            "flame/flame_regressor.onnx",
            False,
            (),
            "FLAME expression/jaw regressor as ONNX (or TorchScript .pt named in weights.paths)",
            "an EMOCA / SMIRK / DECA encoder exported to ONNX by your team",
            stand_in="dualforce_core.features.flame:build_stand_in",
        ),
        WeightComponent(
            "inception",
            "metrics/inception-2015-12-05.pt",
            False,
            (),
            "InceptionV3 TorchScript of the StyleGAN / clean-fid FID protocol (torch.jit.load)",
            "inception-2015-12-05.pt from NVlabs' stylegan2-ada-pytorch metrics downloads",
            stand_in="dualforce_core.metrics.inception:write_stand_in",
        ),
        WeightComponent(
            "i3d",
            "metrics/i3d_torchscript.pt",
            False,
            (),
            "I3D Kinetics-400 TorchScript of the StyleGAN-V FVD protocol (torch.jit.load)",
            "i3d_torchscript.pt from the StyleGAN-V / stylegan-v metrics downloads",
            stand_in="dualforce_core.metrics.i3d:write_stand_in",
        ),
        WeightComponent(
            "syncnet",
            "metrics/syncnet_v2.model",
            False,
            (),
            "SyncNet v2 state dict (torch.load with weights_only=True)",
            "syncnet_v2.model from joonson/syncnet_python (download_model.sh)",
            stand_in="dualforce_core.metrics.syncnet:write_stand_in",
        ),
        WeightComponent(
            "arcface",
            "metrics/arcface.onnx",
            False,
            (),
            "ArcFace identity network as ONNX (112x112 aligned faces -> 512-d embedding)",
            "w600k_r50.onnx from insightface's buffalo_l model pack",
            stand_in="dualforce_core.metrics.identity:write_stand_in",
        ),
        WeightComponent(
            "mouth_probe",
            "metrics/mouth_probe.safetensors",
            False,
            (),
            "DualForce MouthProbe state dict (safetensors): frame -> jaw opening, for the mouth-audio r metric",
            "`dualforce weights fit --dataset NAME` fits it on a synthetic dataset's ground truth (optional)",
        ),
    )
}


class WeightsRegistry:
    """Resolves component paths: per-component overrides first, then `<root>/<relpath>`."""

    def __init__(self, root: str | Path | None = None, overrides: Mapping[str, str] | None = None):
        self.root = Path(root).resolve() if root else paths.weights_dir()
        self.overrides = dict(overrides or {})
        unknown = set(self.overrides) - set(COMPONENTS)
        if unknown:
            raise UserError(
                f"weights.paths names unknown components {sorted(unknown)}; known: {sorted(COMPONENTS)}"
            )

    @classmethod
    def from_config(cls, config: object) -> WeightsRegistry:
        root = getattr(config, "root", None)
        return cls(root, getattr(config, "paths", None))

    def location(self, name: str) -> Path:
        """Where the component should be, whether or not it is there."""
        if name not in COMPONENTS:
            raise UserError(f"unknown weights component {name!r}; known: {', '.join(COMPONENTS)}")
        override = self.overrides.get(name)
        return Path(override).resolve() if override else self.root / COMPONENTS[name].relpath

    def path(self, name: str) -> Path:
        """The component's path, checked: raises `MissingWeightsError` with instructions if absent."""
        component = COMPONENTS.get(name)
        location = self.location(name)
        assert component is not None
        missing = self._missing(component, location)
        if missing:
            raise MissingWeightsError(
                f"weights for '{name}' not found: expected {missing}\n"
                f"  format: {component.fmt}\n"
                f"  usually from: {component.source}\n"
                f"  put it there, set weights.paths.{name}=PATH in the config, or point DUALFORCE_WEIGHTS at a "
                f"folder laid out like `dualforce weights init-random` writes (random stand-ins, for tests only)."
            )
        return location

    @staticmethod
    def _missing(component: WeightComponent, location: Path) -> Path | None:
        if component.is_dir:
            if not location.is_dir():
                return location
            for required in component.required:
                if not (location / required).is_file():
                    return location / required
            return None
        return None if location.is_file() else location

    def is_stand_in(self, name: str) -> bool:
        """True when the component was written by `init_random` (a random network, not a real result)."""
        location = self.location(name)
        for parent in location.parents:
            marker = parent / STAND_IN_MARKER
            if marker.is_file():
                relative = location.relative_to(parent).as_posix()
                return any(
                    line.split()[0] == relative
                    for line in marker.read_text().splitlines()
                    if line.strip() and not line.startswith("#")
                )
        return False

    def fingerprint(self, name: str) -> str:
        """sha256 of the component's files (reports record exactly which weights produced them)."""
        location = self.path(name)
        files = sorted(p for p in location.rglob("*") if p.is_file()) if location.is_dir() else [location]
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode())
            with file.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def init_random(out: str | Path, names: Iterable[str] | None = None, seed: int = 0) -> list[str]:
    """Write random stand-ins for every component that has a builder; returns the names written."""
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or COMPONENTS:
        component = COMPONENTS[name]
        builder = component.builder()
        if builder is None:
            continue
        target = root / component.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        builder(target, seed)
        written.append(name)
    lines = [
        "# RANDOM STAND-INS. These networks are randomly initialised, small, and useless for real results.",
        "# They exist so tests and the demo run through the real loading code. Replace them with real weights.",
        *(f"{COMPONENTS[n].relpath} {n}" for n in written),
    ]
    (root / STAND_IN_MARKER).write_text("\n".join(lines) + "\n")
    return written


def mark_fitted(root: Path, name: str, how: str) -> None:
    """Label a component in `root/STAND-INS.txt` as a fitted stand-in (it stays a stand-in everywhere)."""
    marker = root / STAND_IN_MARKER
    relpath = COMPONENTS[name].relpath
    lines = marker.read_text().splitlines() if marker.is_file() else ["# STAND-INS: not the real networks."]
    kept = [line for line in lines if not line.strip() or line.startswith("#") or line.split()[0] != relpath]
    kept.append(f"{relpath} {name} FITTED stand-in, {how}: not the real network")
    marker.write_text("\n".join(kept) + "\n")
