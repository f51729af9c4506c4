"""live: real-time face puppeteering through StyleGAN2 latent directions (the application)."""

__version__ = "0.1.0"
