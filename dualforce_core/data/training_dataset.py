"""The training set: one dataset's clips joined across the feature tables, as the model's forward tensors.

Joining happens once, at construction (`clips_with_features`): a clip is used when it is in every
required table (`tables.REQUIRED_FEATURES`) and, when `clip_ids` is given, in that allow-list (the
trainer's identity split); `flame_params` is optional. Each table is pinned to the version it had then,
or to `versions` (those a checkpoint or the vetted training set recorded), and an item is fetched by row
position (`take`), never by a filter scan. Lance handles are opened lazily in the
process that reads (DataLoader workers are spawned: Lance is not fork-safe). Batches come from
`ShapeBucketBatchSampler`: equal shapes only, sharded by rank, padded so every rank gets the same number
of full batches and collectives never wait on a rank that ran out.
"""

from __future__ import annotations

import os
import random
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lance
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dualforce_core import paths
from dualforce_core.data.clip_features import clips_with_features
from dualforce_core.data.lance_store import open_table
from dualforce_core.data.struct_stats import load_struct_stats
from dualforce_core.data.tables import (
    AUDIO_FEATURES,
    FLAME_PARAMS,
    REQUIRED_FEATURES,
    STRUCT_FEATURES,
    VIDEO_LATENTS,
)
from dualforce_core.data.tensor_codec import decode_tensor
from dualforce_core.errors import UserError
from dualforce_core.models.config import ModelConfig
from dualforce_core.models.struct_tokens import StructTokenProjector
from dualforce_core.timeline import TEMPORAL_STRIDE, latent_frames_of, pool_to_latent_frames


@dataclass(frozen=True)
class ClipIndex:
    """Where one clip's row sits in each pinned table, and the shapes that decide its bucket."""

    clip_id: str
    positions: Mapping[str, int]
    latent_shape: tuple[int, ...]
    audio_shape: tuple[int, ...]

    @property
    def bucket(self) -> tuple[int, ...]:
        return (*self.latent_shape, *self.audio_shape)


class TrainingDataset(Dataset[dict[str, Any]]):
    """Items: `video` [C, F, h, w] f32 (frame 0 = reference latent), `struct` [F, K, D] normalised and
    packed, `audio` [T_a, L, D_a] f32, `flame` [F, 53] f32 (only for clips that have it), `clip_id`."""

    def __init__(
        self,
        dataset: str,
        model_config: ModelConfig,
        versions: Mapping[str, int] | None = None,
        clip_ids: Iterable[str] | None = None,
        split: str = "all",
    ) -> None:
        self.dataset = dataset
        self.split = split
        self.projector = StructTokenProjector.from_config(model_config)
        join = clips_with_features(dataset, versions, with_clips=False)
        for table in REQUIRED_FEATURES:
            rows = join.tables.get(table.name)
            if rows is None:
                raise UserError(
                    f"table {table.name!r} does not exist under {paths.lance_dir()}: run "
                    f"`{table.filled_by} --dataset {dataset}` first"
                )
            if not rows.positions:
                raise UserError(
                    f"table {table.name!r} (version {rows.version}) has no rows of dataset {dataset!r}: run "
                    f"`{table.filled_by} --dataset {dataset}` first"
                )
        self.versions = {name: rows.version for name, rows in join.tables.items()}
        common = join.complete()
        if clip_ids is not None:
            joined = len(common)
            common &= set(clip_ids)
            if not common:
                raise UserError(
                    f"split {split!r} of dataset {dataset!r} has none of its {joined} clips with features: "
                    "extract features for the split's clips, or train on every clip with train.split=all"
                )
        self.items = [
            ClipIndex(
                clip_id=clip_id,
                positions={
                    name: rows.positions[clip_id]
                    for name, rows in join.tables.items()
                    if clip_id in rows.positions
                },
                latent_shape=join.tables[VIDEO_LATENTS.name].shapes[clip_id],
                audio_shape=join.tables[AUDIO_FEATURES.name].shapes[clip_id],
            )
            for clip_id in sorted(common)
        ]
        if not self.items:
            names = ", ".join(table.name for table in REQUIRED_FEATURES)
            raise UserError(
                f"no clip of dataset {dataset!r} is in all of {names}: run the missing "
                f"extractors (`dualforce extract latents|struct|audio --dataset {dataset}`)"
            )
        self.has_flame = any(FLAME_PARAMS.name in item.positions for item in self.items)
        stats = load_struct_stats(dataset)
        self.struct_mean = torch.as_tensor(stats.mean, dtype=torch.float32)
        self.struct_std = torch.as_tensor(stats.std, dtype=torch.float32)
        self._tables: dict[str, lance.LanceDataset] = {}
        self._pid = -1

    def __len__(self) -> int:
        return len(self.items)

    def _table(self, name: str) -> lance.LanceDataset:
        if self._pid != os.getpid():  # first use in this process (a spawned worker re-opens its own)
            self._tables = {}
            self._pid = os.getpid()
        if name not in self._tables:
            table = open_table(name, self.versions[name])
            assert table is not None
            self._tables[name] = table
        return self._tables[name]

    def _row(self, name: str, position: int, columns: list[str]) -> dict[str, Any]:
        return self._table(name).take([position], columns=columns).to_pylist()[0]

    def extractor_ids(self, name: str) -> list[str]:
        """The distinct `extractor_id`s of the rows this dataset reads from table `name` (its provenance)."""
        positions = sorted({item.positions[name] for item in self.items if name in item.positions})
        if not positions:
            return []
        ids = self._table(name).take(positions, columns=["extractor_id"]).column("extractor_id")
        return sorted({str(v) for v in ids.to_pylist()})

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tables"], state["_pid"] = {}, -1
        return state

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        pos = item.positions
        latents = self._row(
            VIDEO_LATENTS.name,
            pos[VIDEO_LATENTS.name],
            ["latents", "shape", "dtype", "ref_latent", "ref_shape"],
        )
        video = decode_tensor(latents["latents"], latents["shape"], latents["dtype"]).float()
        ref = decode_tensor(latents["ref_latent"], latents["ref_shape"], latents["dtype"]).float()
        video[:, :1] = ref
        motion_row = self._row(STRUCT_FEATURES.name, pos[STRUCT_FEATURES.name], ["motion", "shape"])
        motion = decode_tensor(motion_row["motion"], motion_row["shape"], "float32")
        num_frames = motion.shape[0]
        if num_frames < 1 or (num_frames - 1) % TEMPORAL_STRIDE:
            raise UserError(
                f"a clip of {num_frames} frames does not map to latent frames (needs 1 mod {TEMPORAL_STRIDE})"
            )
        latent_frames = latent_frames_of(num_frames)
        if latent_frames != video.shape[1]:
            raise UserError(
                f"clip {item.clip_id}: {num_frames} structure frames give {latent_frames} latent frames, "
                f"video_latents has {video.shape[1]}"
            )
        normalised = (motion - self.struct_mean) / self.struct_std
        struct = self.projector.pack(normalised[None])[0]
        audio_row = self._row(AUDIO_FEATURES.name, pos[AUDIO_FEATURES.name], ["features", "shape", "dtype"])
        audio = decode_tensor(audio_row["features"], audio_row["shape"], audio_row["dtype"]).float()
        out: dict[str, Any] = {"clip_id": item.clip_id, "video": video, "struct": struct, "audio": audio}
        if FLAME_PARAMS.name in pos:
            flame_row = self._row(FLAME_PARAMS.name, pos[FLAME_PARAMS.name], ["params", "shape"])
            per_frame = decode_tensor(flame_row["params"], flame_row["shape"], "float32")
            out["flame"] = pool_to_latent_frames(per_frame[None], latent_frames)[0]
        return out


