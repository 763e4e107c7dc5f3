"""LoRA under the trainer's FSDP2 sharding (two gloo ranks on CPU) trains the same adapter as one process.

Order the trainer must follow: base `from_pretrained`, `prepare_lora_training`, `parallelize`, then the
optimiser over `trainable_parameters(model)`; the export `save_lora` is collective (every rank gathers its
shards, rank 0 writes).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file
from torch.distributed.tensor import DTensor

from dualforce_core.lora.adapter import prepare_lora_training, trainable_parameters
from dualforce_core.lora.files import ADAPTER_WEIGHTS, save_lora
from dualforce_core.models import DualForceModel
from dualforce_core.training.parallelize import init_distributed, parallelize
from tests.lora.lora_fixtures import LORA, fixed_batch, loss_of, trained_like_base
from tests.training.gloo_ranks import become_rank, free_port

STEPS = 3


def _train(model: DualForceModel, run_dir: Path, base_dir: Path) -> None:
    batch = fixed_batch(DualForceModel.from_pretrained(base_dir))
    torch.manual_seed(1)  # the adapters' initialisation
    prepare_lora_training(model, LORA)
    parallelize(model, init_distributed("cpu"), True, False, False)  # in place
    # After sharding: fully_shard replaced the parameter objects. SGD, as Adam would magnify
    # reduction-order noise in the near-zero first gradients of lora_A.
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    for _ in range(STEPS):
        optimizer.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
        optimizer.step()
    save_lora(model, run_dir, base_dir)


def _rank_main(rank: int, world_size: int, port: int, root: str) -> None:
    become_rank(rank, world_size, port)
    base_dir = Path(root) / "base"
    model = DualForceModel.from_pretrained(base_dir)
    try:
        _train(model, Path(root) / "fsdp", base_dir)
        assert isinstance(model.get_parameter("video.blocks.0.self_attn.q.lora_A.default.weight"), DTensor)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned gloo ranks, then the single-process run: ~23 s
def test_fsdp_lora_matches_one_process(tmp_path: Path) -> None:
    base_dir = trained_like_base().save_pretrained(tmp_path / "base")
    mp.spawn(_rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    _train(DualForceModel.from_pretrained(base_dir), tmp_path / "single", base_dir)

    sharded = load_file(tmp_path / "fsdp" / "lora" / ADAPTER_WEIGHTS)
    single = load_file(tmp_path / "single" / "lora" / ADAPTER_WEIGHTS)
    assert sharded.keys() == single.keys()
    assert any(bool(v.abs().sum() > 0) for k, v in single.items() if "lora_B" in k)
    for key, value in single.items():
        torch.testing.assert_close(sharded[key], value, rtol=1e-4, atol=1e-5, msg=key)
