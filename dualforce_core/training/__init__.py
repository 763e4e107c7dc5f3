"""Training: FSDP2 parallelism, the trainer loop, kill-safe DCP checkpoints, EMA, tracking.

Nothing is re-exported here: the config schema imports `training.config`, and this package must stay
light to import for that.
"""
