"""Evaluation metrics: FID, FVD, Sync-C/Sync-D, CSIM and ACD, with their networks loaded from local weights.

The maths (`frechet_distance`, `sync_scores`, `acd`, …) takes plain arrays; the networks are loaded
from the weights registry with their real loaders (`MetricNetworks.from_registry`) and each has a
random stand-in writer in its real file format for tests and the demo.
"""

from dualforce_core.metrics.crops import face_crops
from dualforce_core.metrics.frechet import feature_statistics, frechet_distance
from dualforce_core.metrics.i3d import i3d_features, load_i3d, video_clips
from dualforce_core.metrics.identity import acd, csim, csim_from_embeddings, identity_embeddings, load_arcface
from dualforce_core.metrics.inception import inception_features, load_inception
from dualforce_core.metrics.mfcc import mfcc
from dualforce_core.metrics.networks import MetricNetworks, protocol
from dualforce_core.metrics.sync import SyncScores, sync_scores
from dualforce_core.metrics.syncnet import SyncNet, load_syncnet, syncnet_distances

__all__ = [
    "MetricNetworks",
    "SyncNet",
    "SyncScores",
    "acd",
    "csim",
    "csim_from_embeddings",
    "face_crops",
    "feature_statistics",
    "frechet_distance",
    "i3d_features",
    "identity_embeddings",
    "inception_features",
    "load_arcface",
    "load_i3d",
    "load_inception",
    "load_syncnet",
    "mfcc",
    "protocol",
    "sync_scores",
    "syncnet_distances",
    "video_clips",
]
