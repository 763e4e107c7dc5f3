"""How training is launched: plain Python for one process, torchrun for several, same entry point."""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.launchers import train_command


def test_one_process_runs_the_entry_point_directly() -> None:
    command = train_command("ds", Path("/runs/x"), None, ["train.max_steps=2"], nproc=1)
    assert command == [
        sys.executable, "-m", "pipelines.train_entry", "--dataset", "ds", "--run-dir", "/runs/x", "train.max_steps=2",
    ]  # fmt: skip


def test_several_processes_go_through_torchrun_with_the_same_arguments() -> None:
    command = train_command("ds", Path("/runs/x"), "cfg.yaml", [], nproc=4)
    assert command[:6] == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "4",
    ]
    assert command[6:] == [
        "-m",
        "pipelines.train_entry",
        "--dataset",
        "ds",
        "--run-dir",
        "/runs/x",
        "--config",
        "cfg.yaml",
    ]


def test_a_training_set_manifest_is_passed_on_to_pin_the_vetted_versions() -> None:
    command = train_command("ds", Path("/runs/x"), None, [], nproc=1, training_set=Path("/home/ts/ds.json"))
    assert command[-2:] == ["--training-set", "/home/ts/ds.json"]
