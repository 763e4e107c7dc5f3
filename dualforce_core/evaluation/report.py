"""What an evaluation leaves behind: report.json, report.md, a metrics plot and side-by-side videos.

report.json is the record machines read (and tests diff); report.md is the same content for people,
led by a warning whenever any metric network is a random stand-in, because then no number in it means
anything about the model.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOT = "metrics.png"
SAMPLES_DIR = "samples"

_ROWS = (  # (label, generated key, ground-truth key, protocol: the short name; report.md spells it out)
    ("FID ↓", "fid", None, "clean-fid `legacy_tensorflow`"),
    ("FVD ↓", "fvd", None, "StyleGAN-V `fvd2048_16f`: one clip per video, covariance / N"),
    ("Sync-C ↑", "sync_c", "gt_sync_c", "syncnet_python, {sync_crop} crop"),
    ("Sync-D ↓", "sync_d", "gt_sync_d", "syncnet_python, {sync_crop} crop"),
    ("Sync offset (frames, median)", "sync_offset", "gt_sync_offset", "syncnet_python, {sync_crop} crop"),
    ("CSIM ↑ (vs reference frame)", "csim", "gt_csim", "{identity} cosine"),
    ("ACD ↓ (vs ground truth)", "acd", None, "{identity} L2 of unit embeddings"),
    ("mouth-audio r ↑ (synthetic data)", "mouth_audio_r", "gt_mouth_audio_r", "MouthProbe vs RMS envelope"),
)
_DLIB_ROWS = (  # shown when dlib ran (eval.identity_network=dlib or eval.landmarks) and computed them
    ("LMD ↓ (vs ground truth)", "lmd", None, "dlib mouth 48-67, centred, mean L2 px at 256 (ATVGnet)"),
    (
        "mouth-audio r ↑ (landmarks)",
        "lmk_mouth_audio_r",
        "gt_lmk_mouth_audio_r",
        "dlib inner-lip opening / width vs RMS envelope",
    ),
    ("dlib face found (share of frames)", "face_rate", "gt_face_rate", "dlib HOG, largest face"),
)
STAND_IN_WARNING = (
    "> **⚠ STAND-IN WEIGHTS.** The networks {names} are randomly initialised stand-ins "
    "(`dualforce weights init-random`) or stand-ins fitted to synthetic faces (`dualforce weights fit`), "
    "as `STAND-INS.txt` in the weights folder says for each. FID, FVD, Sync and CSIM/ACD from random "
    "networks are meaningless as a measure of quality; the mouth-audio r (a probe fitted on synthetic "
    "ground truth) measures lip sync on synthetic faces only. Install the real weights "
    "(`dualforce weights --help`) for real numbers."
)


def write_side_by_side(
    path: Path, real: np.ndarray, fake: np.ndarray, audio: np.ndarray, fps: int, audio_rate: int
) -> None:
    """H.264 mp4 of ground truth | generated with the clip's audio (AAC), generated resized to match."""
    count = min(len(real), len(fake))
    height, width = real.shape[1:3]
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = 2 * width, height, "yuv420p"
        sound = container.add_stream("aac", rate=audio_rate, layout="mono")
        for index in range(count):
            right = fake[index]
            if right.shape[:2] != (height, width):
                right = cv2.resize(right, (width, height), interpolation=cv2.INTER_AREA)
            picture = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(np.hstack([real[index], right])), "rgb24"
            )
            picture.pts, picture.time_base = index, Fraction(1, fps)
            container.mux(video.encode(picture))
        container.mux(video.encode())
        samples = np.ascontiguousarray(audio[: round(count * audio_rate / fps)], dtype=np.float32)
        for start in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(
                samples[None, start : start + 1024], format="fltp", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = audio_rate, start, Fraction(1, audio_rate)
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())


