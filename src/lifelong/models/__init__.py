"""Backbones (feature extractors) and the incremental head that continual methods grow."""

from .cosine import CosineHead
from .heads import ContinualModel, GrowingHead, IncrementalHead, linear_maps, linear_parts
from .lsc import LocalSimilarityHead, kmeans
from .mlp import MLP
from .resnet import CifarResNet, resnet20, resnet32
from .stages import StageOutputs, stage_modules

__all__ = ["MLP", "CifarResNet", "resnet20", "resnet32", "GrowingHead", "IncrementalHead", "ContinualModel", "linear_maps",
           "linear_parts", "LocalSimilarityHead", "kmeans", "StageOutputs", "stage_modules"]
__all__ += ["CosineHead"]
