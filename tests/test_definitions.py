from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from dualforce_core.sample_data import generate_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_and_raw_videos_materialises(dualforce_home: Path) -> None:
    from definitions import defs

    generate_dataset(dualforce_home / "raw" / "sample", clips=2, seed=0, seconds=1.0, size=64)
    (dualforce_home / "raw" / "sample" / "notes.txt").write_text("not a video")
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("datasets", ["sample"])
    raw_videos = defs.get_assets_def("raw_videos")
    result = dg.materialize([raw_videos], partition_key="sample", instance=instance, resources=defs.resources)
    assert result.success
    metadata = result.asset_materializations_for_node("raw_videos")[0].metadata
    assert metadata["videos"].value == 2
    assert metadata["other_files"].value == 1


def test_the_code_location_loads_without_preview_or_beta_warnings() -> None:
    """Partitioned blocking checks are preview in Dagster 1.13: `partitioned_asset_check` silences that one
    warning at its source (tests/pipelines pin the behaviour it stands for); nothing else may warn."""
    code = (
        "import warnings, dagster as dg\n"
        "warnings.simplefilter('error', dg.PreviewWarning)\n"
        "warnings.simplefilter('error', dg.BetaWarning)\n"
        "import definitions\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
