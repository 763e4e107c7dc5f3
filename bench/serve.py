"""The live server under load: N concurrent sessions, each fed speech at real-time pace over its WebSocket.

    python bench/serve.py --sessions 1 2 4 --seconds 6                      # CPU, tiny preset, 32 px
    python bench/serve.py --sessions 1 4 --preset base --weights DIR inference.device=cuda inference.size=256

Starts the real app (`dualforce_core.serve.app`) under uvicorn on loopback, with RANDOM weights of the
preset, and the VAE and HuBERT of --weights (default: random stand-ins written to a temporary folder,
which fit only the tiny preset), and for each N runs N
clients at once (`dualforce_core.serve.client.stream_realtime`: 40 ms PCM messages, then `end`). Reports,
per N: sustained FPS per session (frames / time between its first and last frame), and p50/p95
audio-to-frame latency over all sessions' speech frames (measured by the server from the arrival of a
frame's last audio sample to the frame being sent). Real time is 25 FPS per session; below it, latency
grows with the length of the talk, so the p95 is only comparable at equal --seconds.
"""

from __future__ import annotations

import argparse
import io
import platform
import tempfile
import threading

import numpy as np
import torch
from PIL import Image

from dualforce_core.config import load_config
from dualforce_core.inference.frontend import portrait_settings
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel
from dualforce_core.sample_data.speech import synthesize_speech
from dualforce_core.serve.background import serve_in_background
from dualforce_core.serve.client import SessionRun, stream_realtime
from dualforce_core.serve.config import ServeLimits
from dualforce_core.weights import init_random

DEFAULTS = [
    "inference.size=32",
    "inference.steps=1",
    "inference.cache_frames=4",
    "inference.hubert_window_s=0.32",
    "inference.hubert_context_s=0.16",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sessions", type=int, nargs="+", default=[1, 2, 4], help="concurrent sessions per run"
    )
    parser.add_argument("--seconds", type=float, default=6.0, help="speech each client streams")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--weights", help="weights root with the VAE and HuBERT (default: random stand-ins)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help=f"config overrides (defaults: {DEFAULTS})"
    )
    return parser.parse_args()


def portrait(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(seed).random((64, 64, 3)) * 255).astype(np.uint8)).save(
        buffer, "PNG"
    )
    return buffer.getvalue()


def run(base: str, sessions: int, seconds: float) -> list[SessionRun]:
    runs: list[SessionRun | None] = [None] * sessions

    def client(i: int) -> None:
        audio = synthesize_speech(
            np.random.default_rng(i), seconds, 16000, f0=120 + 20 * i, formant_scale=1.0
        )
        runs[i] = stream_realtime(base, portrait(i), audio.audio, seed=i)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [i for i, r in enumerate(runs) if r is None]
    if missing:
        raise RuntimeError(f"sessions {missing} failed (see the traceback above)")
    return [r for r in runs if r is not None]


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as stand_ins:
        weights = args.weights or stand_ins
        if args.weights is None:
            init_random(weights, names=["wan_vae", "hubert"])
        config = load_config(None, [f"weights.root={weights}", *DEFAULTS, *args.overrides])
        torch.manual_seed(0)
        generator = StreamingGenerator.from_config(config, DualForceModel.from_preset(args.preset).eval())
        size, _ = portrait_settings(config, None)
        live = serve_in_background(generator, ServeLimits(max_sessions=max(args.sessions)))
        print(
            f"# bench/serve.py: preset {args.preset} (RANDOM weights, stand-in VAE/HuBERT), {size} px, "
            f"{config.inference.steps} step(s), {args.seconds:g} s of speech per session at real-time pace; "
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s)"
        )
        print("| sessions | FPS per session (min / mean) | p50 latency | p95 latency | frames | errors |")
        print("|---|---|---|---|---|---|")
        try:
            for n in args.sessions:
                runs = run(live.base, n, args.seconds)
                fps = [r.sustained_fps for r in runs]
                latencies = [r.end() for r in runs]
                p50 = np.median([e["latency_p50_ms"] for e in latencies])
                p95 = max(e["latency_p95_ms"] for e in latencies)
                errors = sum(len(r.errors()) for r in runs)
                frames = sum(len(r.arrivals) for r in runs)
                print(
                    f"| {n} | {min(fps):.1f} / {np.mean(fps):.1f} | {p50:.0f} ms | {p95:.0f} ms | {frames} | {errors} |",
                    flush=True,
                )
        finally:
            live.stop()


if __name__ == "__main__":
    main()
