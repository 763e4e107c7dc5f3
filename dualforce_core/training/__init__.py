"""Training: the objective, what a run builds and exports, FSDP2, the loop, DCP checkpoints, EMA, tracking.

Nothing is re-exported here: the config schema imports `training.config`, and this package must stay
light to import for that.
"""
