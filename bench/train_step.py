"""One full DualForce training step (σ draw, noising, forward, losses, backward, clip, AdamW, EMA) on
random data, through the trainer's own code; prints a markdown row with tokens/s and MFU.

    python bench/train_step.py --preset tiny --header
    python bench/train_step.py --preset small --latent-frames 7 --resolution 128
    python bench/train_step.py --preset base --device cuda --resolution 512 --latent-frames 21 \\
        --activation-checkpointing on --compile on --attention-backend flex
    python bench/train_step.py --preset base --device cuda --resolution 512 --lora   # LoRA vs full memory

FLOPs per step are counted, not estimated: `torch.utils.flop_counter.FlopCounterMode` over one eager
forward + backward of model and losses (matmuls, convolutions and attention kernels, the way they are
actually launched: SDPA with a block-causal mask computes the full score matrix, so it is counted in
full). That agrees with the usual analytic count, 6·N·T + 12·Σ_layers T_q·T_kv·d (N: parameters in
matmuls, T: tokens, d: width), to within the small non-matmul ops. With activation checkpointing the
hardware does one more forward (8·N·T instead of 6·N·T); MFU counts only the model's FLOPs (the
standard definition), so recomputation lowers it. MFU = counted FLOPs / step time / --peak-tflops
(default: 989 for an H100's dense bf16 peak on CUDA; on CPU pass your machine's peak, otherwise MFU
is left out). tokens = batch · latent frames · (latent H/2 · latent W/2 + structure tokens per frame).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from dualforce_core.config import load_config
from dualforce_core.errors import UserError
from dualforce_core.lora.adapter import prepare_lora_training, trainable_parameters
from dualforce_core.lora.config import LoraConfig
from dualforce_core.models import DualForceModel
from dualforce_core.schedulers.sigma_sampler import SigmaSampler
from dualforce_core.timeline import SPATIAL_STRIDE
from dualforce_core.training.ema import EMA
from dualforce_core.training.objective import build_loss, forward_loss
from dualforce_core.training.parallelize import DistInfo, bf16_compute, parallelize

H100_BF16_TFLOPS = 989.0
HEADER = (
    "| preset | mode | device | dtype | batch | latent frames | resolution | AC | compile | attention | tokens "
    "| step (s) | tokens/s | GFLOP/step | TFLOP/s | MFU | peak memory (GiB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", help="configs/model/<preset>.yaml: tiny, small, base")
    parser.add_argument("--batch", type=int, default=1, help="clips per step")
    parser.add_argument(
        "--latent-frames", type=int, default=7, help="latent frames per clip (1 + 4k video frames)"
    )
    parser.add_argument(
        "--resolution", type=int, default=128, help="square video size in pixels (latent = /8)"
    )
    parser.add_argument("--activation-checkpointing", choices=["on", "off"], default="off")
    parser.add_argument("--compile", choices=["on", "off"], default="off", help="torch.compile per block")
    parser.add_argument("--attention-backend", default="sdpa", choices=["sdpa", "flex", "flash"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--mixed-precision", default="auto", choices=["auto", "no", "bf16"], help="auto: bf16 on cuda"
    )
    parser.add_argument("--steps", type=int, default=3, help="timed steps after two warm-up steps")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU")
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    parser.add_argument("--header", action="store_true", help="print the markdown header first")
    parser.add_argument(
        "--lora", action="store_true", help="LoRA fine-tuning (frozen base, adapters only) instead of full"
    )
    parser.add_argument("--lora-rank", type=int, default=16)
    return parser.parse_args(argv)


def _batch(model: DualForceModel, args: argparse.Namespace) -> dict[str, Any]:
    side = args.resolution // SPATIAL_STRIDE
    inputs = model.dummy_inputs(args.batch, args.latent_frames, seed=0, height=side, width=side)
    return {key: inputs[key].float() for key in ("video", "struct", "audio")}


def run(args: argparse.Namespace) -> str:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda but no CUDA device is visible")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mixed_precision == "bf16" and args.device != "cuda":
        raise UserError("--mixed-precision bf16 needs --device cuda: training computes bf16 on CUDA only")
    config = load_config(
        overrides=[
            f"model.preset={args.preset}",
            f"train.attention_backend={args.attention_backend}",
            f"train.batch_size={args.batch}",
            f"train.activation_checkpointing={args.activation_checkpointing == 'on'}",
            f"train.compile={args.compile == 'on'}",
        ]
    )
    device = torch.device(args.device)
    single = DistInfo(0, 1, 0, device, None)
    # The trainer's own rule: this unsharded run gets bf16 through autocast.
    bf16 = bf16_compute(single, args.mixed_precision != "no") == "autocast"
    torch.manual_seed(0)
    model = DualForceModel(config.model)
    model.set_attention_backend(config.train.attention_backend)
    if args.lora:
        prepare_lora_training(
            model, LoraConfig(enabled=True, rank=args.lora_rank, alpha=float(args.lora_rank))
        )
    loss_fn = build_loss(config, model.projector.token_dim, has_flame=False)
    batch = _batch(model, args)
    sampler, generator = SigmaSampler(config.diffusion), torch.Generator().manual_seed(0)

    model.to(device)
    loss_fn.to(device)
    with FlopCounterMode(display=False) as counter:  # eager, before compile / checkpointing wrap it
        loss, _ = forward_loss(model, loss_fn, batch, sampler, generator, config, bf16)
        loss.total.backward()
    flops = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    loss_fn.zero_grad(set_to_none=True)

    parallelize(model, single, config.train.activation_checkpointing, config.train.compile, bf16)
    params = [*trainable_parameters(model), *loss_fn.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
    named = [(n, p) for n, p in [*model.named_parameters(), *loss_fn.named_parameters()] if p.requires_grad]
    ema = EMA(named, 0.999)

    def step() -> int:
        loss, tokens = forward_loss(model, loss_fn, batch, sampler, generator, config, bf16)
        loss.total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(params)
        return tokens

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(2):
        step()
    sync()
    start = time.perf_counter()
    tokens = sum(step() for _ in range(args.steps))
    sync()
    seconds = (time.perf_counter() - start) / args.steps
    tokens //= args.steps
    achieved = flops / seconds / 1e12
    peak = args.peak_tflops or (H100_BF16_TFLOPS if device.type == "cuda" else None)
    mfu = f"{100 * achieved / peak:.1f} %" if peak else "n/a"
    return (
        f"| {args.preset} | {'lora r' + str(args.lora_rank) if args.lora else 'full'} | {args.device} | {'bf16' if bf16 else 'fp32'} | {args.batch} | {args.latent_frames} "
        f"| {args.resolution} | {args.activation_checkpointing} | {args.compile} | {args.attention_backend} "
        f"| {tokens} | {seconds:.3f} | {tokens / seconds:.0f} | {flops / 1e9:.2f} | {achieved:.4f} | {mfu} | {_peak_memory_gib(device):.2f} |"
    )


def _peak_memory_gib(device: torch.device) -> float:
    """CUDA: peak allocated by torch since the warm-up began. CPU: the process's peak RSS (all of it)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        row = run(args)
    except UserError as err:
        print(f"train_step: error: {err}", file=sys.stderr)
        return 2
    if args.header:
        print(HEADER)
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
