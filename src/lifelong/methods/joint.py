"""Joint training: each task is trained on the union of the training data of all tasks seen so far.

Not a continual method (it keeps all old data) but the upper bound that every paper compares with.
"""

import torch

from ..errors import ConfigError
from ..inputs import concat
from .base import Method


class Joint(Method):
    name = "joint"

    def __init__(self, model, setting: str = "class"):
        super().__init__(model, setting)
        self.seen_tasks = []  # joint training is the one method that keeps every old task's data

    def after_task(self, task):
        super().after_task(task)
        self.seen_tasks.append(task)

    def _restore_tasks(self, tasks):
        if any(len(t.y_train) == 0 for t in tasks):  # records of learned tasks, without their data
            raise ConfigError("joint training keeps every old task's data, which a saved learner does not hold: "
                              "resume a joint run with its scenario (lifelong run --resume) instead")
        super()._restore_tasks(tasks)
        self.seen_tasks = list(tasks)

    def before_task(self, task):
        super().before_task(task)
        self.model.head.requires_grad_(True)  # every task's data is here, so every head part learns

    def training_data(self, task):
        tasks = self.seen_tasks + [task]
        x = concat([t.x_train for t in tasks])
        targets = torch.cat([self.targets(t, t.y_train) for t in tasks])
        task_ids = torch.cat([torch.full_like(t.y_train, t.id) for t in tasks])
        return x, targets, task_ids