def write_frame_strip(
    path: Path, real: np.ndarray, fake: np.ndarray, frames: int = 10, step: int = 2
) -> None:
    """PNG of ground truth (top row) over generated (bottom row), every `step`-th frame from frame 1:
    the mouth's motion at a glance, where a single frame shows none. Small frames are enlarged (nearest)."""
    count = min(len(real), len(fake))
    picks = list(range(1, count, step))[:frames] or [0]
    height, width = real.shape[1:3]
    scale = max(1, 128 // max(height, width))

    def tile(frame: np.ndarray) -> np.ndarray:
        if frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        return np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1)

    rows = [np.hstack([tile(video[i]) for i in picks]) for video in (real, fake)]
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


def plot_metrics(
    path: Path, metrics: dict[str, float | None], clips: list[dict[str, Any]], title: str
) -> None:
    """Three panels: distances to the ground truth, Sync generated vs ground truth, identity scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (dist, sync, ident) = plt.subplots(1, 3, figsize=(12, 3.6))
    names = ["FID", "FVD", "ACD"]
    dist.bar(names, [metrics[k] or 0.0 for k in ("fid", "fvd", "acd")], color="tab:gray")
    dist.set_title("distance to ground truth ↓")
    for key, offset, label in (("sync_c", -0.2, "generated"), ("gt_sync_c", 0.2, "ground truth")):
        sync.bar(offset, metrics[key], width=0.4, label=label)
    for key, offset in (("sync_d", 0.8), ("gt_sync_d", 1.2)):
        sync.bar(offset, metrics[key], width=0.4, color="tab:blue" if key == "sync_d" else "tab:orange")
    sync.set_xticks([0, 1], ["Sync-C ↑", "Sync-D ↓"])
    sync.legend(fontsize=8)
    sync.set_title("lip sync")

    def series(key: str) -> list[float]:  # a clip without a face (dlib) has no CSIM: a gap in the line
        return [np.nan if c[key] is None else c[key] for c in clips]

    ident.plot(series("gt_csim"), "o-", label="ground truth", color="tab:orange")
    ident.plot(series("csim"), "s--", label="generated", color="tab:blue")
    ident.set_xlabel("clip")
    ident.set_ylabel("CSIM vs reference ↑")
    ident.legend(fontsize=8)
    ident.set_title("identity")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _settings(values: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def _sync_crop_line(sync_crop: dict[str, Any]) -> str:
    """`eval.sync_crop` in words: box, or aligned with its framing, smoothing and landmark model file."""
    if sync_crop["mode"] == "box":
        return "- SyncNet crop (`eval.sync_crop`): **box**, one square per clip (the whole stored frame)"
    smoothing = sync_crop["smoothing"]
    files = "; ".join(
        f"`{Path(entry['path']).name}` sha256 `{entry['sha256']}`"
        for entry in sync_crop["landmarks"].values()
    )
    return (
        "- SyncNet crop (`eval.sync_crop`): **aligned**, `curation.align_crop` of every frame on dlib's 68 "
        f"landmarks ({sync_crop['detector']}; {files}); framing (`eval.sync_align`): "
        f"{_settings(sync_crop['align'])}; landmark smoothing (`eval.sync_smoothing`): "
        + ("none" if smoothing["method"] == "none" else _settings(smoothing))
    )


def render_markdown(report: dict[str, Any]) -> str:
    protocol = report["protocol"]
    stand_ins = [name for name, entry in protocol["weights"].items() if entry["stand_in"]]
    lines = [STAND_IN_WARNING.format(names=", ".join(stand_ins)), ""] if stand_ins else []
    metrics = report["metrics"]
    identity = {"dlib": "dlib ResNet"}.get(protocol.get("identity_network", "arcface"), "ArcFace")
    rows = list(_ROWS) + [
        (label, key, gt, name)
        for label, key, gt, name in _DLIB_ROWS
        if any(metrics.get(k) is not None for k in (key, gt) if k)
    ]
    lines += [
        f"# Evaluation report: {report['name']}",
        "",
        f"- mode: **{report['mode']}**"
        + (f" (checkpoint `{report['checkpoint']}`)" if report["checkpoint"] else ""),
        f"- dataset `{report['dataset']}`, split `{report['split']}`: {protocol['clips']} clips, "
        f"identities: {protocol['identities']}",
        f"- created {report['created_at']}"
        + (f", MLflow run `{report['mlflow_run_id']}`" if report["mlflow_run_id"] else ""),
        "",
        "## Metrics",
        "",
        "| metric | generated | ground truth | protocol |",
        "|---|---|---|---|",
        *(
            f"| {label} | {_number(metrics[key])} | {_number(metrics[gt]) if gt else '—'} | "
            f"{name.format(identity=identity, sync_crop=protocol['sync_crop']['mode'])} |"
            for label, key, gt, name in rows
        ),
        "",
        *(f"- {note}" for note in report["notes"]),
        "",
        f"![metrics]({report['plot']})",
        "",
        "## Samples (ground truth | generated)",
        "",
        *(f"- [{Path(sample).stem}]({sample})" for sample in report["samples"]),
        "",
        *(f"![every 2nd frame: ground truth over generated]({strip})" for strip in report.get("strips", [])),
        "",
        "## Time (seconds)",
        "",
        "| step | per clip | total |",
        "|---|---|---|",
        *(
            f"| {step} | {report['seconds_per_clip'][step]:.3f} | {total:.3f} |"
            for step, total in report["seconds_total"].items()
        ),
        "",
        "## Protocol",
        "",
        f"- clip list sha256 `{protocol['clip_list_sha256']}` ({protocol['clips']} clips, `clips` table "
        f"version {protocol['clips_table_version']})",
        f"- split by identity ({protocol['identity_rule']}), test fraction {protocol['test_fraction']}",
        f"- ground truth {protocol['resolution'][0]}x{protocol['resolution'][1]} at {protocol['fps']} fps, "
        f"frames per clip {protocol['frames_per_clip']}, audio {protocol['audio_sample_rate']} Hz",
        f"- Sync offsets ±{protocol['sync_offsets']}; FVD: one {protocol['fvd_clip_frames']}-frame clip per "
        f"video ({protocol['fvd_clips']} clips)",
        _sync_crop_line(protocol["sync_crop"]),
        f"- CSIM/ACD network: {identity}; dlib landmark metrics (LMD, landmark mouth-audio r): "
        f"{'on' if protocol.get('landmarks') else 'off'}",
        f"- face box: {protocol['face_box']}",
        *(f"- {name}: {text}" for name, text in protocol["definitions"].items()),
        "",
        "| network | stand-in | sha256 | path |",
        "|---|---|---|---|",
        *(
            f"| {name} | {'**yes**' if entry['stand_in'] else 'no'} | `{entry['sha256']}` | `{entry['path']}` |"
            for name, entry in protocol["weights"].items()
        ),
        "",
        "## Per clip",
        "",
        "| clip | identity | frames | Sync-C | Sync-D | offset | CSIM | ACD | LMD | GT Sync-C | GT Sync-D | GT offset | GT CSIM |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| `{c['clip_id'][:12]}` | {c['identity']} | {c['frames']} | {_number(c['sync_c'])} | "
            f"{_number(c['sync_d'])} | {c['sync_offset']} | {_number(c['csim'])} | {_number(c['acd'])} | "
            f"{_number(c.get('lmd'))} | {_number(c['gt_sync_c'])} | {_number(c['gt_sync_d'])} | "
            f"{c['gt_sync_offset']} | {_number(c['gt_csim'])} |"
            for c in report["clips"]
        ),
        "",
    ]
    return "\n".join(lines)


def write_report(report_dir: Path, report: dict[str, Any]) -> str:
    """Write report.json, report.md and the plot into `report_dir`; returns the markdown."""
    plot_metrics(
        report_dir / PLOT, report["metrics"], report["clips"], f"{report['name']} ({report['mode']})"
    )
    (report_dir / REPORT_JSON).write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    markdown = render_markdown(report)
    (report_dir / REPORT_MD).write_text(markdown)
    return markdown
