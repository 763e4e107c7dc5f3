"""`lora_adapter`: a LoRA adapter fine-tuned on this dataset over a chosen base checkpoint, via Dagster Pipes.

The base is run config (`base_checkpoint`), not an upstream asset: personalising means training on one
person's dataset on top of a model trained elsewhere. The launch is the full training's (MLflow run
created here, `pipelines.train_entry` with `--base-checkpoint`); the asset then renders one clip with
the base and with the adapted model side by side, so the UI shows what the adapter changed.
"""

import base64
from pathlib import Path

import dagster as dg

from dualforce_core.config import load_config
from dualforce_core.lora.files import LORA_SUBDIR
from dualforce_core.lora.sample import lora_side_by_side
from dualforce_core.models.model import checkpoint_config
from pipelines.failures import user_errors_as_failures
from pipelines.launchers import launch_training
from pipelines.partitions import datasets_partitions
from pipelines.resources import REPO_ROOT, ComputeSettings, DualForceSettings, MlflowSettings


class LoraAdapterConfig(dg.Config):
    """Relative paths are resolved against the repository root."""

    base_checkpoint: str  # a `save_pretrained` directory, e.g. a `dualforce_checkpoint` run's `final/`
    config_path: str = "configs/train/lora_tiny.yaml"  # must have `lora.enabled: true`
    max_steps: int = 0  # 0: the config's `train.max_steps`
    overrides: list[str] = []  # dotted `key=value`, after the `settings` resource's overrides
    sample_scale: float = 1.0  # the adapter's scale in the side-by-side sample


def _resolve(path: str) -> Path:
    return (REPO_ROOT / path).resolve() if not Path(path).is_absolute() else Path(path)


@dg.asset(
    deps=["training_set"],
    partitions_def=datasets_partitions,
    group_name="lora",
    pool="gpu",
    kinds={"pytorch", "mlflow"},
)
def lora_adapter(
    context: dg.AssetExecutionContext,
    config: LoraAdapterConfig,
    settings: DualForceSettings,
    compute: ComputeSettings,
    mlflow: MlflowSettings,
    pipes_client: dg.PipesSubprocessClient,
) -> dg.MaterializeResult:
    """Adapter in PEFT layout under `$DUALFORCE_HOME/runs/<dataset>/<mlflow run>/lora/`, plus a base | adapted
    sample video of the dataset's first clip."""
    dataset = context.partition_key
    base = _resolve(config.base_checkpoint)
    config_path = _resolve(config.config_path)
    steps = [f"train.max_steps={config.max_steps}"] if config.max_steps > 0 else []
    overrides = [*settings.all_overrides(), *config.overrides, *steps]
    with user_errors_as_failures():
        checkpoint_config(base)  # a missing or broken base fails here, before an MLflow run exists
        run_config = load_config(str(config_path), overrides)
    if not run_config.lora.enabled:
        raise dg.Failure(f"{config_path} does not set lora.enabled: true", allow_retries=False)
    run_dir, trained = launch_training(
        context,
        pipes_client,
        compute,
        mlflow,
        experiment=run_config.train.experiment,
        run_name=f"{dataset}-lora-{context.run.run_id[:8]}",
        kind="lora",
        config_path=str(config_path),
        overrides=overrides,
        base_checkpoint=base,
    )
    with user_errors_as_failures():
        sample = lora_side_by_side(
            base, run_dir / LORA_SUBDIR, dataset, run_config, run_dir / "samples", config.sample_scale
        )
    encoded = base64.b64encode(sample.preview.read_bytes()).decode()
    return dg.MaterializeResult(
        metadata={
            **(trained.metadata or {}),
            "sample_video": dg.MetadataValue.path(str(sample.video)),
            "sample_preview": dg.MetadataValue.md(
                f"base | adapted, middle frame of {sample.clip_id}\n\n"
                f"![base | adapted](data:image/png;base64,{encoded})"
            ),
            "sample_preview_path": dg.MetadataValue.path(str(sample.preview)),
            "sample_clip": sample.clip_id,
            "sample_mean_abs_diff": round(sample.mean_abs_diff, 3),
        },
        data_version=trained.data_version,
    )
