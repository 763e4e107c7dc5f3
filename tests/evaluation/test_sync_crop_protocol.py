"""A report names SyncNet's crop (`eval.sync_crop`): Sync-C/D of two reports compare only when it matches.

For `aligned` it also records the framing, the smoothing and the dlib model file (path + sha256) whose
landmarks placed the crop, in report.json, report.md and the MLflow params.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
import pytest

from dualforce_core import paths
from dualforce_core.config import load_config
from dualforce_core.evaluation.config import SYNC_ALIGN
from dualforce_core.evaluation.evaluate import evaluate
from tests.evaluation.conftest import DATA_OVERRIDES, DATASET


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # a ground-truth-only evaluation of one clip (SyncNet on CPU, MLflow): 16-23 s each
@pytest.mark.parametrize("mode", ["box", "aligned"])
def test_report_records_the_sync_crop(mode: str) -> None:
    overrides = [*DATA_OVERRIDES, f"eval.sync_crop={mode}", "eval.samples=0"]
    report = evaluate(None, DATASET, load_config(None, overrides), ground_truth_only=True, limit=1, name=mode)
    protocol = report.record["protocol"]
    sync_crop = protocol["sync_crop"]
    assert report.mlflow_run_id is not None
    params = mlflow.MlflowClient(paths.mlflow_tracking_uri()).get_run(report.mlflow_run_id).data.params
    assert sync_crop["mode"] == params["sync_crop"] == mode
    assert f"syncnet_python, {mode} crop |" in report.markdown
    assert f"- SyncNet crop (`eval.sync_crop`): **{mode}**" in report.markdown
    crops_text = protocol["definitions"]["crops"]
    assert ("align_crop" in crops_text) == (mode == "aligned")  # the words agree with the recorded crop
    if mode == "box":
        assert sync_crop == {"mode": "box"} and "dlib_landmarks68" not in protocol["weights"]
        assert "sync_align" not in params and "sync_landmarks_sha256" not in params
        return
    fallbacks = sync_crop["box_fallback_videos"]  # one clip scored once (ground truth only)
    assert fallbacks in (0, 1)
    assert (fallbacks == 1) == any("dlib found no face" in note for note in report.record["notes"])
    assert sync_crop["align"] == SYNC_ALIGN.model_dump(mode="json")
    assert sync_crop["smoothing"]["method"] == "none"
    assert "HOG frontal detector" in sync_crop["detector"]
    landmarks = sync_crop["landmarks"]["dlib_landmarks68"]
    assert Path(landmarks["path"]).name == "shape_predictor_68_face_landmarks.dat"
    assert landmarks["sha256"] == _sha256(Path(landmarks["path"])) == params["sync_landmarks_sha256"]
    assert protocol["weights"]["dlib_landmarks68"] == landmarks  # in the network table too
    assert f"`shape_predictor_68_face_landmarks.dat` sha256 `{landmarks['sha256']}`" in report.markdown
    assert "scale 1.5, vx_ratio 0.0, vy_ratio 0.05" in report.markdown
    assert "landmark smoothing (`eval.sync_smoothing`): none" in report.markdown
    assert '"scale": 1.5' in params["sync_align"] and '"method": "none"' in params["sync_smoothing"]
