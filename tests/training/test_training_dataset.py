"""The joined, version-pinned, sharded and bucketed training loader over real Lance tables."""

from __future__ import annotations

import lance
import pytest
import torch

from dualforce_core import paths
from dualforce_core.config import load_config
from dualforce_core.data.lance_store import table_version
from dualforce_core.data.struct_stats import load_struct_stats
from dualforce_core.data.training_dataset import (
    ShapeBucketBatchSampler,
    TrainingDataset,
    make_dataloader,
)
from dualforce_core.errors import UserError
from dualforce_core.models import StructTokenProjector
from tests.training.feature_tables import clip_tensors, write_feature_tables

MODEL = load_config(overrides=["model.preset=tiny"]).model


def test_items_are_the_forward_tensors_of_the_stored_rows() -> None:
    ids = write_feature_tables("ds", num_clips=3, latent_frames=3)
    data = TrainingDataset("ds", MODEL)
    assert len(data) == 3 and data.has_flame
    item = data[1]
    assert item["clip_id"] == ids[1]
    raw = clip_tensors(1, 3, 8, 3, 32)
    assert item["video"].dtype == torch.float32 and item["video"].shape == (16, 3, 8, 8)
    torch.testing.assert_close(item["video"], raw["latents"].bfloat16().float())
    stats = load_struct_stats("ds")
    normalised = (raw["motion"] - torch.tensor(stats.mean).float()) / torch.tensor(stats.std).float()
    packed = StructTokenProjector.from_config(MODEL).pack(normalised[None])[0]
    assert item["struct"].shape == (3, 21, 40)
    torch.testing.assert_close(item["struct"], packed)
    assert item["audio"].shape == (18, 3, 32) and item["audio"].dtype == torch.float32
    assert item["flame"].shape == (3, 53)
    torch.testing.assert_close(item["flame"][1], raw["flame"][1:5].mean(0))


def test_only_clips_in_every_required_table_and_flame_is_optional() -> None:
    write_feature_tables("ds", num_clips=4, flame=False)
    write_feature_tables("other", num_clips=2)
    data = TrainingDataset("ds", MODEL)
    assert len(data) == 4 and not data.has_flame and "flame" not in data[0]
    # A clip present in only some tables is left out.
    write_feature_tables("ds", num_clips=1, first_index=10)
    lance.dataset(paths.table_uri("audio_features")).delete("clip_id = 'ds-0010'")
    data = TrainingDataset("ds", MODEL)
    assert "ds-0010" not in {item.clip_id for item in data.items} and len(data) == 4


def test_versions_are_pinned_at_construction() -> None:
    write_feature_tables("ds", num_clips=2)
    data = TrainingDataset("ds", MODEL)
    versions = dict(data.versions)
    assert versions == {name: table_version(name) for name in versions}
    before = data[0]["video"].clone()
    write_feature_tables("ds", num_clips=3, first_index=5)  # new rows, new versions
    assert len(data) == 2
    torch.testing.assert_close(data[0]["video"], before)
    assert len(TrainingDataset("ds", MODEL)) == 5
    assert len(TrainingDataset("ds", MODEL, versions)) == 2


def test_missing_or_empty_tables_name_the_table_and_the_command() -> None:
    with pytest.raises(UserError, match=r"video_latents.*dualforce extract latents"):
        TrainingDataset("ds", MODEL)
    write_feature_tables("other", num_clips=1)
    with pytest.raises(UserError, match=r"no rows of dataset 'ds'.*dualforce extract latents --dataset ds"):
        TrainingDataset("ds", MODEL)


def test_buckets_hold_one_shape_and_ranks_get_equal_full_shares() -> None:
    buckets = ["a"] * 5 + ["b"] * 3
    per_rank = []
    for rank in range(3):
        sampler = ShapeBucketBatchSampler(buckets, batch_size=2, rank=rank, world_size=3, seed=1)
        sampler.set_epoch(4)
        per_rank.append(list(sampler))
    assert len({len(batches) for batches in per_rank}) == 1  # uneven shards padded: no rank waits
    for batches in per_rank:
        for batch in batches:
            assert len(batch) == 2 and len({buckets[i] for i in batch}) == 1
    covered = {i for batches in per_rank for batch in batches for i in batch}
    assert covered == set(range(8))
    resumed = ShapeBucketBatchSampler(buckets, batch_size=2, rank=1, world_size=3, seed=1)
    resumed.set_epoch(4, start=1)
    assert list(resumed) == per_rank[1][1:]
    other_epoch = ShapeBucketBatchSampler(buckets, batch_size=2, rank=1, world_size=3, seed=1)
    other_epoch.set_epoch(5)
    assert list(other_epoch) != per_rank[1]


def test_dataloader_batches_mixed_lengths_in_spawned_workers() -> None:
    write_feature_tables("ds", num_clips=6, latent_frames=[3, 3, 3, 5, 5, 5])
    data = TrainingDataset("ds", MODEL)
    loader = make_dataloader(data, batch_size=2, num_workers=1, seed=0)
    assert loader.multiprocessing_context is not None
    assert loader.multiprocessing_context.get_start_method() == "spawn"
    shapes = []
    for batch in loader:
        assert batch["video"].shape[0] == 2 and batch["flame_mask"].all()
        frames = batch["video"].shape[2]
        assert batch["struct"].shape[:2] == (2, frames) and batch["audio"].shape[1] == 2 * (
            1 + 4 * (frames - 1)
        )
        shapes.append(frames)
    assert sorted(shapes) == [3, 3, 5, 5]  # 3 clips per length: one full batch + one padded each
