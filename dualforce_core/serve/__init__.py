"""`dualforce serve`: live talking-head sessions over HTTP, WebSocket and WebRTC.

Every session is one `StreamingGenerator.stream` (the same code path as `dualforce generate`), fed by
a live audio source instead of a file. The modules, one concept each: `config` (limits), `lane` (the
one compute lane sessions take turns on), `feed` (client audio + idle silence on a real-time clock),
`session` (one stream's thread and its output queue), `registry` (the session table and its limit),
`codec` (portrait and PCM in, JPEG out), `metrics` (Prometheus), `auth` (bearer token), `websocket`
and `webrtc` (the two transports), `app` (the FastAPI routes), `client` (a reference client) and
`background` (the app under uvicorn in a thread, for tests and benchmarks).
"""
