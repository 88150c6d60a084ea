"""Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017): `si`. Importance is each parameter's share of the
drop in the loss along the training trajectory, collected online while the task is learned:

    w_k     = - sum_steps g_k(t) * (theta_k(t+1) - theta_k(t))      (the path integral, eq. 3; g of the task's loss)
    Omega_k = Omega_k + w_k / (Delta_k^2 + xi),  Delta_k = theta_k(end of task) - theta_k(start of task)   (eq. 5)
    L(theta) = L_task(theta) + c * sum_k Omega_k (theta_k - theta*_k)^2                                  (eq. 4)

g is the gradient of the task's own loss without the penalty (as in Hsu et al.'s code): the engine's gradient of
the total loss minus the penalty's, 2 c Omega (theta - theta*), known in closed form, so no second backward pass.
"""

import torch

from ..checks import check_float
from .regularization import Regularizer


class SI(Regularizer):
    """Options: `strength` (c; default 300, Hsu et al.'s task-IL split-MNIST value; 300 / 3000 / 600 for task /
    domain / class-IL), `damping` (xi; default 0.1 as in Hsu et al.'s and van de Ven et al.'s code; Zenke et al.
    use 1e-3 on split MNIST)."""

    name = "si"
    description = "Synaptic Intelligence: importance = each weight's contribution to the loss drop along training"

    def __init__(self, model, setting: str = "class", strength: float = 300.0, damping: float = 0.1):
        super().__init__(model, setting, strength)
        # xi > 0: a parameter that never moves (a dead unit's weights) has w = 0 and (delta theta)^2 = 0
        self.damping = check_float("damping", damping)
        self._hooks = []

    def before_task(self, task):
        super().before_task(task)
        self._start_path()
        names = {p: n for n, p in self.model.named_parameters()}
        self._hooks = [p.register_post_accumulate_grad_hook(lambda p: self._grads.__setitem__(names[p], p.grad.clone()))
                       for p in self.model.parameters() if p.requires_grad]

    def before_epoch(self, epoch, n_epochs):
        super().before_epoch(epoch, n_epochs)
        if epoch == 0:  # after a warm-up of the new head part (the engine's warmup_epochs), which is not in w
            self._start_path()

    def _start_path(self) -> None:
        """w = 0 and theta(start) = theta: the path integral and the distance it is divided by start here."""
        self._start = self.snapshot()
        self._path = {n: torch.zeros_like(p) for n, p in self.model.named_parameters()}
        self._step_start: dict | None = None  # theta(t) and g(t) of the last step, until theta(t+1) is known
        self._grads: dict[str, torch.Tensor] = {}

    def _integrate_last_step(self) -> None:
        """w -= g(t) * (theta(t+1) - theta(t)) for the step that has just been taken."""
        if self._step_start is not None:
            names = {p: n for n, p in self.model.named_parameters()}
            terms = {names[p]: (omega, anchor) for p, omega, anchor in self._terms}
            for name, p in self.model.named_parameters():
                if name not in self._grads:
                    continue
                g = self._grads[name]
                if name in terms:  # remove the penalty's gradient: g of the task's loss alone
                    omega, anchor = terms[name]
                    g = g - 2 * self.strength * omega * (self._step_start[name] - anchor)
                self._path[name] -= g * (p.detach() - self._step_start[name])
        self._grads = {}

    def loss(self, x, targets, task_ids, *extras):
        self._integrate_last_step()
        self._step_start = self.snapshot()
        return super().loss(x, targets, task_ids, *extras)

    def after_task(self, task):
        self._integrate_last_step()
        for hook in self._hooks:
            hook.remove()
        self._hooks, self._step_start = [], None
        super().after_task(task)

    def task_importance(self, task):
        theta = self.snapshot()
        return {n: self._path[n] / ((theta[n] - self._start[n]).square() + self.damping)
                if n in self._start and self._start[n].shape == theta[n].shape else torch.zeros_like(theta[n])
                for n in theta}
