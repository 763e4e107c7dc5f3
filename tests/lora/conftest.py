"""One tiny base and one LoRA adapter trained on it (12 Adam steps), shared by the LoRA tests.

Tiny models run fastest on one thread; on a shared machine more threads only contend. The thread count is
restored after each module and after the shared training, so other tests are unaffected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

from dualforce_core.lora.adapter import adapter_parameters, prepare_lora_training
from dualforce_core.lora.files import save_lora
from dualforce_core.lora.merge import base_state_dict
from tests.lora.lora_fixtures import (
    LORA,
    STEPS,
    TrainedAdapter,
    fixed_batch,
    loss_of,
    model_inputs,
    trained_like_base,
)
from tests.records import write_identity_record


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedAdapter:
    with one_thread():
        return _train(tmp_path_factory)


def _train(tmp_path_factory: pytest.TempPathFactory) -> TrainedAdapter:
    root = tmp_path_factory.mktemp("lora")
    model = trained_like_base()
    base_dir = write_identity_record(model.save_pretrained(root / "base"), 32)
    batch = fixed_batch(model)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        base_video = model(**model_inputs(batch)).video

    model, params = prepare_lora_training(model, LORA)
    adapter_init = {k: v.detach().clone() for k, v in adapter_parameters(model).items()}
    optimizer = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(STEPS):
        loss = loss_of(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        out = model(**model_inputs(batch))
    adapter_dir = save_lora(model, root / "run", base_dir)
    return TrainedAdapter(
        base_dir=base_dir,
        adapter_dir=adapter_dir,
        batch=batch,
        base_state=base_state,
        adapter_init=adapter_init,
        base_state_after=base_state_dict(model),
        adapter_after={k: v.detach().clone() for k, v in adapter_parameters(model).items()},
        trainable=sum(p.numel() for p in params),
        losses=losses,
        base_video=base_video,
        trained_video=out.video,
        trained_struct=out.struct,
    )
