"""What the demo needs before the pipeline runs: a synthetic dataset folder and stand-in weights.

The weights are random stand-ins except the VAE and the mouth probe, which are the shipped stand-ins
fitted to these synthetic faces (`weights.fitted`): with a random VAE the latents erase the face and the
demo could not show a mouth moving. Everything is made only when missing, so a second `make demo`
re-uses it and the pipeline finds nothing new to ingest or extract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dualforce_core import paths
from dualforce_core.sample_data import generate_dataset
from dualforce_core.weights import init_random
from dualforce_core.weights.fitted import has_fitted, install_fitted
from dualforce_core.weights.registry import STAND_IN_MARKER

DEMO_DATASET = "sample"


@dataclass(frozen=True)
class DemoInputs:
    raw: Path
    weights: Path
    generated_videos: int  # 0: the dataset was already there
    wrote_weights: bool


def prepare_demo_inputs(
    clips: int, seconds: float, size: int, seed: int, identities: int | None = None
) -> DemoInputs:
    raw = paths.raw_dir() / DEMO_DATASET
    generated = 0
    if not any(raw.glob("videos/*.mp4")):
        generated = len(
            generate_dataset(raw, clips=clips, seed=seed, seconds=seconds, size=size, identities=identities)
        )
    weights = paths.weights_dir()
    wrote = not (weights / STAND_IN_MARKER).is_file()
    if wrote:
        init_random(weights, seed=seed)
    if not has_fitted(weights):
        install_fitted(weights)
        wrote = True
    return DemoInputs(raw, weights, generated, wrote)


def describe(inputs: DemoInputs) -> str:
    videos = sorted(inputs.raw.glob("videos/*.mp4"))
    size_mb = sum(v.stat().st_size for v in videos) / 1e6
    made = f"generated {inputs.generated_videos}" if inputs.generated_videos else "re-using"
    weights = "wrote" if inputs.wrote_weights else "re-using"
    return (
        f"{made} synthetic talking-face videos in {inputs.raw} ({len(videos)} mp4, {size_mb:.1f} MB)\n"
        f"{weights} stand-in weights in {inputs.weights}: RANDOM, except the VAE and the mouth probe, FITTED "
        "to these synthetic faces\n"
        "NOTE: every network in the demo is a stand-in; it shows that the pipeline learns lip sync on "
        "cartoon faces, nothing about real video."
    )
