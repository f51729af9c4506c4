"""`live serve`: the loop behind a web page and a WebRTC endpoint, so a browser's camera drives an avatar
and the browser (a call in it, OBS's browser source, the extension's camera) shows the result."""
