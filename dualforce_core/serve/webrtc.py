"""The WebRTC transport (aiortc): the browser's microphone in; the generated video and its audio out.

The offer's audio track is resampled to 16 kHz mono and pushed into the session like WebSocket PCM.
Frames leave through two outgoing tracks fed by one pump that paces them at 25 fps on the session's
timeline: each video frame goes out with the 40 ms of audio it was made from, so the browser plays
voice and lips together (a microphone round trip echoes the user; a TTS voice plays as the avatar's).
Events (ready, stats, error, end) travel on the data channel the client opens, which also takes
`{"type": "interrupt"}` and `{"type": "end"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from dualforce_core.errors import UserError
from dualforce_core.serve.codec import PCM_SCALE, float_to_pcm
from dualforce_core.serve.registry import SessionRegistry
from dualforce_core.serve.session import OutFrame, Session, StreamEnd
from dualforce_core.timeline import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)
VIDEO_CLOCK = 90_000
AUDIO_PACKET = SAMPLE_RATE // 50  # 20 ms, WebRTC's usual packet
MAX_DRIFT_S = 0.5  # a pump this far behind its clock re-anchors instead of bursting to catch up


class QueueTrack(MediaStreamTrack):
    """An outgoing track whose frames the pump puts in a queue; None ends it."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[av.VideoFrame | av.AudioFrame | None] = asyncio.Queue()

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


class Peer:
    """One session's peer connection, its two outgoing tracks, its data channel and its tasks."""

    def __init__(self, session: Session, registry: SessionRegistry, peers: set[Any]) -> None:
        self.session, self.registry, self.peers = session, registry, peers
        self.pc = RTCPeerConnection()
        self.video, self.audio = QueueTrack("video"), QueueTrack("audio")
        self.channel: RTCDataChannel | None = None
        self.pending: list[dict] = []  # events before the data channel opened
        self.tasks: set[asyncio.Task] = set()
        self.closed = False
        peers.add(self.pc)
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("connectionstatechange", self._on_state)

    async def answer(self, sdp: str) -> RTCSessionDescription:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        kinds = {t.kind for t in self.pc.getTransceivers()}
        if "video" not in kinds:
            raise ValueError("the offer has no video transceiver to receive the generated video on")
        self.pc.addTrack(self.video)
        if "audio" in kinds:
            self.pc.addTrack(self.audio)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.session.attach("webrtc")
        self._spawn(self._pump())
        return self.pc.localDescription

    def send_event(self, event: dict) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(event))
        else:
            self.pending.append(event)

    async def close(self, remove_session: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        if remove_session:
            self.registry.remove(self.session.id)
        for track in (self.video, self.audio):
            track.queue.put_nowait(None)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        await self.pc.close()
        self.peers.discard(self.pc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._pull_microphone(track))

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self.channel = channel

        @channel.on("open")
        def flush() -> None:
            self.send_event({"type": "ready"})
            for event in self.pending:
                self.send_event(event)
            self.pending.clear()

        @channel.on("message")
        def control(message: str | bytes) -> None:
            try:
                kind = json.loads(message).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "interrupt":
                self.session.interrupt()
            elif kind == "end":
                self.session.end()
            else:
                self.send_event(
                    {"type": "error", "error": f"unknown data channel message {str(message)[:80]!r}"}
                )

        if channel.readyState == "open":
            flush()

    async def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.close()

    async def _pull_microphone(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):  # type: ignore[arg-type]
                samples = out.to_ndarray().reshape(-1).astype(np.float32) / PCM_SCALE
                try:
                    self.session.push_audio(samples)
                except UserError as err:
                    self.send_event({"type": "error", "error": str(err)})

    async def _pump(self) -> None:
        """Session frames → the two tracks at 25 fps; events → the data channel; stats once a second."""
        session, loop = self.session, asyncio.get_running_loop()
        limits = session.limits
        sent, clock = 0, None
        next_stats = loop.time() + limits.stats_interval_s
        try:
            while True:
                now = loop.time()
                if now >= next_stats:
                    self.send_event(session.stats_event())
                    next_stats = now + limits.stats_interval_s
                try:
                    item = await asyncio.wait_for(session.out.get(), timeout=max(next_stats - now, 0.01))
                except TimeoutError:
                    continue
                if isinstance(item, OutFrame):
                    if not session.is_current(item):
                        session.done_with(item, sent=False)
                        continue
                    clock = loop.time() if clock is None else clock
                    delay = clock + sent / FPS - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    elif delay < -MAX_DRIFT_S:
                        clock -= delay
                    self._send_frame(item, sent)
                    session.done_with(item, sent=True)
                    sent += 1
                elif isinstance(item, StreamEnd):
                    self.send_event(session.end_event(item))
                    await asyncio.sleep(0.5)  # let the event and the last frames leave
                    break
                elif item is None:
                    break
                else:
                    self.send_event(item)
        except Exception:
            log.exception("WebRTC pump of session %s failed", session.id)
        finally:
            with contextlib.suppress(Exception):
                await self.close()

    def _send_frame(self, frame: OutFrame, index: int) -> None:
        video = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
        video.pts, video.time_base = index * (VIDEO_CLOCK // FPS), Fraction(1, VIDEO_CLOCK)
        self.video.queue.put_nowait(video)
        pcm = float_to_pcm(frame.audio)
        for start in range(0, len(pcm), AUDIO_PACKET):
            audio = av.AudioFrame.from_ndarray(
                pcm[None, start : start + AUDIO_PACKET], format="s16", layout="mono"
            )
            audio.sample_rate = SAMPLE_RATE
            audio.pts, audio.time_base = index * len(pcm) + start, Fraction(1, SAMPLE_RATE)
            self.audio.queue.put_nowait(audio)


async def answer_offer(
    session: Session, registry: SessionRegistry, sdp: str, peers: set[Any]
) -> RTCSessionDescription:
    """SDP offer → answer; the session's frames then flow to this peer."""
    if session.transport is not None:
        raise UserError(f"session {session.id} already has a {session.transport} client")
    peer = Peer(session, registry, peers)
    try:
        return await peer.answer(sdp)
    except Exception:
        await peer.close(remove_session=session.transport is not None)
        raise
