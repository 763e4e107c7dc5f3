"""The whole DualForce configuration: one typed tree, each section owned by its domain package."""

from __future__ import annotations

from dualforce_core.config_model import ConfigModel
from dualforce_core.data.config import DataConfig
from dualforce_core.evaluation.config import EvalConfig
from dualforce_core.inference.config import InferenceConfig
from dualforce_core.lora.config import LoraConfig
from dualforce_core.models.config import ModelConfig
from dualforce_core.schedulers.config import DiffusionConfig
from dualforce_core.training.config import TrainConfig
from dualforce_core.weights.config import WeightsConfig


class DualForceConfig(ConfigModel):
    model: ModelConfig = ModelConfig()
    diffusion: DiffusionConfig = DiffusionConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    inference: InferenceConfig = InferenceConfig()
    eval: EvalConfig = EvalConfig()
    weights: WeightsConfig = WeightsConfig()
    lora: LoraConfig = LoraConfig()
