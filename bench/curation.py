"""Measure face-track curation on the real-media corpus: `python bench/curation.py`.

Prints (and with `--out`, writes as JSON) for each tracking variant: whether it reproduces the expected
outcome of every shot, the crop-centring error against the ground truth, and CPU milliseconds per frame
by stage; then the cut detector's precision and recall on the corpus, the hand-labelled Megamind trailer,
a street scene without cuts, and spliced shots (seed 0, which the thresholds were chosen on, and the
held-out seeds 1–3). Needs Debian's opencv-doc and espeak-ng, like the tests.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dualforce_core.curation import corpus as corpus_module
from dualforce_core.curation.config import CurationConfig
from dualforce_core.curation.curate import CurationResult, curate_frames
from dualforce_core.curation.faces import FaceModels
from dualforce_core.curation.scenes import cut_accuracy, detect_cuts

BASE = CurationConfig(min_frames=16)
VARIANTS: dict[str, dict[str, Any]] = {
    "default (correlation tracker, Savitzky-Golay, detect every 5)": {},
    "landmark re-fit tracker": {"tracker": "landmarks"},
    "no smoothing": {"smoothing": {"method": "none"}},
    "one-euro smoothing": {"smoothing": {"method": "one_euro"}},
    "detect every frame": {"detect_every": 1},
    "detect every 10": {"detect_every": 10},
}


def outcome_matches(result: CurationResult, truth: corpus_module.Truth) -> bool:
    """Every 'clip' shot is exactly one clip, every other shot is covered by rejects of its expected reason."""
    clips = [(c.start, c.end) for c in result.clips]
    expected = [(s["start"], s["end"]) for s in truth.shots if s["expect"] == "clip"]
    if clips != expected:
        return False
    for shot in truth.shots:
        if shot["expect"] == "clip":
            continue
        inside = [r for r in result.rejects if shot["start"] <= r.start < shot["end"]]
        if {r.reason for r in inside} != {shot["expect"]}:
            return False
    return True


def per_frame_ms(stats: dict[str, float]) -> dict[str, float]:
    frames = stats["frames"]
    out = {name[:-2]: 1000 * value / frames for name, value in stats.items() if name.endswith("_s")}
    if stats.get("detections"):
        out["detect_per_call"] = 1000 * stats["detect_s"] / stats["detections"]
    return out


def run(out: Path | None, cnn: bool) -> dict[str, Any]:
    models = FaceModels("hog", 1)
    report: dict[str, Any] = {"variants": {}, "cuts": {}}
    with tempfile.TemporaryDirectory() as scratch:
        path, truth = corpus_module.build_corpus(Path(scratch), models)
        frames = corpus_module.decode_rgb(path)
    variants = dict(VARIANTS)
    if cnn:
        variants["MMOD CNN detector"] = {"detector": "cnn"}
    for name, update in variants.items():
        config = CurationConfig.model_validate({**BASE.model_dump(), **update})
        use = models if config.detector == "hog" else FaceModels("cnn", config.upsample)
        started = time.perf_counter()
        result = curate_frames(frames, config, use)
        wall = time.perf_counter() - started
        errors = corpus_module.centring_errors(result.clips, truth, config.align)
        row: dict[str, Any] = {
            "outcome_as_expected": outcome_matches(result, truth),
            "clips": len(result.clips),
            "eye_error_px_mean": float(errors[:, 0].mean()),
            "eye_error_px_max": float(errors[:, 0].max()),
            "mouth_error_px_mean": float(errors[:, 1].mean()),
            "mouth_error_px_max": float(errors[:, 1].max()),
            "side_error_pct_mean": float(100 * np.abs(errors[:, 2]).mean()),
            "cpu_ms_per_frame": per_frame_ms(result.stats),
            "wall_s": wall,
        }
        report["variants"][name] = row
        print(
            f"{name}: as expected {row['outcome_as_expected']}; eye {row['eye_error_px_mean']:.2f}/"
            f"{row['eye_error_px_max']:.2f} px, mouth {row['mouth_error_px_mean']:.2f}/"
            f"{row['mouth_error_px_max']:.2f} px (mean/max at {config.crop_size} px), side "
            f"{row['side_error_pct_mean']:.2f}%; CPU ms/frame "
            + ", ".join(f"{k} {v:.1f}" for k, v in row["cpu_ms_per_frame"].items())
        )
    sets = corpus_module.cut_benchmark(models, seed=0)
    sets.append(("corpus", frames, truth.cuts))
    for seed in (1, 2, 3):
        held = corpus_module.cut_benchmark(models, seed=seed)[2]
        sets.append((f"splice seed {seed} (held out)", held[1], held[2]))
    for name, clip_frames, cuts in sets:
        score = cut_accuracy(detect_cuts(clip_frames), cuts)
        score["frames"] = float(len(clip_frames))
        report["cuts"][name] = score
        print(
            f"cuts, {name}: {len(clip_frames)} frames, {len(cuts)} cuts, precision {score['precision']:.3f}, "
            f"recall {score['recall']:.3f}"
        )
    if out is not None:
        out.write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the measurements as JSON here")
    parser.add_argument("--cnn", action="store_true", help="also run dlib's MMOD CNN detector (slow on CPU)")
    args = parser.parse_args()
    run(args.out, args.cnn)


if __name__ == "__main__":
    main()
