"""`live serve`: the avatar in a browser, over WebRTC, with no camera driver."""

from __future__ import annotations

from live.cli.arguments import add_command
from live.serve import LOCAL_ONLY

SERVE_DESCRIPTION = (
    "A web page and WebRTC endpoint on this machine: the page sends your browser's camera to the server, which "
    "runs the same loop as `live run` (tracking, smoothing, the avatar's renderer) for each connection and sends "
    "the avatar back, with its fps and latency shown on the page. Put it into a call as an OBS browser source, "
    "or with the browser extension (printed at start), which adds a 'live avatar' camera to web call apps (Meet, "
    "Teams, Zoom on the web). Several browsers at once each get their own stream. The run options below apply "
    "to every connection; --camera-fps is the rate the loop expects from the browser's camera. "
    "Another address than this machine needs HTTPS and a token (see --host).")


# the run options about a local camera and outputs: in `live serve` both are the browser's
LOCAL_ONLY_FLAGS = tuple(f"run.{key}" for key in LOCAL_ONLY)


def register(sub) -> None:
    add_command(sub, "serve", serve_command, "serve the avatar to a browser over WebRTC (no camera driver needed)",
                None, sections=("serve", "run", "generator", "engine", "tracking", "smoothing"),
                description=SERVE_DESCRIPTION, leave_out=LOCAL_ONLY_FLAGS)


def serve_command(opts, cfg) -> int:
    from live.serve.start import serve
    return serve(cfg)
