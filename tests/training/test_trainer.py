"""Single-process training on the tiny preset: learning signal, checkpoints, exact resume, MLflow, errors."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import torch
from safetensors.torch import load_file

from dualforce_core import paths
from dualforce_core.config import config_dir, load_config
from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel
from dualforce_core.training.build import build_model
from dualforce_core.training.checkpoint import CheckpointManager
from dualforce_core.training.trainer import Trainer, train
from tests.training.feature_tables import write_feature_tables

TINY = str(config_dir() / "train" / "tiny.yaml")


def loss_rows(run_dir: Path) -> list[tuple[int, float]]:
    """(step, train/loss) for every line of the JSONL log, re-run steps included."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], row["train/loss"]) for row in rows]


def losses(run_dir: Path) -> dict[int, float]:
    return dict(loss_rows(run_dir))


def test_loss_falls_and_final_model_is_the_ema(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=4)
    config = load_config(
        TINY,
        [
            "train.max_steps=30",
            "train.lr=3e-3",
            "train.checkpoint_every=0",
            "train.mlflow=false",
            "train.audio_dropout=0",
            "train.loss_weights.lipsync=0",
            "train.loss_weights.flame=0",
            "diffusion.shared_sigma_prob=0",
        ],
    )
    trainer = Trainer(config, "ds", tmp_path / "run")
    result = trainer.fit()
    trainer.close()
    curve = losses(tmp_path / "run")
    assert sorted(curve) == list(range(1, 31))
    first, last = sum(curve[s] for s in range(1, 6)) / 5, sum(curve[s] for s in range(26, 31)) / 5
    assert last < 0.7 * first, (first, last)
    assert result.checkpoint == tmp_path / "run" / "checkpoints" / "step-30"  # checkpoint_every=0: final only
    # `final/` holds the EMA weights, not the last iterate.
    exported = DualForceModel.from_pretrained(tmp_path / "run" / "final")
    assert exported.config == config.model
    weights = load_file(tmp_path / "run" / "final" / "model.safetensors")
    ema = trainer.ema.full_state_dict()
    name = (
        "video.blocks.0.ffn.0.weight"
        if "video.blocks.0.ffn.0.weight" in weights
        else "patch_embedding.weight"
    )
    torch.testing.assert_close(weights[name], ema[f"model.{name}"], rtol=0, atol=0)
    assert not torch.equal(weights[name], trainer.model.state_dict()[name].detach())
    info = json.loads((tmp_path / "run" / "final" / "training.json").read_text())
    assert (
        info["weights"] == "EMA" and info["step"] == 30 and set(info["lance_versions"]) >= {"video_latents"}
    )


def test_resume_reproduces_the_uninterrupted_losses_exactly(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=5)  # 3 batches of 2 per epoch: the resume lands mid-epoch
    overrides = ["train.max_steps=5", "train.checkpoint_every=2", "train.mlflow=false", "train.keep_last=2"]
    train(load_config(TINY, overrides), "ds", tmp_path / "straight")
    config = load_config(TINY, overrides)
    trainer = Trainer(config, "ds", tmp_path / "resumed")
    batches = trainer._batches()
    for _ in range(3):
        metrics = trainer.train_step(batches)
        trainer.logger.log_step(trainer.progress.step, metrics, to_mlflow=False)
        if trainer.progress.step % 2 == 0:
            trainer.save_checkpoint()
    trainer.close()  # stops after step 3, past its last checkpoint (step 2)
    train(config, "ds", tmp_path / "resumed", resume="auto")
    straight = losses(tmp_path / "straight")
    rows = loss_rows(tmp_path / "resumed")
    assert [step for step, _ in rows] == [1, 2, 3, 3, 4, 5]
    assert all(loss == straight[step] for step, loss in rows)  # bit-exact, the re-run step 3 included
    kept = [step for step, _ in CheckpointManager(tmp_path / "resumed" / "checkpoints", 2).complete()]
    assert kept == [4, 5]


def test_gradient_accumulation_consumes_micro_batches_and_advances_epochs(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=4)  # 2 batches of 2 per epoch
    config = load_config(TINY, ["train.grad_accum=3", "train.mlflow=false"])
    trainer = Trainer(config, "ds", tmp_path / "run")
    batches = trainer._batches()
    metrics = trainer.train_step(batches)
    trainer.close()
    assert trainer.progress.step == 1 and (trainer.progress.epoch, trainer.progress.batch_index) == (1, 1)
    assert metrics["perf/tokens_per_s"] > 0 and metrics["train/grad_norm"] > 0


def test_mlflow_holds_params_metrics_checkpoint_and_registered_model(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=2)
    config = load_config(TINY, ["train.max_steps=2", "train.log_every=1", "train.checkpoint_every=1"])
    result = train(config, "ds", tmp_path / "run")
    assert paths.mlflow_tracking_uri().startswith("sqlite:///") and (paths.home() / "mlflow.db").is_file()
    client = mlflow.MlflowClient(paths.mlflow_tracking_uri())
    assert result.mlflow_run_id is not None
    run = client.get_run(result.mlflow_run_id)
    assert run.data.params["train.name"] == "tiny" and run.data.params["model.preset"] == "tiny"
    assert run.data.params["lance.video_latents_version"] == str(result.lance_versions["video_latents"])
    history = client.get_metric_history(result.mlflow_run_id, "train/loss")
    assert [m.step for m in history] == [1, 2]
    assert {
        "train/video",
        "train/struct",
        "train/lipsync",
        "train/flame",
        "train/lr",
        "train/grad_norm",
    } <= set(run.data.metrics)
    assert run.data.tags["checkpoint"].endswith("step-2")
    versions = client.search_model_versions("name = 'dualforce'")
    assert [v.run_id for v in versions] == [result.mlflow_run_id]
    assert {f.path for f in client.list_artifacts(result.mlflow_run_id, "final")} >= {
        "final/model.safetensors",
        "final/config.json",
    }


def test_checkpoint_of_another_preset_or_world_size_is_refused(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=2)
    train(load_config(TINY, ["train.max_steps=1", "train.mlflow=false"]), "ds", tmp_path / "run")
    wider = load_config(TINY, ["train.max_steps=2", "train.mlflow=false", "model.video_dim=128"])
    with pytest.raises(UserError, match=r"preset 'tiny'.*video_dim"):
        Trainer(wider, "ds", tmp_path / "run", resume="auto")
    meta_file = tmp_path / "run" / "checkpoints" / "step-1" / "meta.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "world_size": 2}))
    same = load_config(TINY, ["train.max_steps=2", "train.mlflow=false"])
    with pytest.raises(UserError, match="written by 2 processes, this run has 1"):
        Trainer(same, "ds", tmp_path / "run", resume="auto")


def test_missing_tables_and_bad_resume_path_are_user_errors(tmp_path: Path) -> None:
    config = load_config(TINY, ["train.mlflow=false"])
    with pytest.raises(UserError, match=r"video_latents.*dualforce extract latents --dataset ds"):
        Trainer(config, "ds", tmp_path / "run")
    write_feature_tables("ds", num_clips=2)
    with pytest.raises(UserError, match="not a complete checkpoint"):
        Trainer(config, "ds", tmp_path / "run", resume=str(tmp_path / "nowhere"))


def test_the_runs_attention_backend_reaches_the_model_not_the_checkpoint(tmp_path: Path) -> None:
    config = load_config(TINY, ["train.attention_backend=flex"])
    model = build_model(config, None)
    assert model.attention_backend == "flex"
    model.save_pretrained(tmp_path / "final")
    assert "attention_backend" not in json.loads((tmp_path / "final" / "config.json").read_text())
