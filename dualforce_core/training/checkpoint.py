"""Sharded, kill-safe training checkpoints with torch distributed checkpoint (DCP).

A checkpoint is a directory `step-N`: DCP shards of the model, EMA, optimiser and LR scheduler (each rank
writes its own shard, so nothing is gathered), one `rng-rank{r}.json` per rank (torch, numpy, python and
σ-generator states, so a resumed run draws exactly what the uninterrupted one would), and `meta.json`
(step, data position, Lance versions, model config). Everything is written under `step-N.tmp` and renamed
by rank 0 after a barrier: a run killed mid-write leaves only a `.tmp`, which `latest()` never returns.
Works in one process without a process group too (DCP then writes a single shard).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.checkpoint.stateful import Stateful
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from dualforce_core.errors import UserError
from dualforce_core.models.config import saved_fields
from dualforce_core.training.ema import EMA

META_FILE = "meta.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


@dataclass
class Progress:
    """Where training stands: optimiser steps done and the data position (epoch, batches consumed in it)."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    lance_versions: dict[str, int] = field(default_factory=dict)


class TrainState(Stateful):
    """The model (with the loss heads), optimiser, EMA and LR scheduler as one DCP-savable object."""

    def __init__(self, model: nn.Module, optimizer: Optimizer, ema: EMA, lr_scheduler: LRScheduler) -> None:
        self.model = model
        self.optimizer = optimizer
        self.ema = ema
        self.lr_scheduler = lr_scheduler

    def state_dict(self) -> dict[str, Any]:
        model_state, optim_state = get_state_dict(self.model, self.optimizer)
        return {
            "model": model_state,
            "optim": optim_state,
            "ema": self.ema.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_state_dict(
            self.model,
            self.optimizer,
            model_state_dict=state_dict["model"],
            optim_state_dict=state_dict["optim"],
        )
        self.ema.load_state_dict(state_dict["ema"])
        self.lr_scheduler.load_state_dict(state_dict["lr_scheduler"])


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    """DCP warns on every call without a process group; a single-process run is intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    np_state: tuple[Any, ...] = tuple(np.random.get_state(legacy=True))
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state().tolist(),
        "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "generator": generator.get_state().tolist(),
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))


class CheckpointManager:
    """Saves to, prunes and finds checkpoints under `root` (normally `RUN_DIR/checkpoints`)."""

    def __init__(self, root: Path, keep_last: int) -> None:
        self.root = Path(root)
        self.keep_last = keep_last

    def complete(self) -> list[tuple[int, Path]]:
        """Finished checkpoints, oldest first (a `.tmp` or a directory without meta is never one)."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and (path / META_FILE).is_file():
                found.append((int(match.group(1)), path))
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1][1] if done else None

    def resolve(self, resume: str | None) -> Path | None:
        """`None`: start fresh; `auto`: the newest complete checkpoint, if any; otherwise a checkpoint dir."""
        if resume is None:
            return None
        if resume == "auto":
            return self.latest()
        path = Path(resume)
        if not (path / META_FILE).is_file():
            raise UserError(f"{path} is not a complete checkpoint (no {META_FILE}); pass a step-N directory")
        return path

    def save(
        self,
        progress: Progress,
        state: TrainState,
        generator: torch.Generator,
        meta: dict[str, Any],
    ) -> Path:
        """Write `step-N` atomically: `write`, then `commit`; every rank must call this."""
        return self.commit(self.write(progress, state, generator, meta))

    def write(
        self,
        progress: Progress,
        state: TrainState,
        generator: torch.Generator,
        meta: dict[str, Any],
    ) -> Path:
        """Everything of `step-N` into `step-N.tmp`, which no reader takes for a checkpoint yet."""
        rank = _rank()
        tmp = self.root / f"step-{progress.step}.tmp"
        if rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        _barrier()
        with _quiet_single_process():
            dcp.save({"train": state}, checkpoint_id=str(tmp))
        (tmp / f"rng-rank{rank}.json").write_text(json.dumps(rng_state(generator)))
        if rank == 0:
            record = {**meta, "progress": asdict(progress), "saved_at": time.time()}
            (tmp / META_FILE).write_text(json.dumps(record, indent=1) + "\n")
        return tmp

    def commit(self, tmp: Path) -> Path:
        """Once every rank has written: rank 0 renames `step-N.tmp` to `step-N` and prunes old ones."""
        final = tmp.with_suffix("")
        _barrier()
        if _rank() == 0:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            self._prune()
        _barrier()
        return final

    def _prune(self) -> None:
        done = self.complete()
        for _, path in done[: max(0, len(done) - self.keep_last)]:
            shutil.rmtree(path, ignore_errors=True)

    def load(
        self, path: Path, state: TrainState, generator: torch.Generator, model_config: dict[str, Any]
    ) -> tuple[Progress, dict[str, Any]]:
        """Restore `state` and this rank's RNG from `path`; returns the progress and the checkpoint's meta."""
        meta = json.loads((path / META_FILE).read_text())
        saved_model = meta.get("model_config")
        if saved_model is not None and saved_fields(saved_model) != model_config:
            changed = sorted(k for k in model_config if saved_model.get(k) != model_config[k])
            raise UserError(
                f"checkpoint {path} was written for model preset {saved_model.get('preset')!r}, this run uses "
                f"{model_config.get('preset')!r} (differing keys: {', '.join(changed)}); resume with the "
                "same model config or start a new run dir"
            )
        world_size = dist.get_world_size() if dist.is_initialized() else 1
        if meta.get("world_size", world_size) != world_size:
            raise UserError(
                f"checkpoint {path} was written by {meta['world_size']} processes, this run has {world_size}: "
                "data order and RNG streams are per rank, so resume with the same number of processes"
            )
        rng_file = path / f"rng-rank{_rank()}.json"
        with _quiet_single_process():
            dcp.load({"train": state}, checkpoint_id=str(path))
        set_rng_state(json.loads(rng_file.read_text()), generator)
        p = meta["progress"]
        progress = Progress(p["step"], p["epoch"], p["batch_index"], dict(p["lance_versions"]))
        return progress, meta
