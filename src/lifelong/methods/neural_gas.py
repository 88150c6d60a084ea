"""Neural gas as a continual learner: a separate gas of units per class, old gases left alone.

As `competitive` (each class of a new task adds `units_per_class` units on its samples; prediction by the
nearest unit; nothing old moves), but a sample moves every unit of its own class by rank, with competitive
Hebbian edges among them (lifelong.hebbian.neural_gas, Martinetz & Schulten 1991):

    w_j <- w_j + eps(t) exp(-k_j / lambda(t)) (x - w_j),    k_j = rank of unit j among its class's units.

Each class's schedule (eps 0.5 -> 0.005, lambda 10 -> 0.01, edge age 20 -> 200) is annealed over one pass
over that class's training samples (t_max = their number); further epochs go on at the final values. The
ranking is sequential: one step per sample, each a distance, a sort and a few row updates over its class's units.

In a stream, a class's gas is made from its first samples as `competitive`'s units are; its schedule is still
annealed over the class's number of training samples in its task (the one thing it reads of the stream's tasks:
how long the pass over the class will be).
"""

import torch

from ..checks import check_float
from ..hebbian.rules import annealed, neural_gas_step
from .competitive import Competitive


class NeuralGasMethod(Competitive):
    name = "neural-gas"

    def __init__(self, model, setting: str = "class", units_per_class: int = 20, eps_initial: float = 0.5,
                 eps_final: float = 0.005, lambda_initial: float = 10.0, lambda_final: float = 0.01,
                 age_initial: float = 20.0, age_final: float = 200.0):
        super().__init__(model, setting, units_per_class)
        self.eps = (check_float("eps_initial", eps_initial, high=1.0), check_float("eps_final", eps_final, high=1.0))
        self.lam = (check_float("lambda_initial", lambda_initial), check_float("lambda_final", lambda_final))
        self.age = (check_float("age_initial", age_initial), check_float("age_final", age_final))
        self.gases: dict[tuple[int, int], dict] = {}  # (task id, head output) -> rows, edge ages, steps t, t_max

    def new_units(self, rows, task):
        label = int(self.model.labels[rows.start])
        n = int((self.targets(task, task.y_train) == label).sum())
        self.gases[(task.id, label)] = {"rows": rows, "ages": torch.full((rows.stop - rows.start,) * 2, float("inf"),
                                                                         device=self._device), "t": 0, "t_max": n}

    @torch.no_grad()
    def move_units(self, x, targets, task_ids):
        """One neural-gas step per sample, on the units of its class."""
        # on the CPU, numpy views of the same memory: a small step costs ~25 us in numpy, ~180 us in torch
        view = (lambda t: t.numpy()) if x.device.type == "cpu" else (lambda t: t)
        x, units = view(x), view(self.model.units.data)
        for xi, label, task_id in zip(x, targets.tolist(), task_ids.tolist()):
            gas = self.gases[(task_id, label)]
            t, t_max = gas["t"], gas["t_max"]
            neural_gas_step(units[gas["rows"]], view(gas["ages"]), xi, annealed(*self.eps, t, t_max),
                            annealed(*self.lam, t, t_max), annealed(*self.age, t, t_max))
            gas["t"] += 1

    def edges(self, task_id: int, label: int) -> torch.Tensor:
        """The competitive Hebbian graph of one class's gas: a symmetric boolean adjacency matrix."""
        return torch.isfinite(self.gases[(task_id, label)]["ages"])

    def state_dict(self):  # a slice is not plain data for a safe checkpoint: its (start, stop)
        return {**super().state_dict(), "gases": {key: dict(gas, ages=gas["ages"].clone(),
                                                             rows=(gas["rows"].start, gas["rows"].stop))
                                                   for key, gas in self.gases.items()}}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.gases = {key: dict(gas, ages=gas["ages"].to(self._device), rows=slice(*gas["rows"]))
                      for key, gas in state["gases"].items()}
