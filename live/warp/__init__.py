"""The mesh-warp renderer: an avatar from any photo in a second, no generator needed.

Beside StyleGAN2 (the paper's method), for users without its weights or a GPU, for the offline
demo, and as a measuring instrument: it draws exactly the parameters it is asked for.
"""
