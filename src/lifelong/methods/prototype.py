"""Cosine prototypes on a frozen backbone: the decoupled baseline of few-shot class-incremental learning that CEC
(Zhang et al., CVPR 2021, "Decoupled-Cosine"), FACT (Zhou et al., CVPR 2022) and later papers build on, and which
beats TOPIC on its own protocol.

    Base session:   train the backbone and a linear head with cross-entropy, as fine-tuning does.
    Afterwards:     freeze the backbone; nothing is trained again.
    Every class:    its prototype p_c = the mean of the backbone's features of its training samples (all of a base
                    class's, the K shots of a new class's), computed after the session that brings it.
    Prediction:     argmax_c cos(f(x), p_c), over every class seen, base and new alike.

A new class costs one forward pass over its K shots; old prototypes never move, so nothing is forgotten beyond what
the frozen features cannot separate. (CEC trains its base session with a cosine classifier; a linear head here,
as the other methods in this library train theirs: the prototypes replace it after the base session.)
"""

import torch
import torch.nn.functional as F

from ..checks import check_float
from .base import Method


class Prototype(Method):
    name = "prototype"
    settings = ("class",)

    def __init__(self, model, setting: str = "class", scale: float = 16.0):
        """scale: the logits are scale * cos(f(x), p_c) (CEC's temperature, 16); the prediction does not depend
        on it, only the probabilities (`predict_proba`) do."""
        super().__init__(model, setting)
        self.scale = check_float("scale", scale)
        self.prototypes: torch.Tensor | None = None  # (classes seen, features), rows in head-output order

    def before_task(self, task):
        super().before_task(task)
        if task.id > 0:  # decoupled: the base session's backbone, frozen
            self.model.requires_grad_(False)

    @torch.no_grad()
    def after_task(self, task):
        f = self.features(task.x_train)
        y = task.y_train.to(self._device)
        sums = torch.zeros(task.n_classes, f.shape[1], device=f.device).index_add_(0, y, f)
        means = sums / torch.bincount(y, minlength=task.n_classes).clamp_min(1)[:, None]
        self.prototypes = means if self.prototypes is None else torch.cat([self.prototypes, means])

    @torch.no_grad()
    def predict(self, x):
        self.model.eval()
        return self.scale * F.normalize(self.model.features(x), dim=1) @ F.normalize(self.prototypes, dim=1).T

    def state_dict(self):
        return {**super().state_dict(), "prototypes": self.prototypes}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.prototypes = state["prototypes"]
        if self.prototypes is not None:
            self.prototypes = self.prototypes.to(self._device)
        if len(tasks) > 1:
            self.model.requires_grad_(False)
