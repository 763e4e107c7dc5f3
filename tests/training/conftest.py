"""Training tests run tiny models: one intra-op thread is fastest and keeps the shared CPUs usable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # for subprocesses and spawned ranks
    yield
    torch.set_num_threads(threads)
