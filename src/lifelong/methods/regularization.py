"""What the importance-weight methods (MAS, EWC, online EWC, SI, L2) share: one quadratic penalty, one snapshot.

After each task a method stores the parameters theta* it reached and an importance Omega per parameter, and
while learning the next tasks it adds

    L(theta) = L_new(theta) + lambda * sum_ij Omega_ij (theta_ij - theta*_ij)^2

(MAS eq. 3, SI eq. 4, EWC eq. 3 with lambda = Kirkpatrick's lambda / 2; Hsu et al.'s code uses this form, so their
`reg_coef` is our `strength`). Only Omega and theta* are kept: the memory does not grow with the number of tasks.
The methods differ only in how Omega of a task is measured (`task_importance`) and how it joins the old Omega
(`combine`).

Which parameters: those that exist when the snapshot is taken. A head part born later has no importance yet and
is not penalised; in the task-incremental setting the base class freezes old head parts, so they cannot drift and
their (constant, zero) terms are skipped.

`per_sample_statistic` gives the exact sum over samples of |g_k| (MAS) or g_k^2 (the Fisher of EWC) for a whole
batch: nn.Linear layers in closed form (a per-sample gradient of a linear layer is the outer product delta_k a_k^T,
and |u v^T| = |u| |v|^T, (u v^T)^2 = u^2 (v^2)^T, so the sum over samples is one matrix product), every other
parameter with torch.func (functional_call + vmap + grad).
"""

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from ..checks import check_choice, check_weight
from ..errors import ConfigError, TrainingError
from ..inputs import in_order
from ..models import linear_maps, linear_parts
from .base import Method

TRANSFORMS = {"abs": torch.abs, "square": torch.square}


