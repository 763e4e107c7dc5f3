"""Fine-tuning an adapter moves only the adapter: the base checkpoint stays bit-identical."""

from __future__ import annotations

import torch

from dualforce_core.lora.adapter import (
    adapter_num_bytes,
    adapter_parameters,
    prepare_lora_training,
    trainable_parameter_count,
)
from dualforce_core.lora.files import ADAPTER_WEIGHTS, read_adapter_info
from dualforce_core.models import DualForceModel
from dualforce_core.models.model import WEIGHTS_FILE
from tests.lora.lora_fixtures import LORA, STEPS, TrainedAdapter, model_inputs, trained_like_base


def test_loss_falls_on_a_fixed_batch(trained: TrainedAdapter) -> None:
    assert len(trained.losses) == STEPS
    assert trained.losses[-1] < 0.8 * trained.losses[0], trained.losses


def test_every_base_weight_is_bit_identical_after_training(trained: TrainedAdapter) -> None:
    assert trained.base_state_after.keys() == trained.base_state.keys()
    for key, before in trained.base_state.items():
        assert torch.equal(trained.base_state_after[key], before), key


def test_only_adapter_tensors_changed(trained: TrainedAdapter) -> None:
    assert trained.adapter_after.keys() == trained.adapter_init.keys()
    changed = [k for k, v in trained.adapter_after.items() if not torch.equal(v, trained.adapter_init[k])]
    # lora_B starts at zero and every targeted layer gets a gradient on a trained base.
    assert sorted(changed) == sorted(trained.adapter_after), set(trained.adapter_after) - set(changed)
    assert not torch.equal(trained.trained_video, trained.base_video)


def test_optimiser_gets_adapter_parameters_only() -> None:
    model = trained_like_base()
    total = model.num_parameters()
    model, params = prepare_lora_training(model, LORA)
    adapter = adapter_parameters(model)
    assert {id(p) for p in params} == {id(p) for p in adapter.values()}
    assert trainable_parameter_count(model) == sum(p.numel() for p in params)
    assert model.num_parameters() == total + sum(p.numel() for p in params)
    assert adapter_num_bytes(model) == 4 * sum(p.numel() for p in params)
    # rank 4 on q/k/v/o (64→64) of 2+2 self-attention, 2+2 audio and 2 bridge attentions: 20 layers... ×2
    assert sum(p.numel() for p in params) == 40 * (4 * 64 + 64 * 4)


def test_adapter_file_is_a_small_fraction_of_the_base(trained: TrainedAdapter) -> None:
    adapter_bytes = (trained.adapter_dir / ADAPTER_WEIGHTS).stat().st_size
    base_bytes = (trained.base_dir / WEIGHTS_FILE).stat().st_size
    info = read_adapter_info(trained.adapter_dir)
    assert info.size_bytes == adapter_bytes
    assert info.parameters == trained.trainable
    assert adapter_bytes < 0.05 * base_bytes, (adapter_bytes, base_bytes)


def test_train_state_round_trips_through_the_model_state_dict(trained: TrainedAdapter) -> None:
    """What a DCP resume does: rebuild base + LoRA, load the saved model state, get the same outputs."""
    model = DualForceModel.from_pretrained(trained.base_dir)
    model, _ = prepare_lora_training(model, LORA)
    trained_model = DualForceModel.from_pretrained(trained.base_dir)
    trained_model, _ = prepare_lora_training(trained_model, LORA)
    with torch.no_grad():
        for name, p in adapter_parameters(trained_model).items():
            p.copy_(trained.adapter_after[name])
    model.load_state_dict(trained_model.state_dict(), strict=True)
    with torch.no_grad():
        out = model(**model_inputs(trained.batch))
    assert torch.equal(out.video, trained.trained_video)
