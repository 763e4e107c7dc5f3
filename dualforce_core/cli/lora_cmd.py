"""`dualforce lora`: inspect a LoRA adapter directory, or merge one into its base checkpoint.

Training an adapter is `dualforce train --config configs/train/lora_tiny.yaml --base-checkpoint DIR`
(written to RUN_DIR/lora/); using one is `dualforce generate ... --lora DIR [--lora-scale S]`.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lora",
        help="LoRA adapters: show what one holds, or merge it into its base checkpoint",
        description="LoRA adapters are PEFT directories (adapter_model.safetensors + adapter_config.json) "
        "trained on a frozen base checkpoint; see docs/lora.md.",
    )
    sub = parser.add_subparsers(dest="lora_command", required=True)

    info = sub.add_parser("info", help="rank, alpha, target groups, size and base model of an adapter")
    info.add_argument("adapter", metavar="DIR", help="adapter directory (e.g. RUN_DIR/lora)")
    info.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    info.set_defaults(func=_info)

    merge = sub.add_parser(
        "merge",
        help="fold an adapter into its base: a normal checkpoint that loads without the adapter",
    )
    merge.add_argument("--checkpoint", required=True, metavar="BASE", help="base checkpoint directory")
    merge.add_argument("--lora", required=True, metavar="DIR", help="adapter directory trained on BASE")
    merge.add_argument("--out", required=True, metavar="DIR", help="where to write the merged checkpoint")
    merge.add_argument(
        "--scale", type=float, default=1.0, metavar="S", help="adapter strength (1: as trained; 0: the base)"
    )
    merge.set_defaults(func=_merge)


def _info(args: argparse.Namespace) -> int:
    from dualforce_core.lora.files import read_adapter_info  # peft is slow to import: only when used

    info = read_adapter_info(args.adapter)
    if args.json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    rows = [
        ("adapter", str(info.path)),
        ("rank / alpha", f"{info.rank} / {info.alpha:g} (update scale alpha/r = {info.alpha / info.rank:g})"),
        ("dropout", f"{info.dropout:g}"),
        ("targets", f"{', '.join(info.groups)} ({info.modules} Linear layers)"),
        ("parameters", f"{info.parameters:,}"),
        ("size", f"{info.size_bytes:,} bytes ({info.size_bytes / 2**20:.2f} MiB)"),
        ("base preset", info.preset),
        ("base config sha256", info.base_config_sha256),
        ("base checkpoint", info.base_checkpoint or "not recorded"),
        ("peft version", info.peft_version or "unknown"),
    ]
    for key, value in rows:
        print(f"{key:20s} {value}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from dualforce_core.lora.merge import merge_lora

    out = merge_lora(args.checkpoint, args.lora, args.out, scale=args.scale)
    print(f"merged {args.lora} (scale {args.scale:g}) into {args.checkpoint}: wrote {out}")
    return 0
