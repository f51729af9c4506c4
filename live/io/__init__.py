"""Frames in and out: sources (camera, video, image), sinks (virtual camera, window, file), audio."""
