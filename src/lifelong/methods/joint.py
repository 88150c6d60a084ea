"""Joint training: each task is trained on the union of the training data of all tasks seen so far.

Not a continual method (it keeps all old data) but the upper bound that every paper compares with.

`from_scratch=False` (the default, as Hsu et al.'s and FACIL's joint baselines): the model trained so far goes on
training, on the union. `from_scratch=True` (Mammoth's JOINT, the row of Buzzega et al.'s tables): the model back
to its initial state before every task, so the model evaluated after a task has seen the union for `epochs` epochs
and no more. Mammoth re-initialises it at every task in the class-incremental and general-continual settings, and
trains it once, after the last task, in the domain-incremental one: the last model is the same (the accuracy
after the last task, which its table reports).
"""

import torch

from ..errors import ConfigError
from ..inputs import concat
from ..models.initial import initial_state, restore_initial
from .base import Method


class Joint(Method):
    name = "joint"

    def __init__(self, model, setting: str = "class", from_scratch: bool = False):
        super().__init__(model, setting)
        if not isinstance(from_scratch, bool):
            raise ConfigError(f"joint from_scratch must be true or false, got {from_scratch!r}")
        self.from_scratch = from_scratch
        self.initial = initial_state(model) if from_scratch else None
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
        if self.from_scratch:  # the new head part is recorded as it is now, untrained
            restore_initial(self.model, self.initial)
            if self.optimizer is not None:  # one optimizer kept for the sequence: its momenta belong to the old run
                self.optimizer.state.clear()
        self.model.head.requires_grad_(True)  # every task's data is here, so every head part learns

    def training_data(self, task):
        tasks = self.seen_tasks + [task]
        x = concat([t.x_train for t in tasks])
        targets = torch.cat([self.targets(t, t.y_train) for t in tasks])
        task_ids = torch.cat([torch.full_like(t.y_train, t.id) for t in tasks])
        return x, targets, task_ids

    def describe(self) -> dict:
        return {**super().describe(), "from_scratch": self.from_scratch}

    def state_dict(self):
        state = super().state_dict()
        if self.from_scratch:
            state["initial"] = dict(self.initial)
        return state

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        initial = state.get("initial")
        self.initial = None if initial is None else {name: value.to(self._device) for name, value in initial.items()}
