"""The browser page, as a person uses it: headless Chromium uploads a portrait, streams its (fake)
microphone, and receives the generated video over WebRTC. Driven through the DevTools protocol."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import soundfile
from websockets.sync.client import ClientConnection, connect

from dualforce_core.inference.generator import StreamingGenerator
from dualforce_core.serve.client import request
from dualforce_core.serve.config import ServeLimits
from tests.serve.conftest import portrait_png, speech, start_server

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-token"


class DevTools:
    """The few DevTools-protocol calls the test needs, over the page target's WebSocket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.ids = ws, itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == call_id:
                assert "error" not in reply, reply
                return dict(reply["result"])

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")


@contextmanager
def chromium(url: str, profile: Path, audio: Path) -> Iterator[DevTools]:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
        "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage",
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={audio}", "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns", f"--user-data-dir={profile}",
        "--remote-debugging-port=0", "--window-size=1100,650", url,
    ]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            port = int(match.group(1)) if match else None
            assert line or process.poll() is None, "chromium exited"
        assert port is not None, "chromium did not open its DevTools port"
        page = None
        while page is None and time.monotonic() < deadline:
            targets = request(f"http://127.0.0.1:{port}", "GET", "/json/list").body
            targets = targets if isinstance(targets, list) else []
            page = next((t for t in targets if t["type"] == "page" and t["url"].startswith(url[:20])), None)
            time.sleep(0.2)
        assert page is not None, "no page target"
        with connect(page["webSocketDebuggerUrl"], proxy=None, max_size=None) as ws:
            yield DevTools(ws)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
def test_page_streams_the_microphone_and_plays_frames_over_webrtc(
    generator: StreamingGenerator, tmp_path: Path
) -> None:
    assert shutil.which(CHROMIUM), "chromium is not installed (make system-deps)"
    soundfile.write(tmp_path / "speech.wav", speech(6.0, seed=7), 16000, subtype="PCM_16")
    (tmp_path / "portrait.png").write_bytes(portrait_png(5, size=64))
    live = start_server(generator, ServeLimits(max_sessions=2), token=TOKEN)
    try:
        with chromium(f"{live.base}/?token={TOKEN}", tmp_path / "profile", tmp_path / "speech.wav") as page:
            deadline = time.monotonic() + 30
            while (
                page.evaluate("document.readyState + !!document.getElementById('portrait')") != "completetrue"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.2)
            found = page.call("Runtime.evaluate", expression="document.getElementById('portrait')")
            portrait = str(tmp_path / "portrait.png")
            page.call("DOM.setFileInputFiles", objectId=found["result"]["objectId"], files=[portrait])
            page.evaluate("document.getElementById('transport').value = 'webrtc'")
            page.evaluate("document.getElementById('start').click()")
            state: dict[str, Any] = {}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                state = json.loads(page.evaluate("JSON.stringify(window.dualforce)"))
                if state["error"] or (state["frames"] >= 50 and state["latencyMs"] is not None):
                    break
                time.sleep(0.5)
            screenshot = tmp_path / "serve_page.png"
            screenshot.write_bytes(base64.b64decode(page.call("Page.captureScreenshot")["data"]))
            metrics = request(live.base, "GET", "/metrics", token=TOKEN).body
    finally:
        live.stop()
    assert state["error"] is None, state
    assert state["transport"] == "webrtc" and state["state"] == "streaming"
    assert state["frames"] >= 50, f"only {state['frames']} frames decoded over WebRTC: {state}"
    assert state["fps"] > 5
    sent = float(re.search(r"^dualforce_serve_frames_sent_total (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    assert sent >= state["frames"]
    client_latency = re.search(r'latency_seconds_count\{source="client"\} (\S+)', metrics)
    assert client_latency and float(client_latency.group(1)) > 0, "no frame was made from the microphone"
    assert screenshot.stat().st_size > 10_000
    print(f"\nscreenshot: {screenshot}")
