from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from dualforce_core.cli.main import main
from dualforce_core.inference.frontend import load_speech
from dualforce_core.inference.writer import Mp4Writer
from dualforce_core.models import DualForceModel
from tests.records import write_identity_record

RATE = 16000


def speech(path: Path, seconds: float, amplitude: float = 0.3) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    wave = amplitude * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, wave.astype(np.float32), RATE)
    return path


def portrait(path: Path) -> Path:
    cv2.imwrite(str(path), (np.random.default_rng(0).random((72, 56, 3)) * 255).astype(np.uint8))
    return path


def generate(
    tmp_path: Path, weights: Path, *extra: str, image: Path | None = None, audio: Path | None = None
) -> int:
    return main(
        [
            "generate",
            "--preset",
            "tiny",
            "--image",
            str(image or portrait(tmp_path / "face.png")),
            "--audio",
            str(audio or speech(tmp_path / "speech.wav", 1.0)),
            "--out",
            str(tmp_path / "out.mp4"),
            "--no-progress",
            *extra,
            f"weights.root={weights}",
            "inference.size=32",
            "inference.steps=1",
        ]
    )


def test_generate_writes_a_25fps_mp4_with_the_speech(
    tmp_path: Path, stand_in_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latents = tmp_path / "latents.safetensors"
    assert generate(tmp_path, stand_in_weights, "--save-latents", str(latents)) == 0
    out = capsys.readouterr()
    assert "RANDOMLY INITIALISED" in out.err and "stand-in" in out.err
    assert "FPS" in out.out and "first chunk after" in out.out and "peak memory" in out.out
    with av.open(str(tmp_path / "out.mp4")) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.average_rate == 25 and audio.codec_context.name == "aac"
        frames = sum(1 for _ in container.decode(video=0))
    chunk_s = 2 * 4 / 25  # the tiny preset's chunk: 2 latent frames = 8 video frames
    assert abs(frames / 25 - 1.0) <= chunk_s
    assert frames == 25  # exactly the frames that cover the audio
    saved = load_file(str(latents))
    assert saved["video_latents"].shape[:3] == (1, 16, 1 + 3 * 2) and saved["struct_tokens"].shape[1] == 7


def bad_image(tmp_path: Path) -> Path:
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG not really")
    return path


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing image", "does not exist"),
        ("corrupt image", "cannot be decoded"),
        ("no face", "no usable face"),
        ("silent audio", "silent"),
        ("empty audio", "empty"),
        ("zero-length audio", "empty"),
        ("unsupported audio", "unsupported format"),
        ("too long audio", "max_audio_s"),
    ],
)
def test_bad_input_is_one_clear_error(
    tmp_path: Path, stand_in_weights: Path, capsys: pytest.CaptureFixture[str], case: str, needle: str
) -> None:
    image, audio, extra = None, None, []
    if case == "missing image":
        image = tmp_path / "nobody.png"
    elif case == "corrupt image":
        image = bad_image(tmp_path)
    elif case == "no face":
        extra = ["data.crop_mode=haar"]
    elif case == "silent audio":
        audio = speech(tmp_path / "quiet.wav", 1.0, amplitude=0.0)
    elif case == "empty audio":
        audio = speech(tmp_path / "short.wav", 0.01)
    elif case == "zero-length audio":
        audio = speech(tmp_path / "nothing.wav", 0.0)
    elif case == "unsupported audio":
        audio = tmp_path / "speech.txt"
        audio.write_text("hello")
    else:
        extra = ["inference.max_audio_s=0.5"]
    assert generate(tmp_path, stand_in_weights, *extra, image=image, audio=audio) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1
    assert not (tmp_path / "out.mp4").exists()


def test_checkpoint_run_matches_its_reference_path_and_says_it_is_untrained(
    tmp_path: Path, stand_in_weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = write_identity_record(
        DualForceModel.from_preset("tiny").save_pretrained(tmp_path / "ckpt"), 32
    )
    image, audio = portrait(tmp_path / "face.png"), speech(tmp_path / "speech.wav", 1.2)
    args = ["--checkpoint", str(checkpoint), "--image", str(image), "--audio", str(audio), "--no-progress"]
    common = [
        f"weights.root={stand_in_weights}",
        "inference.size=32",
        "inference.steps=2",
        "inference.cache_frames=2",
    ]
    for name, extra in (("cached", []), ("reference", ["--no-kv-cache"])):
        out = [
            "--out",
            str(tmp_path / f"{name}.mp4"),
            "--save-latents",
            str(tmp_path / f"{name}.safetensors"),
        ]
        assert main(["generate", *args, *out, *extra, *common]) == 0
    assert "never been trained" in capsys.readouterr().err
    cached, reference = (load_file(str(tmp_path / f"{n}.safetensors")) for n in ("cached", "reference"))
    assert (
        cached["video_latents"].shape[2] == 1 + 4 * 2
    )  # 30 frames → 9 latent frames: reference + 4 chunks of 2
    for key in cached:
        torch.testing.assert_close(cached[key], reference[key], rtol=1e-4, atol=1e-4)


def test_speech_loads_from_flac_and_mp4(tmp_path: Path) -> None:
    wave = sf.read(speech(tmp_path / "speech.wav", 0.5))[0].astype(np.float32)
    sf.write(tmp_path / "speech.flac", wave, RATE)
    with Mp4Writer(tmp_path / "talk.mp4", 25, RATE) as writer:
        writer.add_audio(wave)
        writer.write(np.zeros((13, 16, 16, 3), np.uint8))
    flac = load_speech(tmp_path / "speech.flac", 10.0)
    np.testing.assert_allclose(flac, wave, atol=1e-3)
    from_mp4 = load_speech(tmp_path / "talk.mp4", 10.0)
    assert abs(len(from_mp4) - len(wave)) <= 2048 and np.abs(from_mp4).max() > 0.1
