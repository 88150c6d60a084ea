"""Finetune-FC (Li & Hoiem 2016, section 4): after the first task the lower (convolutional) layers are frozen;
the fully connected layers above them and the new head are trained."""

from ..errors import ConfigError
from ..models import ContinualModel
from .base import Method


def default_lower_blocks(backbone) -> int:
    """How many backbone blocks count as "lower" when the user does not say.

    An MLP: every hidden layer but the last (the last plays the part of fc7, the ones below the convolutional
    features). A convolutional backbone with no fully connected layer (the CIFAR ResNets): all of it, so
    Finetune-FC trains the head alone there, like feature extraction.
    """
    n_blocks = len(backbone.blocks)
    return max(n_blocks - 1, 1) if type(backbone).__name__ == "MLP" else n_blocks


class FinetuneFC(Method):
    name = "finetune-fc"

    def __init__(self, model: ContinualModel, setting: str = "class", lower_blocks: int | None = None):
        super().__init__(model, setting)
        n_blocks = len(model.backbone.blocks)
        if lower_blocks is None:
            lower_blocks = default_lower_blocks(model.backbone)
        if not 0 <= lower_blocks <= n_blocks:
            raise ConfigError(f"lower_blocks must be between 0 and {n_blocks} for this backbone, got {lower_blocks}")
        self.lower_blocks = lower_blocks

    def before_task(self, task):
        super().before_task(task)
        if task.id > 0:
            self.model.backbone.blocks[: self.lower_blocks].requires_grad_(False)
