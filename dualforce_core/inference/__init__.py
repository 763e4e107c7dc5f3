"""Streaming generation: K/V cache, chunked diffusion-forcing sampler, streaming VAE decode, front end.

Nothing is imported here: `dualforce_core.config` imports `inference.config`, which must stay light.
"""
