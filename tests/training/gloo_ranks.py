"""Two CPU ranks on loopback for FSDP2 tests: a free port and each rank's torch.distributed environment."""

from __future__ import annotations

import os
import socket

import torch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def become_rank(rank: int, world_size: int, port: int) -> None:
    """Set the env:// rendezvous variables of `rank` (one intra-op thread: two ranks share two cores)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
