"""The cut detector: measured on real content with known cuts, and its streaming rules."""

from __future__ import annotations

import numpy as np

from dualforce_core.curation import (
    CurationResult,
    CutConfig,
    CutDetector,
    FaceModels,
    cut_accuracy,
    detect_cuts,
)
from dualforce_core.curation import corpus as corpus_module
from tests.curation.curation_fixtures import Corpus


def test_cut_accuracy_on_real_media(models: FaceModels, corpus: Corpus, curated: CurationResult) -> None:
    """Megamind (4 hand-labelled cuts, fast animated motion), a 300-frame street scene with no cut, and
    23 hard cuts between animated photos and pieces of real video; plus the curation corpus (8 cuts)."""
    sets = corpus_module.cut_benchmark(models, seed=0)
    sets.append(("corpus", [], corpus.truth.cuts))
    totals = {"hits": 0.0, "false_alarms": 0.0, "misses": 0.0, "frames": 0.0}
    lines = []
    for name, frames, truth in sets:
        found = curated.cuts if name == "corpus" else detect_cuts(frames)
        count = curated.frames if name == "corpus" else len(frames)
        score = cut_accuracy(found, truth)
        for key in ("hits", "false_alarms", "misses"):
            totals[key] += score[key]
        totals["frames"] += count
        lines.append(
            f"{name}: {count} frames, {int(score['true_cuts'])} cuts, found {int(score['found'])}, "
            f"precision {score['precision']:.3f}, recall {score['recall']:.3f}"
        )
        if name == "vtest":
            assert score["false_alarms"] == 0, "a false cut in a street scene without cuts"
    precision = totals["hits"] / max(totals["hits"] + totals["false_alarms"], 1)
    recall = totals["hits"] / max(totals["hits"] + totals["misses"], 1)
    print("\ncut detector (exact frame):\n  " + "\n  ".join(lines))
    print(f"  all: {int(totals['frames'])} frames, precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.95


def test_first_frame_and_static_video_have_no_cut() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert detect_cuts([frame] * 30) == []


def test_min_shot_and_disabled() -> None:
    a = np.zeros((60, 80, 3), np.uint8)
    b = np.full((60, 80, 3), 255, np.uint8)
    flicker = [a] * 10 + [b, a, b] + [a] * 10
    assert detect_cuts(flicker, CutConfig(min_shot=5)) == [10]
    assert detect_cuts(flicker, CutConfig(enabled=False)) == []
    detector = CutDetector()
    for frame in [a] * 5 + [b] * 5:
        detector.update(frame)
    assert detector.cuts == [5] and len(detector.scores) == 10


def test_cut_accuracy_arithmetic() -> None:
    score = cut_accuracy([10, 20, 31], [10, 30, 40], tolerance=1)
    assert (score["hits"], score["false_alarms"], score["misses"]) == (2, 1, 1)
    assert score["precision"] == score["recall"] == 2 / 3
