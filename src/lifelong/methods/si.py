"""Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017): `si`. Importance is each parameter's share of the
drop in the loss along the training trajectory, collected online while the task is learned:

    w_k     = - sum_steps g_k(t) * (theta_k(t+1) - theta_k(t))      (the path integral, eq. 3; g of the task's loss)
    Omega_k = Omega_k + w_k / (Delta_k^2 + xi),  Delta_k = theta_k(end of task) - theta_k(start of task)   (eq. 5)
    L(theta) = L_task(theta) + c * sum_k Omega_k (theta_k - theta*_k)^2                                  (eq. 4)

g is the gradient of the task's own loss without the penalty (as in Hsu et al.'s code): the gradients are copied
in `before_step` before the penalty's is added (so no second backward pass), after the engine has added them up
over processes when a run has several (`lifelong.distributed`), so every process integrates the same path. The
path integral is kept with fused operations over all parameters at once (one per step, not one per parameter),
in buffers made once per task.
"""

import torch

from ..checks import check_float
from .regularization import Regularizer


class SI(Regularizer):
    """Options: `strength` (c; default 300, Hsu et al.'s task-IL split-MNIST value; 300 / 3000 / 600 for task /
    domain / class-IL), `damping` (xi; default 0.1 as in Hsu et al.'s and van de Ven et al.'s code; Zenke et al.
    use 1e-3 on split MNIST)."""

    name = "si"

    def __init__(self, model, setting: str = "class", strength: float = 300.0, damping: float = 0.1):
        super().__init__(model, setting, strength)
        # xi > 0: a parameter that never moves (a dead unit's weights) has w = 0 and (delta theta)^2 = 0
        self.damping = check_float("damping", damping)

    def before_task(self, task):
        super().before_task(task)
        self._params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        self._grad_copies = [torch.zeros_like(p) for _, p in self._params]  # g(t) of the task's loss alone
        self._step_start = [torch.zeros_like(p) for _, p in self._params]  # theta(t)
        self._start_path()

    def before_epoch(self, epoch, n_epochs):
        super().before_epoch(epoch, n_epochs)
        if epoch == 0:  # after a warm-up of the new head part (the engine's warmup_epochs), which is not in w
            self._start_path()

    def _start_path(self) -> None:
        """w = 0 and theta(start) = theta: the path integral and the distance it is divided by start here."""
        self._start = self.snapshot()
        self._path = {n: torch.zeros_like(p) for n, p in self.model.named_parameters()}
        self._stepping = False  # whether theta(t) and g(t) of a step wait for theta(t+1)

    @torch.no_grad()
    def _integrate_last_step(self) -> None:
        """w -= g(t) * (theta(t+1) - theta(t)) for the step that has just been taken. A parameter that got no
        gradient did not move (theta(t+1) = theta(t)), whatever its stale copy of g holds."""
        if self._stepping:
            moved = torch._foreach_sub([p.detach() for _, p in self._params], self._step_start)
            torch._foreach_mul_(moved, self._grad_copies)
            torch._foreach_sub_([self._path[n] for n, _ in self._params], moved)
        self._stepping = False

    def loss(self, x, targets, task_ids, *extras):
        self._integrate_last_step()
        with torch.no_grad():
            torch._foreach_copy_(self._step_start, [p.detach() for _, p in self._params])
        self._stepping = True
        return super().loss(x, targets, task_ids, *extras)

    @torch.no_grad()
    def before_step(self):
        """g(t): the task loss's gradients, kept before the penalty's gradient joins them."""
        kept = [(copy, p.grad) for (_, p), copy in zip(self._params, self._grad_copies) if p.grad is not None]
        if kept:
            torch._foreach_copy_([copy for copy, _ in kept], [g for _, g in kept])
        super().before_step()

    def after_task(self, task):
        self._integrate_last_step()
        self._stepping = False
        super().after_task(task)

    def task_importance(self, task):
        theta = self.snapshot()
        return {n: self._path[n] / ((theta[n] - self._start[n]).square() + self.damping)
                if n in self._start and self._start[n].shape == theta[n].shape else torch.zeros_like(theta[n])
                for n in theta}
