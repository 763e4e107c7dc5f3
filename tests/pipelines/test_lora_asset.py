"""`lora_adapter` on a tiny partition: a real Pipes launch of a LoRA run over a saved tiny base, then the
base | adapted sample; the adapter lands in PEFT's layout and the base is never written."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import dagster as dg
import pytest
from graph_fixtures import DATASET, instance_with_partition, materialization, prepare_home, resources
from mlflow import MlflowClient
from safetensors import safe_open

from assets import ALL_ASSETS, ALL_CHECKS, LORA_ASSETS
from assets.training_set import training_set
from dualforce_core import paths
from dualforce_core.lora.files import ADAPTER_CONFIG, ADAPTER_WEIGHTS, KEY_PREFIX
from dualforce_core.models import DualForceModel
from pipelines.launchers import train_command
from tests.records import write_identity_record


class LoraRun:
    def __init__(self, home: Path, base: Path, base_bytes: dict[str, bytes], instance: dg.DagsterInstance):
        self.home, self.base, self.base_bytes, self.instance = home, base, base_bytes, instance

    def materialize(self, base_checkpoint: Path) -> dg.ExecuteInProcessResult:
        lora_config = {"base_checkpoint": str(base_checkpoint), "max_steps": 2}
        return dg.materialize(
            [*ALL_ASSETS, *LORA_ASSETS, *ALL_CHECKS],
            partition_key=DATASET,
            instance=self.instance,
            resources=resources(self.home),
            selection=dg.AssetSelection.assets("lora_adapter"),
            run_config={"ops": {"lora_adapter": {"config": lora_config}}},
            raise_on_error=False,
        )


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoraRun]:
    root = tmp_path_factory.mktemp("lora")
    home, base = root / "home", root / "base"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.HOME_ENV, str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv(paths.WEIGHTS_ENV, raising=False)
        prepare_home(home)
        write_identity_record(DualForceModel.from_preset("tiny").save_pretrained(base), 64)
        base_bytes = {p.name: p.read_bytes() for p in sorted(base.iterdir())}
        instance = instance_with_partition()
        upstream = dg.materialize(
            [*ALL_ASSETS, *ALL_CHECKS],
            partition_key=DATASET,
            instance=instance,
            resources=resources(home),
            selection=dg.AssetSelection.groups("data") | dg.AssetSelection.assets(training_set),
        )
        assert upstream.success
        yield LoraRun(home, base, base_bytes, instance)


@pytest.fixture(scope="module")
def adapted(lora_run: LoraRun) -> dict[str, object]:
    result = lora_run.materialize(lora_run.base)
    assert result.success
    return materialization(result, "lora_adapter")


@pytest.fixture
def shared_home(lora_run: LoraRun, monkeypatch: pytest.MonkeyPatch) -> LoraRun:
    """The module's data root (the MLflow store lives there) instead of the per-test one."""
    monkeypatch.setenv(paths.HOME_ENV, str(lora_run.home))
    return lora_run


@pytest.mark.slow  # the module's Dagster materialisations: ~10 s upstream, ~35 s with the LoRA run
def test_adapter_is_written_in_peft_layout_with_its_run_reported(
    shared_home: LoraRun, adapted: dict[str, object]
) -> None:
    adapter = Path(str(adapted["adapter_dir"]))
    assert sorted(p.name for p in adapter.iterdir() if p.name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS)) == [
        ADAPTER_CONFIG,
        ADAPTER_WEIGHTS,
    ]
    with safe_open(str(adapter / ADAPTER_WEIGHTS), framework="pt") as f:
        keys = list(f.keys())
        stored = sum(f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[1] for k in keys)
    assert keys and all(k.startswith(KEY_PREFIX) and ".lora_" in k for k in keys)
    assert adapted["adapter_bytes"] == (adapter / ADAPTER_WEIGHTS).stat().st_size
    assert adapted["trainable_parameters"] == stored
    assert adapted["step"] == 2 and math.isfinite(float(str(adapted["last_loss"])))
    assert Path(str(adapted["base_checkpoint"])) == shared_home.base.resolve()
    assert "final_model" not in adapted
    run = MlflowClient(paths.mlflow_tracking_uri()).get_run(str(adapted["mlflow_run_id"]))
    assert run.info.status == "FINISHED"
    assert run.data.params["lora.trainable_parameters"] == str(stored)
    assert run.data.tags["dualforce.kind"] == "lora"


@pytest.mark.slow  # the module's Dagster materialisations: ~10 s upstream, ~35 s with the LoRA run
def test_side_by_side_sample_has_both_halves_and_the_audio(adapted: dict[str, object]) -> None:
    video = Path(str(adapted["sample_video"]))
    with av.open(str(video)) as container:
        (stream,) = container.streams.video
        assert len(container.streams.audio) == 1
        assert stream.codec_context.width == 2 * stream.codec_context.height  # base | adapted, square frames
        assert sum(1 for _ in container.decode(video=0)) == 9
    assert "data:image/png;base64," in str(adapted["sample_preview"])
    assert Path(str(adapted["sample_preview_path"])).is_file()
    assert float(str(adapted["sample_mean_abs_diff"])) > 0.0  # two steps at lr 1e-2 move the adapter


@pytest.mark.slow  # the module's Dagster materialisations: ~10 s upstream, ~35 s with the LoRA run
def test_base_checkpoint_is_left_untouched(lora_run: LoraRun, adapted: dict[str, object]) -> None:
    assert adapted["adapter_dir"]
    assert {p.name: p.read_bytes() for p in sorted(lora_run.base.iterdir())} == lora_run.base_bytes


@pytest.mark.slow  # the module's Dagster materialisations: ~10 s upstream, ~35 s with the LoRA run
def test_missing_base_checkpoint_fails_before_any_launch(lora_run: LoraRun, tmp_path: Path) -> None:
    result = lora_run.materialize(tmp_path / "no-model")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert "config.json is missing" in str(failure.step_failure_data.error)


def test_launch_command_carries_the_base_checkpoint() -> None:
    command = train_command("ds", Path("/runs/x"), "lora.yaml", [], nproc=1, base_checkpoint=Path("/base"))
    assert command == [
        sys.executable, "-m", "pipelines.train_entry", "--dataset", "ds", "--run-dir", "/runs/x",
        "--config", "lora.yaml", "--base-checkpoint", "/base",
    ]  # fmt: skip
