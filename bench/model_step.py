"""One DualForce training step (forward + backward) per preset, backend and device; prints a markdown row.

    python bench/model_step.py --preset tiny --header
    python bench/model_step.py --preset small --latent-frames 7 --height 16 --width 16 --steps 3
    python bench/model_step.py --preset base --backend flex --device cuda --dtype bf16 \\
        --latent-frames 21 --height 60 --width 104

Random weights and inputs (`DualForceModel.dummy_inputs`): the cost of a step does not depend on
the values. `--height/--width` are the latent grid (pixels / 8); tokens counts video patches
(latent/2 per side) plus structure tokens. The first step is a warm-up and not timed. Peak memory
is CUDA's max allocated on GPU and the process's peak RSS on CPU. Flex attention has no CPU
backward in torch: use it on CUDA.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from dualforce_core.errors import UserError
from dualforce_core.models import DualForceModel

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
HEADER = (
    "| preset | params | backend | device | dtype | batch | latent frames | latent HxW | tokens "
    "| fwd+bwd (s) | tokens/s | peak mem (GiB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", help="configs/model/<preset>.yaml: tiny, small, base")
    parser.add_argument("--backend", default="sdpa", choices=["sdpa", "flex", "flash"])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--latent-frames", type=int, default=7, help="1 reference + chunks of chunk_frames")
    parser.add_argument("--height", type=int, default=16, help="latent grid height (pixels / 8)")
    parser.add_argument("--width", type=int, default=16, help="latent grid width (pixels / 8)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (0: torch's default)")
    parser.add_argument("--header", action="store_true", help="print the markdown table header first")
    return parser.parse_args(argv)


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def step(model: DualForceModel, kw: dict[str, torch.Tensor]) -> None:
    model.zero_grad(set_to_none=True)
    out = model(**kw)
    (out.video.float().square().mean() + out.struct.float().square().mean()).backward()


def run(args: argparse.Namespace) -> str:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.backend == "flex" and device.type == "cpu":
        raise UserError("flex attention has no backward on CPU in torch; use --backend sdpa or --device cuda")
    model = DualForceModel.from_preset(args.preset, device=device, dtype=DTYPES[args.dtype])
    model.set_attention_backend(args.backend)
    model.train()
    kw = model.dummy_inputs(args.batch_size, args.latent_frames, seed=0, height=args.height, width=args.width)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step(model, kw)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(model, kw)
    sync()
    seconds = (time.perf_counter() - start) / args.steps

    c = model.config
    per_frame = (args.height // c.patch_size[1]) * (args.width // c.patch_size[2]) + c.struct_tokens_per_frame
    tokens = args.batch_size * args.latent_frames * per_frame
    return (
        f"| {args.preset} | {model.num_parameters() / 1e6:.1f} M | {args.backend} | {device} | {args.dtype} "
        f"| {args.batch_size} | {args.latent_frames} | {args.height}x{args.width} | {tokens} "
        f"| {seconds:.3f} | {tokens / seconds:,.0f} | {peak_memory_gib(device):.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        row = run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.header:
        print(HEADER)
    print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
