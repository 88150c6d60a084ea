"""The plain L2 penalty towards the previous task's weights: every parameter equally important (Omega = 1),

    L(theta) = L_new(theta) + lambda * sum_i (theta_i - theta*_i)^2

the baseline of Kirkpatrick et al. 2017 (their Fig. 2A) and Hsu et al. 2018 (Table 2)."""

import torch

from .regularization import Regularizer


class L2(Regularizer):
    """Options: `strength` (lambda; default 0.01, Hsu et al.'s task-IL split-MNIST value; 0.01 / 0.5 / 100 for
    task / domain / class-IL)."""

    name = "l2"

    def __init__(self, model, setting: str = "class", strength: float = 0.01):
        super().__init__(model, setting, strength)

    def task_importance(self, task):
        return {n: torch.ones_like(p) for n, p in self.model.named_parameters()}

    def combine(self, new):
        self._importance = new  # Omega stays 1: anchored to the latest weights only (Hsu et al.'s online form)
        self._anchor = self.snapshot()
