"""`dualforce serve`: the live streaming server (HTTP + WebSocket + WebRTC) on one shared model."""

from __future__ import annotations

import argparse
import os
import sys

import torch

from dualforce_core.cli.common import add_config_args, config_from_args
from dualforce_core.cli.generate_cmd import is_untrained
from dualforce_core.config import DualForceConfig
from dualforce_core.errors import UserError
from dualforce_core.inference.frontend import portrait_settings
from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.models import DualForceModel
from dualforce_core.preprocessing import Preprocessing
from dualforce_core.weights import WeightsRegistry

TOKEN_ENV = "DUALFORCE_SERVE_TOKEN"
# HuBERT's default 10 s windows suit files; live audio needs features within a fraction of a second.
LIVE_INFERENCE = {"hubert_window_s": 0.32, "hubert_context_s": 0.16}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="live server: portrait + streamed speech in, talking-head video out (WebSocket, WebRTC, browser)",
        description="Serve live talking-head sessions. POST /v1/sessions with a portrait opens one; its "
        "WebSocket (/v1/sessions/<id>/ws) takes PCM s16le 16 kHz mono and sends one JPEG per 25 fps frame, "
        "or POST /v1/sessions/<id>/offer starts WebRTC (microphone in, video + audio out). / is a browser "
        "page, /metrics Prometheus, /healthz a health check. The model comes from --checkpoint or is a "
        "RANDOM --preset (smoke tests). Unless overridden, HuBERT runs on short windows "
        f"(inference.hubert_window_s={LIVE_INFERENCE['hubert_window_s']}, "
        f"inference.hubert_context_s={LIVE_INFERENCE['hubert_context_s']}) for low latency.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="DIR", help="a saved model (config.json + model.safetensors)")
    source.add_argument("--preset", metavar="NAME", help="a randomly initialised model of this preset (tiny)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument(
        "--token",
        help=f"require 'Authorization: Bearer TOKEN' on every request (default: ${TOKEN_ENV} when set)",
    )
    parser.add_argument("--max-sessions", type=int, default=4, metavar="N", help="open sessions at once (4)")
    parser.add_argument(
        "--max-session-s", type=float, default=3600.0, metavar="S", help="longest session in seconds (3600)"
    )
    parser.add_argument(
        "--idle-timeout-s",
        type=float,
        default=300.0,
        metavar="S",
        help="close a session whose client sends nothing (or never connects) for this long (300)",
    )
    add_config_args(parser)
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn  # the server stack loads only for this command

    from dualforce_core.serve.app import create_app
    from dualforce_core.serve.config import ServeLimits

    if args.max_sessions < 1:
        raise UserError("--max-sessions must be at least 1")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    given = {o.partition("=")[0] for o in args.overrides}
    args.overrides[:0] = [
        f"inference.{k}={v}" for k, v in LIVE_INFERENCE.items() if f"inference.{k}" not in given
    ]
    config = config_from_args(args)
    generator = load_generator(config, args.checkpoint, args.preset)
    size, crop = portrait_settings(config, generator.preprocessing)
    limits = ServeLimits(
        max_sessions=args.max_sessions, max_session_s=args.max_session_s, idle_timeout_s=args.idle_timeout_s
    )
    app = create_app(generator, size, crop, limits, token)
    if args.host not in ("127.0.0.1", "localhost", "::1") and token is None:
        print(
            f"WARNING: serving on {args.host} without --token: anyone who can reach it can use it",
            file=sys.stderr,
        )
    print(f"dualforce serve: http://{args.host}:{args.port}/ ({size}x{size} video, 25 fps)", file=sys.stderr)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="info", ws_max_size=4 * limits.max_message_bytes
    )
    return 0


def load_generator(config: DualForceConfig, checkpoint: str | None, preset: str | None) -> StreamingGenerator:
    """The networks every session shares, loaded once (as `dualforce generate` loads them)."""
    record = None
    if preset:
        torch.manual_seed(config.inference.seed)
        model = DualForceModel.from_preset(preset)
        print(
            f"WARNING: the model is a RANDOMLY INITIALISED '{preset}' preset: the video is noise",
            file=sys.stderr,
        )
    else:
        assert checkpoint is not None
        record = Preprocessing.load(checkpoint)
        model = DualForceModel.from_pretrained(checkpoint)
        if is_untrained(model):
            print(f"WARNING: the checkpoint {checkpoint} has never been trained", file=sys.stderr)
    registry = WeightsRegistry.from_config(config.weights)
    stand_ins = [n for n in ("wan_vae", "hubert", "liveportrait_motion") if registry.is_stand_in(n)]
    if stand_ins:
        print(
            f"WARNING: stand-in weights for {', '.join(stand_ins)} (not the real networks)", file=sys.stderr
        )
    generator = StreamingGenerator.from_config(config, model.eval(), preprocessing=record)
    for note in generator.stats.notes:
        print(f"note: {note}", file=sys.stderr)
    return generator
