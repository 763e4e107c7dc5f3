"""Every extractor: a second run writes nothing and skips the work; a new clip is the only one processed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dualforce_core.config import DualForceConfig
from dualforce_core.data.lance_store import read_rows, table_version
from dualforce_core.features.audio import extract_audio_features
from dualforce_core.features.flame import extract_flame_params
from dualforce_core.features.latents import extract_video_latents
from dualforce_core.features.stage import ExtractReport
from dualforce_core.features.struct import extract_struct_features
from tests.features.feature_fixtures import MakeClips, write_sidecar

EXTRACTORS: dict[str, Callable[..., ExtractReport | None]] = {
    "audio_features": extract_audio_features,
    "struct_features": extract_struct_features,
    "video_latents": extract_video_latents,
    "flame_params": extract_flame_params,
}

FRAMES = {"struct_features": 1}  # the full-size LivePortrait network: keep its CPU work small


@pytest.mark.parametrize("table", list(EXTRACTORS))
def test_second_run_is_a_no_op_and_new_clips_alone_are_processed(
    table: str, config: DualForceConfig, make_clips: MakeClips, tmp_path: Path
) -> None:
    sidecar = tmp_path / "src.json"
    write_sidecar(sidecar, 40)

    def run() -> ExtractReport:
        report = EXTRACTORS[table]("ds", config, progress=False)
        assert report is not None
        return report

    frames = FRAMES.get(table, 5)
    make_clips("ds", 2, num_frames=frames, sidecar=sidecar)
    first = run()
    assert (first.written, first.skipped) == (2, 0)
    version = table_version(table)

    again = run()
    assert (again.written, again.skipped, again.version) == (0, 2, version)
    assert read_rows(table, ["clip_id"]).num_rows == 2

    new = make_clips("ds", 1, num_frames=frames, first=2, sidecar=sidecar)
    third = run()
    assert (third.written, third.skipped, third.total) == (1, 2, 3)
    assert third.version is not None and version is not None and third.version > version
    rows = read_rows(table, ["clip_id", "extractor_id"]).to_pylist()
    assert len(rows) == 3 and new[0] in {r["clip_id"] for r in rows}
    assert {r["extractor_id"] for r in rows} == {first.extractor_id}


def test_a_different_extractor_id_re_extracts_and_replaces(
    config: DualForceConfig, make_clips: MakeClips
) -> None:
    make_clips("ds", 2)
    all_layers = extract_audio_features("ds", config, progress=False)
    last = config.model_copy(update={"data": config.data.model_copy(update={"hubert_layers": [-1]})})
    one_layer = extract_audio_features("ds", last, progress=False)
    assert one_layer.extractor_id != all_layers.extractor_id and one_layer.written == 2
    rows = read_rows("audio_features", ["extractor_id", "num_layers"]).to_pylist()
    assert rows == [{"extractor_id": one_layer.extractor_id, "num_layers": 1}] * 2
