"""Backbones (feature extractors) and the incremental head that continual methods grow."""

from .cosine import CosineHead
from .heads import ContinualModel, IncrementalHead, linear_maps, linear_parts
from .mlp import MLP
from .resnet import CifarResNet, resnet20, resnet32

__all__ = ["MLP", "CifarResNet", "resnet20", "resnet32", "IncrementalHead", "ContinualModel", "linear_maps",
           "linear_parts"]
__all__ += ["CosineHead"]
