"""Fold an adapter into its base: a plain `save_pretrained` checkpoint that needs neither peft nor the adapter.

The merged weight of each adapted Linear is `W + scale·(alpha/r)·B·A`, computed by peft
(`get_delta_weight`) into a new model, so the adapted model it is read from is left untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dualforce_core.errors import UserError
from dualforce_core.lora.adapter import DEFAULT_ADAPTER, adapter_names, delta_weights
from dualforce_core.lora.files import check_base, config_hash, load_adapter, read_adapter_info
from dualforce_core.models import DualForceModel
from dualforce_core.models.model import checkpoint_config
from dualforce_core.preprocessing import Preprocessing

MERGE_RECORD = "lora_merge.json"


def base_state_dict(model: DualForceModel) -> dict[str, torch.Tensor]:
    """The model's own weights under their pre-LoRA names (adapter tensors dropped)."""
    return {
        key.replace(".base_layer.", "."): value
        for key, value in model.state_dict().items()
        if ".lora_" not in key
    }


@torch.no_grad()
def merged_model(model: DualForceModel, name: str = DEFAULT_ADAPTER) -> DualForceModel:
    """A plain `DualForceModel`: base plus adapter `name` at its current scale, in the base's dtype.

    Only the adapted Linear weights are new tensors; every other weight is shared with `model`, not
    copied, so merging a paper-scale model costs the adapted layers' memory, not a second model.
    """
    if name not in adapter_names(model):
        raise UserError(f"no adapter named {name!r} to merge; loaded: {adapter_names(model) or 'none'}")
    state = base_state_dict(model)
    for path, delta in delta_weights(model, name).items():
        weight = state[f"{path}.weight"]
        state[f"{path}.weight"] = (weight.float() + delta.float()).to(weight.dtype)
    merged = DualForceModel.from_config(model.config.model_copy(), device="meta")
    merged.load_state_dict(state, strict=True, assign=True)
    merged.set_attention_backend(model.attention_backend)
    return merged.train(model.training)


def merge_adapter(model: DualForceModel, adapter_dir: str | Path, scale: float = 1.0) -> DualForceModel:
    """What `dualforce generate --lora DIR --lora-scale S` runs on: the checked adapter folded in.

    The result is a plain model, so the streaming generator's wrappers (which rebuild the module tree
    from a state dict) and `torch.compile` see no adapter layers, and a frame costs what the base costs.
    """
    return merged_model(load_adapter(model, adapter_dir, scale=scale))


def merge_lora(
    base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, scale: float = 1.0
) -> Path:
    """`base_dir` + the adapter in `adapter_dir` at `scale` → a normal checkpoint in `out_dir`.

    `out_dir` gets `lora_merge.json` beside the weights, recording what was merged into what.
    """
    out = Path(out_dir)
    if out.resolve() == Path(base_dir).resolve():
        raise UserError(f"--out {out} is the base checkpoint itself; write the merged model elsewhere")
    info = read_adapter_info(adapter_dir)
    check_base(info, checkpoint_config(base_dir), f"checkpoint {base_dir}")  # before loading its weights
    model = DualForceModel.from_pretrained(base_dir)
    merge_adapter(model, adapter_dir, scale=scale).save_pretrained(out)
    if Preprocessing.exists(base_dir):  # the merged model was trained on the base's inputs
        Preprocessing.load(base_dir).save(out)
    record = {
        "base_checkpoint": str(Path(base_dir).resolve()),
        "adapter": str(Path(adapter_dir).resolve()),
        "scale": scale,
        "rank": info.rank,
        "alpha": info.alpha,
        "groups": info.groups,
        "base_config_sha256": config_hash(model.config),
    }
    (out / MERGE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return out
