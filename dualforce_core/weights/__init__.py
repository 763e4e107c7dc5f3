"""Local pretrained weights registry and random stand-ins."""

from dualforce_core.weights.registry import (
    COMPONENTS,
    MissingWeightsError,
    WeightComponent,
    WeightsRegistry,
    init_random,
)

__all__ = ["COMPONENTS", "MissingWeightsError", "WeightComponent", "WeightsRegistry", "init_random"]
