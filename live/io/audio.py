"""Microphone passthrough, delayed to match the video (`--audio-delay auto|MS|off`).

The video a call receives is late by the pipeline's latency; the voice, sent straight from the
microphone, is not. Routing the microphone through a delay line into an output device (a
virtual audio cable the call app uses as its microphone) puts the avatar's lips back in sync.
`auto` follows the measured median latency of the video (capture to sink) as the run goes.
No audio device, or no PortAudio: a clear message, and the video goes on without it.
"""

from __future__ import annotations

import threading

import numpy as np
from loguru import logger


class AudioUnavailable(RuntimeError):
    pass


class DelayLine:
    """A mono/stereo ring buffer: what goes in comes out `delay` samples later (silence first)."""

    def __init__(self, channels: int, max_samples: int):
        self.buf = np.zeros((max_samples, channels), np.float32)
        self.write_pos = 0
        self.delay = 0
        self.lock = threading.Lock()

    def set_delay(self, samples: int) -> None:
        with self.lock:
            self.delay = int(min(max(samples, 0), len(self.buf) - 1))

    def process(self, block: np.ndarray) -> np.ndarray:
        n, size = len(block), len(self.buf)
        with self.lock:
            idx = (self.write_pos + np.arange(n)) % size
            self.buf[idx] = block
            out = self.buf[(idx - self.delay) % size].copy()
            self.write_pos = (self.write_pos + n) % size
        return out


def parse_delay(spec: str) -> float | None:
    """'off' -> None; 'auto' -> -1 (follow the video); '120' -> 120 ms."""
    spec = str(spec).strip().lower()
    if spec in ("off", "none", ""):
        return None
    if spec == "auto":
        return -1.0
    try:
        value = float(spec.removesuffix("ms"))
    except ValueError:
        raise ValueError(f"--audio-delay must be auto, off or milliseconds, got {spec!r}") from None
    if not 0 <= value <= 2000:
        raise ValueError(f"--audio-delay {value:g} ms is outside 0..2000")
    return value


class AudioPassthrough:
    def __init__(self, delay_ms: float, input_device=None, output_device=None, samplerate: int = 48_000,
                 channels: int = 1):
        try:
            import sounddevice as sd
        except OSError as e:  # the PortAudio library is missing
            raise AudioUnavailable(f"audio needs PortAudio ({e}); Debian/Ubuntu: sudo apt install libportaudio2") from None
        try:
            devices = sd.query_devices()
        except Exception as e:
            raise AudioUnavailable(f"cannot list audio devices ({e})") from None
        if not any(d["max_input_channels"] > 0 for d in devices) or not any(d["max_output_channels"] > 0 for d in devices):
            raise AudioUnavailable("no microphone and output device found; connect them (or create a virtual audio "
                                   "cable: VB-Cable on Windows, BlackHole on macOS, a PulseAudio null sink on Linux)")
        self.samplerate, self.auto = samplerate, delay_ms < 0
        self.line = DelayLine(channels, samplerate * 2)
        self.line.set_delay(int(max(delay_ms, 0) * samplerate / 1000))

        def callback(indata, outdata, frames, time, status):
            outdata[:] = self.line.process(indata)

        try:
            self.stream = sd.Stream(samplerate=samplerate, channels=channels, dtype="float32",
                                    device=(input_device, output_device), callback=callback)
            self.stream.start()
        except Exception as e:
            raise AudioUnavailable(f"cannot open the audio devices ({e}); check --audio-input/--audio-output "
                                   f"(python -m sounddevice lists them)") from None
        logger.info("audio passthrough on, delay {}", "following the video latency" if self.auto else f"{delay_ms:g} ms")

    def follow_latency(self, video_latency_ms: float) -> None:
        if self.auto:
            self.line.set_delay(int(video_latency_ms * self.samplerate / 1000))

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


def start_audio(spec: str, input_device=None, output_device=None) -> AudioPassthrough | None:
    delay = parse_delay(spec)
    if delay is None:
        return None
    try:
        return AudioPassthrough(delay, input_device, output_device)
    except AudioUnavailable as e:
        logger.error("audio passthrough off: {}. The video goes on.", e)
        return None