class ShapeBucketBatchSampler(Sampler[list[int]]):
    """Full batches of equal-shape items, one rank's share of them, reshuffled every epoch.

    Every rank computes the same global batch list from (seed, epoch): items shuffled within their shape
    bucket, a short last batch filled up from the same bucket, batches shuffled, the list extended (from
    its start) to a multiple of `world_size`; rank r takes every world_size-th batch. `start` skips batches
    already consumed, which is how a resumed run continues mid-epoch.
    """

    def __init__(
        self,
        buckets: Sequence[Hashable],
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        if not buckets:
            raise UserError("cannot sample batches from an empty dataset")
        self.buckets = list(buckets)
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def global_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + epoch)
        groups: dict[Hashable, list[int]] = {}
        for index, key in enumerate(self.buckets):
            groups.setdefault(key, []).append(index)
        batches: list[list[int]] = []
        for key in sorted(groups, key=repr):
            members = groups[key]
            if self.shuffle:
                rng.shuffle(members)
            for first in range(0, len(members), self.batch_size):
                batch = members[first : first + self.batch_size]
                while len(batch) < self.batch_size:
                    batch.append(members[(len(batch) + first) % len(members)])
                batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        short = -len(batches) % self.world_size
        return batches + [batches[i % len(batches)] for i in range(short)]

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.global_batches(self.epoch)[self.rank :: self.world_size]
        yield from mine[self.start :]

    def __len__(self) -> int:
        return len(self.global_batches(self.epoch)) // self.world_size


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack one bucket's items; `flame` [B, F, 53] with `flame_mask` [B] when any clip has FLAME."""
    batch: dict[str, Any] = {
        "clip_id": [it["clip_id"] for it in items],
        "video": torch.stack([it["video"] for it in items]),
        "struct": torch.stack([it["struct"] for it in items]),
        "audio": torch.stack([it["audio"] for it in items]),
    }
    if any("flame" in it for it in items):
        like = next(it["flame"] for it in items if "flame" in it)
        batch["flame"] = torch.stack([it.get("flame", torch.zeros_like(like)) for it in items])
        batch["flame_mask"] = torch.tensor([("flame" in it) for it in items])
    return batch


def make_dataloader(
    dataset: TrainingDataset,
    batch_size: int,
    rank: int = 0,
    world_size: int = 1,
    seed: int = 0,
    num_workers: int = 0,
    shuffle: bool = True,
) -> DataLoader:
    """A DataLoader over shape buckets for one rank; workers (if any) are spawned and kept across epochs."""
    sampler = ShapeBucketBatchSampler(
        [item.bucket for item in dataset.items], batch_size, rank, world_size, seed, shuffle
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        multiprocessing_context="spawn" if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )
