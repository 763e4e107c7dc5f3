"""Fit the mouth-opening probe (`metrics.mouth`) on a synthetic dataset's ground truth."""

from __future__ import annotations

from pathlib import Path

from dualforce_core.errors import UserError
from dualforce_core.metrics.mouth import MouthReader, fit_mouth_reader
from dualforce_core.weights.fit_data import split_clips


def fit_mouth_probe(dataset: str, out: Path, steps: int, max_clips: int = 256, seed: int = 0) -> MouthReader:
    """Train on the train identities' frames and sidecar `mouth_open`; held-out r measured; saved to `out`."""
    train = [
        (c.frames, c.mouth_open) for c in split_clips(dataset, "train", max_clips) if c.mouth_open is not None
    ]
    heldout = [(c.frames, c.mouth_open) for c in split_clips(dataset, "test", 32) if c.mouth_open is not None]
    if not train or not heldout:
        raise UserError(
            f"dataset {dataset!r} has no sidecar `mouth_open` ground truth on both splits: the mouth probe is "
            "fitted on the synthetic dataset (dualforce sample-data)"
        )
    reader = fit_mouth_reader(train, heldout, steps=steps, seed=seed)
    reader.save(out)
    return reader
