"""DualForce model library: towers, bridge, scheduler, losses, sampler, features, storage, trainer, metrics.

Never imports Dagster: the Dagster code location (`assets/`, `pipelines/`) calls into this package.
"""

__version__ = "0.1.0"