class measuring_mode:
    """Gradients for every parameter (frozen head parts included), even inside `torch.no_grad()` (importance from
    inputs met at test time), and evaluation mode (batch-norm statistics untouched) while importance is measured;
    all restored afterwards."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        self.training = self.model.training
        self.grad_mode = torch.enable_grad()
        self.grad_mode.__enter__()
        self.model.requires_grad_(True).eval()
        return self.model

    def __exit__(self, *exc):
        self.grad_mode.__exit__(*exc)
        for p, flag in self.flags:
            p.requires_grad_(flag)
        self.model.train(self.training)


def per_sample_statistic(model: nn.Module, objective, x: torch.Tensor, *args, transform: str = "abs") -> dict:
    """sum_k transform(d objective_k / d theta) over the samples k of the batch `x`, for every parameter, exact.

    `objective(outputs, *args)` returns one value per sample (shape (B,)); `args` are per-sample tensors (labels).
    `transform` is "abs" (MAS) or "square" (the Fisher of EWC). Computed in evaluation mode.
    """
    square_or_abs = TRANSFORMS[check_choice("transform", transform, TRANSFORMS)]
    with measuring_mode(model):
        # 1. one ordinary forward + backward to the Linear layers' outputs: their inputs a_k and output gradients
        #    delta_k give every Linear weight's per-sample gradient delta_k a_k^T
        calls: dict[nn.Linear, list] = {}

        def keep(module, inputs, output):
            # with the tensors' versions: an in-place op after the layer (ReLU(inplace=True)) would change them
            calls.setdefault(module, []).append((inputs[0].detach(), output, inputs[0]._version, output._version))

        hooks = [m.register_forward_hook(keep) for m in linear_maps(model)]
        try:
            total = objective(model(x), *args).sum()
        finally:
            for hook in hooks:
                hook.remove()
        # one outer product per sample only for a layer used once, on one row per sample, whose input and output
        # were not changed in place afterwards; any other layer (used twice, on a (batch x tokens) reshape,
        # followed by an in-place op) goes to torch.func below
        linear = {m: c[0][:2] for m, c in calls.items() if len(c) == 1 and c[0][0].dim() == 2
                  and len(c[0][0]) == len(x) and (c[0][0]._version, c[0][1]._version) == c[0][2:]}
        deltas = torch.autograd.grad(total, [out for _, out in linear.values()], allow_unused=True) if linear else []
        names = {p: n for n, p in model.named_parameters()}
        result = {}
        for (module, (a, out)), delta in zip(linear.items(), deltas):
            delta = square_or_abs(delta) if delta is not None else torch.zeros_like(out)
            a = square_or_abs(a)
            for layer, columns in linear_parts(module):  # a head: each part from its own output columns
                result[names[layer.weight]] = delta[:, columns].T @ a
                if layer.bias is not None:
                    result[names[layer.bias]] = delta[:, columns].sum(0)

        # 2. every other parameter: per-sample gradients with torch.func, over the whole batch at once
        params = {n: p.detach() for n, p in model.named_parameters()}
        others = {n: p for n, p in params.items() if n not in result}
        if others:
            buffers = dict(model.named_buffers())

            def one_sample(free, xk, *ak):
                out = functional_call(model, ({**params, **free}, buffers), (xk.unsqueeze(0),))
                return objective(out, *(a.unsqueeze(0) for a in ak)).sum()

            try:
                grads = vmap(grad(one_sample), in_dims=(None, 0) + (0,) * len(args))(others, x, *args)
            except RuntimeError as error:  # an operation torch.func cannot take per sample (say, a cuDNN LSTM)
                raise ConfigError(f"per-sample importance cannot be computed for this model ({str(error).splitlines()[0]}"
                                  "): use estimate=batch (MAS) or fisher estimate=batch (EWC)") from None
            result.update({n: square_or_abs(g).sum(0) for n, g in grads.items()})
    return {n: result[n] for n in params}


def batch_gradient_statistic(model: nn.Module, objective, x: torch.Tensor, *args, transform: str = "abs") -> dict:
    """transform(d sum_k objective_k / d theta): the official MAS code's cheaper estimate (one backward, the
    absolute value taken after the gradients of the batch are summed, so it is <= the exact sum of |g_k|)."""
    square_or_abs = TRANSFORMS[check_choice("transform", transform, TRANSFORMS)]
    with measuring_mode(model):
        params = [p for _, p in model.named_parameters()]
        grads = torch.autograd.grad(objective(model(x), *args).sum(), params, allow_unused=True)
    return {n: (square_or_abs(g) if g is not None else torch.zeros_like(p))
            for (n, p), g in zip(model.named_parameters(), grads)}


class Regularizer(Method):
    """The base of the importance-weight methods: the penalty lambda * sum Omega (theta - theta*)^2, the snapshot
    theta*, and Omega's bookkeeping. A subclass says how to measure a task's importance (`task_importance`) and,
    when the paper says so, how it joins the old one (`combine`)."""

    importance_batch_size = 128  # samples per importance batch (Hsu et al.'s batch); only batch estimates depend on it
    exact_batch_size = 1024  # per-sample estimates do not depend on it: large batches, fewer and fuller passes

    def __init__(self, model, setting: str = "class", strength: float = 1.0):
        super().__init__(model, setting)
        self.strength = check_weight("strength (the penalty's lambda)", strength)
        self._importance: dict[str, torch.Tensor] = {}  # Omega, by parameter name
        self._anchor: dict[str, torch.Tensor] = {}  # theta*, by parameter name
        self.n_consolidated = 0  # how many times Omega was updated (tasks, or pretrained weights)
        self._terms: list = []  # (parameter, Omega, theta*) of the parameters that can still move

    # ------------------------------------------------------------------ the penalty
    @property
    def importance(self) -> dict[str, torch.Tensor]:
        """Omega by parameter name, after at least one task (or one `consolidate`)."""
        if not self._importance:
            raise TrainingError(f"{self.name} has no importance yet: it is measured after the first task "
                                "(or, for MAS, with update_importance(x) then consolidate())")
        return self._importance

    def penalty(self) -> torch.Tensor:
        """sum_ij Omega_ij (theta_ij - theta*_ij)^2 over the parameters that existed at the snapshot."""
        total = torch.zeros((), device=self._device)
        for p, omega, anchor in self._terms:
            total = total + (omega * (p - anchor).square()).sum()
        return total

    def loss(self, x, targets, task_ids, *extras):
        """The task's loss. The penalty acts through its gradient, 2 lambda Omega (theta - theta*), which
        `before_step` adds to the gradients after the backward pass: the step is the one with lambda * penalty()
        in the loss, without building the penalty's graph at every step (measured on the split-MNIST MLP: 4.16 ms
        per step as a graph, 0.46 ms in closed form). The loss reported is the task's alone; `penalty()` gives the
        penalty's value."""
        return super().loss(x, targets, task_ids, *extras)

    @torch.no_grad()
    def before_step(self) -> None:
        """grad += 2 lambda Omega (theta - theta*) for every penalised parameter, in a few fused operations."""
        terms = [(p, omega, anchor) for p, omega, anchor in self._terms if p.grad is not None]
        if not terms or self.strength == 0:
            return
        params, omegas, anchors = ([t[i] for t in terms] for i in range(3))
        difference = torch._foreach_sub([p.detach() for p in params], anchors)
        torch._foreach_mul_(difference, omegas)
        torch._foreach_add_([p.grad for p in params], difference, alpha=2 * self.strength)

    def _prepare_terms(self) -> None:
        """Match the snapshot with the model's parameters (a clear error if they differ); keep those that move."""
        params = dict(self.model.named_parameters())
        for name, anchor in self._anchor.items():
            if name not in params:
                raise ConfigError(f"the model has no parameter {name!r} but the stored snapshot has one: "
                                  "the importance was computed for another model")
            if params[name].shape != anchor.shape:
                raise ConfigError(f"parameter {name!r} has shape {tuple(params[name].shape)} but the stored "
                                  f"snapshot has {tuple(anchor.shape)}: the importance was computed for another model")
        for name, anchor in self._anchor.items():  # a model moved to another device after a resume takes them along
            self._anchor[name] = anchor.to(params[name].device)
            self._importance[name] = self._importance[name].to(params[name].device)
        self._terms = [(params[n], self._importance[n], a) for n, a in self._anchor.items() if params[n].requires_grad]

    # ------------------------------------------------------------------ the hooks
    def before_task(self, task):
        super().before_task(task)  # grows the head (new parts get no penalty) and freezes old task heads
        self._prepare_terms()

    def after_task(self, task):
        super().after_task(task)
        self.consolidate(self.task_importance(task))

    def consolidate(self, new: dict[str, torch.Tensor]) -> None:
        """Take `new` (Omega of what was just learned) into the importance and snapshot theta*."""
        self.combine(new)
        self.n_consolidated += 1
        self._prepare_terms()

    def task_importance(self, task) -> dict[str, torch.Tensor]:
        """Omega of the task just learned, by parameter name. Subclasses measure it."""
        raise NotImplementedError

    def combine(self, new: dict[str, torch.Tensor]) -> None:
        """Join the task's importance with the old one and snapshot theta*: added (MAS, SI; online EWC with
        gamma = 1), the snapshot replaced by the current parameters."""
        for name, omega in new.items():
            old = self._importance.get(name)
            self._importance[name] = omega if old is None or old.shape != omega.shape else old + omega
        self._anchor = self.snapshot()

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()}

    def importance_batch(self, exact: bool) -> int:
        """Samples per importance batch: `importance_batch_size`, or at least `exact_batch_size` for estimates
        exact per sample, which the batch size does not change."""
        return max(self.importance_batch_size, self.exact_batch_size) if exact else self.importance_batch_size

    def importance_batches(self, x: torch.Tensor, exact: bool = False):
        """Batches of `x` on the model's device, of `importance_batch(exact)` samples."""
        return in_order(x, self.importance_batch(exact), self._device)

    def read_columns(self, task_id: int) -> slice:
        """The head outputs a task is read through: its own part in the task setting, every output seen so far
        otherwise (not those of later classes in a head built with all of them from the start)."""
        return self.task_slice(task_id) if self.setting == "task" else slice(0, self.output_mask.shape[1])

    def outputs(self, out: torch.Tensor, task_id: int) -> torch.Tensor:
        return out[:, self.read_columns(task_id)]

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {**super().state_dict(), "importance": self._importance, "anchor": self._anchor,
                "n_consolidated": self.n_consolidated}

    def load_state_dict(self, state, tasks):
        try:
            super().load_state_dict(state, tasks)
        except RuntimeError as error:
            raise ConfigError(f"the saved parameters do not match this model: {error}") from None
        device = self._device
        self._importance = {n: v.to(device) for n, v in state["importance"].items()}
        self._anchor = {n: v.to(device) for n, v in state["anchor"].items()}
        self.n_consolidated = state["n_consolidated"]
        self._prepare_terms()
