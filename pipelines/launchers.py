"""The command line that starts training out of process: plain Python for one process, `torchrun` for more.

Both run `pipelines.train_entry`, which calls the trainer and, on rank 0, reports back through Dagster
Pipes; the trainer itself knows nothing of Dagster.
"""

from __future__ import annotations

import sys
from pathlib import Path


def train_command(
    dataset: str,
    run_dir: Path,
    config_path: str | None,
    overrides: list[str],
    nproc: int,
    base_checkpoint: Path | None = None,
) -> list[str]:
    """`base_checkpoint` makes it a LoRA run: adapters trained on that frozen model."""
    entry = ["-m", "pipelines.train_entry", "--dataset", dataset, "--run-dir", str(run_dir)]
    if config_path:
        entry += ["--config", config_path]
    if base_checkpoint is not None:
        entry += ["--base-checkpoint", str(base_checkpoint)]
    entry += overrides
    if nproc > 1:
        launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
        return [sys.executable, *launcher, *entry]
    return [sys.executable, *entry]
