"""Joint training: each task is trained on the union of the training data of all tasks seen so far.

Not a continual method (it keeps all old data) but the upper bound that every paper compares with.
"""

import torch

from .base import Method


class Joint(Method):
    name = "joint"
    description = "joint training on the union of all data seen so far (the upper bound, keeps all old data)"

    def before_task(self, task):
        super().before_task(task)
        self.model.head.requires_grad_(True)  # every task's data is here, so every head part learns

    def training_data(self, task):
        tasks = self.seen_tasks + [task]
        x = torch.cat([t.x_train for t in tasks])
        targets = torch.cat([self.targets(t, t.y_train) for t in tasks])
        task_ids = torch.cat([torch.full_like(t.y_train, t.id) for t in tasks])
        return x, targets, task_ids
