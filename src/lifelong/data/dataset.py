"""The container every image-classification loader returns."""

from dataclasses import dataclass, field

import torch


@dataclass(repr=False)
class Dataset:
    """A train/test split of a classification dataset, held in memory as tensors.

    Images are uint8 (N, C, H, W) in 0..255 (the digits are float32 in [0, 1]); labels are int64 (N,)
    indexing `class_names`. `extras` holds what is specific to one dataset (e.g. CIFAR-100 coarse labels).
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: list[str]
    extras: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={tuple(self.x_train.shape)} {self.x_train.dtype}, "
            f"test={tuple(self.x_test.shape)}, n_classes={self.n_classes}, extras={sorted(self.extras)})"
        )
