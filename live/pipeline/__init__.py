"""The real-time loop: capture -> motion (track, parameters, smoothing, delta_p) -> render
(latent blend, synthesis, post-process) -> sinks, each stage on its own thread."""
