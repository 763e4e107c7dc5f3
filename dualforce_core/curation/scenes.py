"""Hard-cut detection, causal and streaming: one small score per frame against an adaptive threshold.

Score of frame t = max(Bhattacharyya distance of the HSV histograms of frames t−1 and t,
`PIXEL_WEIGHT` × mean absolute difference of their 32×24 grey thumbnails in [0, 1]). The histogram
term sees a change of content even under motion; the thumbnail term sees a cut between two shots of the
same colours (two framings of one scene), which a histogram cannot.

Frame t starts a new shot when its score is at least `min_score` and at least `k` times the median score
of the previous `window` frames (so steady motion — pans, a waving tree, a walking crowd — raises the bar
by itself), and the previous cut is at least `min_shot` frames back. The first frame is never a cut.

Gradual transitions (dissolves, fades) are not cuts here; the identity check of the face tracks splits
those when the person changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import cv2
import numpy as np

from dualforce_core.curation.config import CutConfig

HSV_BINS = (16, 4, 4)
THUMB = (32, 24)
PIXEL_WEIGHT = 4.0


class CutDetector:
    """Feed frames in order with `update`; it says whether each one starts a new shot."""

    def __init__(self, config: CutConfig | None = None) -> None:
        self.config = config or CutConfig()
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self._recent: deque[float] = deque(maxlen=self.config.window)
        self._since_cut = 0
        self.scores: list[float] = []
        self.cuts: list[int] = []

    def features(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        height, width = rgb.shape[:2]
        small_w = min(self.config.width, width)
        small = cv2.resize(
            rgb, (small_w, max(1, round(small_w * height / width))), interpolation=cv2.INTER_AREA
        )
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HSV_BINS), [0, 180, 0, 256, 0, 256])
        hist = (hist / max(float(hist.sum()), 1.0)).astype(np.float32)
        grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), THUMB, interpolation=cv2.INTER_AREA)
        return hist, grey.astype(np.float32) / 255.0

    def score(self, a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
        colour = float(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA))
        pixels = float(np.abs(a[1] - b[1]).mean())
        return max(colour, PIXEL_WEIGHT * pixels)

    def update(self, rgb: np.ndarray) -> bool:
        """True when this frame is the first of a new shot."""
        current = self.features(rgb)
        index = len(self.scores)
        previous, self._previous = self._previous, current
        if previous is None:
            self.scores.append(0.0)
            return False
        value = self.score(previous, current)
        self.scores.append(value)
        self._since_cut += 1
        config = self.config
        baseline = float(np.median(self._recent)) if self._recent else 0.0
        cut = (
            config.enabled
            and value >= config.min_score
            and value >= config.k * baseline
            and (not self.cuts or self._since_cut >= config.min_shot)
        )
        if cut:
            self.cuts.append(index)
            self._since_cut = 0
            self._recent.clear()
        else:
            self._recent.append(value)
        return cut


def detect_cuts(frames: Iterable[np.ndarray], config: CutConfig | None = None) -> list[int]:
    """Indices of the frames that start a new shot."""
    detector = CutDetector(config)
    for frame in frames:
        detector.update(frame)
    return detector.cuts


def cut_accuracy(found: Iterable[int], truth: Iterable[int], tolerance: int = 0) -> dict[str, float]:
    """Precision, recall and F1 of detected cut frames against the true ones (± `tolerance` frames)."""
    found_list, truth_list = sorted(set(found)), sorted(set(truth))
    unmatched = list(truth_list)
    hits = 0
    for frame in found_list:
        match = next((t for t in unmatched if abs(t - frame) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    precision = hits / len(found_list) if found_list else 1.0
    recall = hits / len(truth_list) if truth_list else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "true_cuts": float(len(truth_list)),
        "found": float(len(found_list)),
        "hits": float(hits),
        "false_alarms": float(len(found_list) - hits),
        "misses": float(len(truth_list) - hits),
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
