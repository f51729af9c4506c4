"""`live serve`: the loop behind a web page and a WebRTC endpoint, so a browser's camera drives an avatar
and the browser (a call in it, OBS's browser source, the extension's camera) shows the result."""

# run options about a local camera and local outputs: in `live serve` both are the browser's. Left at their
# defaults whatever the config file says (its run.frames would end every connection, run.audio_delay open the
# server's microphone); the CLI does not offer them.
LOCAL_ONLY = ("source", "camera_size", "camera_mjpg", "camera_retry_s", "fast", "loop", "frames", "sinks",
              "vcam_device", "hud", "audio_delay", "audio_input", "audio_output", "stats_every_s", "watch_identity")
