"""Competitive learning as a continual learner: new classes add units, old units stay where they are.

Each class of a new task brings `units_per_class` units, initialised on random training samples of that class.
Training is winner-take-all (lifelong.hebbian.competitive) restricted to the sample's own class:

    c = argmin over the units of the sample's class (and task) of |x - w_j|^2,    w_c <- w_c + eta (x - w_c),

with the batch form of `winner_update`. No gradient, no loss, and no unit of an earlier class or task ever
moves: learning is local, so nothing old is overwritten. Prediction scores every head output o by minus the
squared distance to the nearest unit labelled o: the class setting takes the best over all outputs, the task
setting within the task's outputs. In the domain setting the head outputs are shared, so each task adds its own
units under the shared labels (units of task t only learn from task t) and the nearest unit of any task votes.

In a stream (`--stream`: no task boundary, so no `before_task` to make a class's units at), a class's units are its
first `units_per_class` samples to arrive: they are held until that many have come, then become its units at once,
and the class's later samples train them as above. At each evaluation the classes still short of that many get their
units from the samples held so far (fewer units, as `before_task` gives a class with fewer samples than
`units_per_class`). The held samples are not also trained on; nothing else changes, and nothing old moves.
"""

import torch
from torch import nn

from ..checks import check_float, check_int
from ..hebbian.rules import squared_distances, winner_update
from ..inputs import read
from .base import Method


class Prototypes(nn.Module):
    """The units (rows of `units`, never trained by gradient), the head output each votes for and its task."""

    def __init__(self):
        super().__init__()
        self.units = nn.Parameter(torch.zeros(0, 0), requires_grad=False)
        self.register_buffer("labels", torch.zeros(0, dtype=torch.long))
        self.register_buffer("tasks", torch.zeros(0, dtype=torch.long))

    def add(self, units: torch.Tensor, label: int, task_id: int) -> slice:
        """Append units voting for head output `label`; return their rows."""
        start, device = len(self.labels), self.units.device
        units = units.to(device, self.units.dtype)
        self.units = nn.Parameter(torch.cat([self.units.data, units]) if start else units.clone(), requires_grad=False)
        self.labels = torch.cat([self.labels, torch.full((len(units),), label, device=device)])
        self.tasks = torch.cat([self.tasks, torch.full((len(units),), task_id, device=device)])
        return slice(start, start + len(units))

    def set_state(self, state: dict) -> None:
        """Restore units grown to any size (load_state_dict needs equal shapes)."""
        device = self.units.device
        self.units = nn.Parameter(state["units"].to(device), requires_grad=False)
        self.labels, self.tasks = state["labels"].to(device), state["tasks"].to(device)

    def scores(self, x: torch.Tensor, n_outputs: int) -> torch.Tensor:
        """(B, n_outputs): minus the squared distance from each input to the nearest unit of each output."""
        d = squared_distances(x, self.units)
        nearest = torch.full((len(x), n_outputs), float("inf"), device=x.device, dtype=d.dtype)
        nearest.scatter_reduce_(1, self.labels.expand(len(x), -1), d, reduce="amin")
        return -nearest


class Competitive(Method):
    name = "competitive"
    local_learning = True  # the engine calls local_update instead of loss / backward / step
    needs_task_boundaries = False  # in a stream, a class's units are its first samples (`enter_stream`)

    def __init__(self, model, setting: str = "class", units_per_class: int = 20, learning_rate: float = 0.05):
        super().__init__(model, setting)
        self.units_per_class = check_int("units_per_class", units_per_class)
        self.learning_rate = check_float("learning_rate", learning_rate, high=1.0)
        device = self._device
        self.model = Prototypes().to(device)  # replaces the network: the units are the whole model
        self.stream_tasks: list | None = None  # the stream's tasks, once `enter_stream` is called
        self.held: dict[tuple[int, int], torch.Tensor] = {}  # (task id, output) -> a stream's first samples

    def before_task(self, task):
        """New units for each class of the task, on distinct random training samples of that class."""
        self._register_task(task)
        x, targets = task.x_train, self.targets(task, task.y_train)
        for label in targets.unique().tolist():
            samples = x[targets == label]
            pick = torch.randperm(len(samples))[:self.units_per_class]
            self.new_units(self.model.add(read(samples[pick]).flatten(1), label, task.id), task)

    def new_units(self, rows: slice, task) -> None:
        """Called for each group of units added (one class of one task)."""

    def enter_stream(self, tasks):
        """A stream: every task's outputs at once (no head to grow: the units are the model); a class's units come
        from its first samples (`local_update`)."""
        if len(self.sizes) != len(tasks):
            self._restore_tasks(tasks)
        self.stream_tasks = list(tasks)

    def _own_units(self, targets, task_ids) -> torch.Tensor:
        """(B, U) mask: the units of each sample's class and task, the only ones it may move."""
        return (self.model.labels == targets[:, None]) & (self.model.tasks == task_ids[:, None])

    @torch.no_grad()
    def local_update(self, x, targets, task_ids):
        """Winner-take-all within the sample's class: the nearest unit of its class moves toward it. In a stream,
        samples of a class without units yet are held to become its units."""
        x = x.flatten(1)
        if self.stream_tasks is not None:
            x, targets, task_ids = self._hold_first_samples(x, targets, task_ids)
        if len(x):
            self.move_units(x, targets, task_ids)

    def move_units(self, x, targets, task_ids) -> None:
        d = squared_distances(x, self.model.units).masked_fill_(~self._own_units(targets, task_ids), float("inf"))
        winner_update(self.model.units.data, x, d.argmin(1), self.learning_rate)

    def _hold_first_samples(self, x, targets, task_ids):
        """Keep the samples of classes without units; a class with `units_per_class` held gets its units from them
        (in arrival order). Returns the samples left to train on: those of classes that have units (a class's
        samples beyond the ones that became its units included)."""
        n_outputs = self.output_mask.shape[1]
        codes = task_ids * n_outputs + targets
        has_units = torch.isin(codes, self.model.tasks * n_outputs + self.model.labels)
        train = has_units.clone()
        for code in codes[~has_units].unique().tolist():
            key = divmod(code, n_outputs)
            mine = (codes == code).nonzero().flatten()
            held = torch.cat([self.held[key], x[mine]]) if key in self.held else x[mine]
            if len(held) < self.units_per_class:
                self.held[key] = held
                continue
            self.held.pop(key, None)
            self._make_units(held[:self.units_per_class], key)
            train[mine[len(mine) - (len(held) - self.units_per_class):]] = True  # those after its units: trained on
        return x[train], targets[train], task_ids[train]

    def _make_units(self, samples, key) -> None:
        task_id, label = key
        self.new_units(self.model.add(samples, label, task_id), self.stream_tasks[task_id])

    def before_evaluation(self, fit):
        """In a stream: the classes still short of `units_per_class` samples get their units from those held."""
        for key in sorted(self.held):
            self._make_units(self.held.pop(key), key)

    @torch.no_grad()
    def predict(self, x):
        return self.model.scores(x.flatten(1), self.output_mask.shape[1])

    def state_dict(self):
        return {"prototypes": {k: v.clone() for k, v in self.model.state_dict().items()}, "sizes": list(self.sizes)}

    def load_state_dict(self, state, tasks):
        self.model.set_state(state["prototypes"])
        self._restore_tasks(tasks)
