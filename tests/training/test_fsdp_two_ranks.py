"""Two gloo ranks on CPU: parameters really are FSDP2 shards, and a sharded checkpoint resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.multiprocessing as mp
from torch.distributed.tensor import DTensor, Shard

from dualforce_core.config import config_dir, load_config
from dualforce_core.training.trainer import Trainer
from tests.training.feature_tables import write_feature_tables
from tests.training.gloo_ranks import become_rank, free_port

TINY = str(config_dir() / "train" / "tiny.yaml")
OVERRIDES = ["train.max_steps=4", "train.checkpoint_every=2", "train.mlflow=false"]


def _rank_main(rank: int, world_size: int, port: int, root: str) -> None:
    """Train 4 steps straight, then (same process group) resume a second run from the first's step 2."""
    become_rank(rank, world_size, port)
    config = load_config(TINY, OVERRIDES)
    straight = Trainer(config, "ds", Path(root) / "straight")
    block_param = straight.model.get_parameter("video.blocks.0.ffn.0.weight")
    assert isinstance(block_param, DTensor) and block_param.placements == (Shard(0),)
    assert block_param.to_local().shape[0] == config.model.video_ffn_dim // world_size  # half per rank
    assert all(isinstance(p, DTensor) for p in straight.modules.parameters())
    assert all(isinstance(t, DTensor) for t in straight.ema.shadow)  # EMA sharded like the params
    assert straight.fit().step == 4
    straight.logger.close()
    resumed = Trainer(config, "ds", Path(root) / "resumed", str(Path(root) / "straight/checkpoints/step-2"))
    try:
        assert resumed.fit().step == 4
    finally:
        resumed.close()


def _losses(run_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(row["step"], row["train/loss"]) for row in rows]


@pytest.mark.slow
def test_two_rank_fsdp_shards_checkpoints_and_resumes(tmp_path: Path) -> None:
    write_feature_tables("ds", num_clips=6)
    mp.spawn(_rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    step2 = tmp_path / "straight" / "checkpoints" / "step-2"
    assert {p.name for p in step2.iterdir()} >= {"rng-rank0.json", "rng-rank1.json", "meta.json"}
    assert len(list(step2.glob("*.distcp"))) == 2  # one shard file per rank
    assert json.loads((step2 / "meta.json").read_text())["world_size"] == 2
    straight = dict(_losses(tmp_path / "straight"))
    resumed = _losses(tmp_path / "resumed")
    assert [step for step, _ in resumed] == [3, 4]
    assert all(loss == straight[step] for step, loss in resumed)
    assert (tmp_path / "resumed" / "final" / "model.safetensors").is_file()
