"""Fitting and using the direction matrix A for a generator (issue: latent directions)."""
