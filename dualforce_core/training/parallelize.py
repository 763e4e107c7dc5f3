"""Process group, device and FSDP2 sharding, applied as functions over a built model (torchtitan style).

The model knows nothing of how it is sharded: its blocks are found generically (every element of every
`nn.ModuleList` / `nn.ModuleDict` that is not inside another block: the towers' DiT blocks and the
bridge layers), each becomes its own FSDP2 unit so only one block's full weights exist at a time, then
the root takes the rest. Activation checkpointing and `torch.compile` are applied per block first, with
the composable APIs, so parameter names stay those of the plain model. Mixed precision is decided here
too (`bf16_compute`), once for the sharded and the unsharded run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed._composable import checkpoint
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    FSDPModule,
    MixedPrecisionPolicy,
    OffloadPolicy,
    fully_shard,
)

from dualforce_core.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    mesh: DeviceMesh | None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto", single_rank_group: bool = False) -> DistInfo:
    """Join the process group torchrun / accelerate describe in the environment (NCCL on GPU, gloo on
    CPU); a plain single process gets no group, unless `single_rank_group` (FSDP2's CPU offload needs
    a mesh, even of one rank)."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is visible; use train.device=cpu")
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dev = torch.device("cuda", local_rank) if use_cuda else torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if world_size == 1 and not dist.is_initialized():
        if not single_rank_group:
            return DistInfo(0, 1, 0, dev, None)
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    world_size = dist.get_world_size()
    mesh = init_device_mesh(dev.type, (world_size,))
    return DistInfo(dist.get_rank(), world_size, local_rank, dev, mesh)


def bf16_compute(dist_info: DistInfo, mixed_precision: bool) -> Literal["fsdp", "autocast"] | None:
    """How a run that asks for bf16 gets it: on CUDA only; FSDP2's policy casts a sharded run (bf16
    compute, fp32 parameters and reductions), autocast around the model's forward an unsharded one."""
    if not (mixed_precision and dist_info.device.type == "cuda"):
        return None
    return "fsdp" if dist_info.mesh is not None else "autocast"


def find_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated units: elements of the outermost ModuleLists / ModuleDicts."""
    blocks: list[nn.Module] = []
    inside: set[str] = set()
    for name, module in model.named_modules():
        if any(name == p or name.startswith(p + ".") for p in inside):
            continue
        if isinstance(module, nn.ModuleList | nn.ModuleDict):
            for child_name, child in module.named_children():
                blocks.append(child)
                inside.add(f"{name}.{child_name}" if name else child_name)
    return blocks


def apply_activation_checkpointing(blocks: list[nn.Module]) -> None:
    """Recompute each block's activations in backward: memory of one block instead of all of them."""
    for block in blocks:
        checkpoint(block)


def apply_compile(blocks: list[nn.Module]) -> None:
    """Compile block by block: identical blocks share one compiled graph, and compile time stays small."""
    for block in blocks:
        block.compile()


def apply_fsdp(
    model: nn.Module, blocks: list[nn.Module], mesh: DeviceMesh, mixed_precision: bool, cpu_offload: bool
) -> None:
    """One FSDP2 unit per block, then the root; bf16 compute with fp32 parameters and reductions.

    `cpu_offload`: shards, gradients and so the optimiser state stay on the CPU, each block's weights
    are copied to the device only for its forward and backward; the optimiser steps on the CPU.
    """
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if mixed_precision
        else MixedPrecisionPolicy()
    )
    offload = CPUOffloadPolicy(pin_memory=mesh.device_type == "cuda") if cpu_offload else OffloadPolicy()
    for block in blocks:
        fully_shard(block, mesh=mesh, mp_policy=policy, offload_policy=offload)
    fully_shard(model, mesh=mesh, mp_policy=policy, offload_policy=offload)


def parallelize(
    model: nn.Module,
    dist_info: DistInfo,
    activation_checkpointing: bool,
    compile_blocks: bool,
    mixed_precision: bool,
    cpu_offload: bool = False,
) -> nn.Module:
    """Move to the device and apply AC, compile and FSDP2 (the last only with a process group)."""
    model.to(dist_info.device)
    blocks = find_blocks(model)
    if activation_checkpointing:
        apply_activation_checkpointing(blocks)
    if compile_blocks:
        apply_compile(blocks)
    if dist_info.mesh is not None:
        bf16 = bf16_compute(dist_info, mixed_precision) == "fsdp"
        apply_fsdp(model, blocks, dist_info.mesh, bf16, cpu_offload)
    return model


def set_gradient_sync(modules: list[nn.Module], enabled: bool) -> None:
    """Skip FSDP's reduce-scatter on all but the last micro-batch of a gradient-accumulation step."""
    for module in modules:
        if isinstance(module, FSDPModule):
            module.set_requires_gradient_sync(enabled)
