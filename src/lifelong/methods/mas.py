"""Memory Aware Synapses (Aljundi, Babiloni, Elhoseiny, Rohrbach & Tuytelaars, ECCV 2018): `mas` and `l-mas`.

Importance comes from how sensitive the learned function F is to each parameter, not the loss, so it needs no
labels and works for any output (a classifier's logits, a regression, an auto-encoder's reconstruction):

    g_ij(x_k) = d [ l2^2( F(x_k; theta) ) ] / d theta_ij                               (eqs. 2 and 4)
    Omega_ij  = (1/N) sum_k |g_ij(x_k)|                                                (eq. 4)
    L(theta)  = L_n(theta) + lambda * sum_ij Omega_ij (theta_ij - theta*_ij)^2         (eq. 3)

Algorithm, per task: train with the penalty; then measure Omega on the task's data (or on any unlabelled inputs:
`update_importance(x)` takes a stream of batches) in evaluation mode, add it to the old Omega (the official code;
`accumulate="average"` keeps the mean over tasks instead), and snapshot theta* = theta.

Local MAS (`l-mas`, section 4.2, the link to Hebb's rule): for a ReLU layer y_j = ReLU(sum_i theta_ij y_i), the
gradient of the layer's own l2^2 output is g_ij = 2 y_i^{l-1} y_j^l, so Omega is the averaged co-activation of the
two neurons, here in closed form from forward activations (no backward pass): those of a pass of its own after
training, or those of the last training epoch (`activations="last-epoch"`, no pass of its own). The paper
reports it forgets somewhat more than MAS.

In the task setting F is the task's own head part; in the other settings, every output seen so far.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed
from ..checks import check_choice
from ..errors import ConfigError, TrainingError
from ..hebbian.rules import accumulate_coactivation  # the library's Hebbian statistic, summed batch by batch
from ..models import IncrementalHead, linear_maps, linear_parts
from .regularization import Regularizer, batch_gradient_statistic, measuring_mode, per_sample_statistic

ESTIMATES = ("per-sample", "batch")
ACCUMULATIONS = ("sum", "average")
REDUCTIONS = ("sum", "mean")


class MAS(Regularizer):
    """Options (`--param KEY=VALUE`):
    strength    lambda of eq. 3; default 1 (the paper: "no tuning of lambda was performed as we assume no access
                to previous task data"). Hsu et al. 2018 use 1 / 10000 / 1 (task / domain / class-IL).
    estimate    "per-sample" (default): Omega exactly as eq. 4, the mean of |g| over samples; "batch": the official
                code's cheaper estimate, |gradient of the batch's summed l2^2| / batch size (never larger).
    accumulate  "sum" (default, the official code): Omega_new = Omega_old + Omega_task; "average": the mean of
                the tasks' Omega, per parameter over the tasks since it was born (a head part added later).
                Other libraries average rather than add (FACIL and Avalanche: 0.5 old + 0.5 new).
    reduction   "sum" (default): F's squared l2 norm, eq. 2; "mean": the mean of the squared outputs read, as in
                Hsu et al.'s code (whose coefficients assume it): Omega / (number of outputs read), which in the
                class setting grows with the classes seen.
    """

    name = "mas"

    def __init__(self, model, setting: str = "class", strength: float = 1.0, estimate: str = "per-sample",
                 accumulate: str = "sum", reduction: str = "sum"):
        super().__init__(model, setting, strength)
        self.estimate = check_choice("importance estimate", estimate, ESTIMATES)
        self.accumulate = check_choice("accumulation", accumulate, ACCUMULATIONS)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self._running: dict[str, torch.Tensor] = {}  # sum over the inputs seen since the last snapshot
        self._count = 0
        self._n_averaged: dict[str, int] = {}  # accumulate="average": the tasks in each parameter's mean

    def columns_read(self, task_id: int | None) -> slice:
        """The outputs F is read through: those of task `task_id` (see `read_columns`); all of them for a model
        with no task registered (a pretrained model, a regression) or no task given."""
        return self.read_columns(task_id) if task_id is not None and self.offsets else slice(None)

    def function_norm(self, out: torch.Tensor, task_id: int | None) -> torch.Tensor:
        """l2^2 of the learned function, per sample: sum of the squared outputs the task is read through."""
        out = out[:, self.columns_read(task_id)]
        squares = out.flatten(1).square()
        return squares.sum(1) if self.reduction == "sum" else squares.mean(1)

    def statistic(self, x: torch.Tensor, task_id: int | None) -> dict[str, torch.Tensor]:
        """sum over the batch of |g(x_k)| (per-sample), or |sum of g(x_k)| (batch)."""
        measure = per_sample_statistic if self.estimate == "per-sample" else batch_gradient_statistic
        return measure(self.model, lambda out: self.function_norm(out, task_id), x)

    def update_importance(self, x: torch.Tensor, task_id: int | None = None) -> None:
        """Add inputs (no labels: training data, or unlabelled data met at test time) to the running estimate of
        the current Omega. `task_id` picks the head part in the task setting (default: the latest task).
        On several processes (each holding `x`) each measures its part, whole batches for the batch estimate,
        and the sums are added up."""
        if task_id is None and self.offsets:
            task_id = len(self.offsets) - 1
        exact = self.estimate != "batch"
        x = x[distributed.part(len(x), 1 if exact else self.importance_batch(exact))]
        sums = {name: torch.zeros_like(p) for name, p in self.model.named_parameters()}
        for batch in self.importance_batches(x, exact):
            for name, value in self.statistic(batch, task_id).items():
                sums[name] += value
        for name, value in distributed.add_up(sums).items():
            self._running[name] = self._running[name] + value if name in self._running else value
        self._count += distributed.total([len(x)])[0]

    def task_importance(self, task):
        self.update_importance(task.x_train, task.id)
        return self._take_running()

    def consolidate(self, new=None):
        """Make the running estimate (or `new`) part of Omega and snapshot theta*: after a task, or once the
        inputs of a pretrained model have been given to `update_importance`."""
        super().consolidate(self._take_running() if new is None else new)

    def _take_running(self) -> dict[str, torch.Tensor]:
        if self._count == 0:
            raise TrainingError("no inputs to measure importance on: give some to update_importance(x) first")
        omega = {name: value / self._count for name, value in self._running.items()}
        self._running, self._count = {}, 0
        return omega

    def combine(self, new):
        if self.accumulate == "sum":
            return super().combine(new)
        for name, omega in new.items():
            old = self._importance.get(name)
            if old is None or old.shape != omega.shape:  # a parameter born with this task
                self._importance[name], self._n_averaged[name] = omega, 1
                continue
            n = self._n_averaged[name]  # the mean of its n old tasks' Omega and the new one
            self._importance[name] = (n * old + omega) / (n + 1)
            self._n_averaged[name] = n + 1
        self._anchor = self.snapshot()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "running": self._running, "count": self._count,
                "n_averaged": self._n_averaged}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        device = self._device
        self._running = {n: v.to(device) for n, v in state.get("running", {}).items()}
        self._count = state.get("count", 0)
        # checkpoints from before the count per parameter: every parameter averaged over every task
        self._n_averaged = state.get("n_averaged", {n: self.n_consolidated for n in self._importance})


def relu_outputs(model: nn.Module) -> set[nn.Module]:
    """The Linear / Conv2d layers followed by an nn.ReLU in their Sequential (their y^l is the ReLU's output)."""
    found = set()
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            found.update(a for a, b in zip(layers, layers[1:]) if isinstance(b, nn.ReLU))
    return found


def add_layer_importance(module: nn.Module, pre: torch.Tensor, post: torch.Tensor,
                         sums: dict[nn.Parameter, torch.Tensor], post_is_relu: bool = False) -> None:
    """Add the sum over the batch of |g_ij|, g_ij = 2 y_i^{l-1} y_j^l, for one Linear or Conv2d layer given its
    input `pre` and its output `post` (after the ReLU that follows it, if one does), to `sums` (by parameter, in
    place: no copy of the layer's weight per batch). |g| = 2 |y_i| |y_j|: for ReLU layers fed by ReLU layers both
    are >= 0 already, but the first layer's inputs (normalised pixels) and a head's outputs can be negative. A bias
    is the weight of a constant input 1. Convolutions sum g over spatial positions before the absolute value.
    `post_is_relu` (Linear layers): `post` is a ReLU's output, so |post| = post and no copy is made."""
    if module.weight not in sums:
        sums.update({p: torch.zeros_like(p) for p in (module.weight, module.bias) if p is not None})
    if isinstance(module, nn.Linear):
        if pre.dim() != 2:
            raise ConfigError(f"l-MAS handles Linear layers on flat inputs; {module} got shape {tuple(pre.shape)}")
        # sum_k 2 |post_k|^T |pre_k|: the Hebbian co-activation, in the weight's own (out, in) layout
        post = post if post_is_relu else post.abs()
        accumulate_coactivation(sums[module.weight], post, pre.abs(), weight=2)
        bias_total = post.sum(0)  # |d/d b_j of the local objective| = 2 * 1 * |y_j|
    else:
        if module.groups != 1:
            raise ConfigError(f"l-MAS handles convolutions with groups=1; {module} has {module.groups}")
        patches = F.unfold(pre, module.kernel_size, module.dilation, module.padding, module.stride)
        post_flat = post.flatten(2)  # (N, out channels, positions)
        g = 2 * torch.bmm(post_flat, patches.transpose(1, 2))  # per sample, summed over positions
        sums[module.weight] += g.abs().sum(0).reshape(module.weight.shape)
        bias_total = post_flat.sum(2).abs().sum(0)
    if module.bias is not None:
        sums[module.bias].add_(bias_total, alpha=2)


class CoactivationRecorder:
    """Adds up l-MAS's sum of |g| over every forward pass of `model` while recording (forward hooks on its Linear
    and Conv2d layers; no backward pass, no copy of the activations kept). `take()` returns Omega: the sums over
    the samples seen, divided by their number, by parameter name (zeros for parameters of other layers).
    `head_outputs`: the columns of an `IncrementalHead`'s output that the task is read through (as MAS reads it);
    the head's other outputs (other tasks' parts, classes not seen yet) get no importance from these samples."""

    def __init__(self, model: nn.Module, head_outputs: slice | None = None):
        self.model = model
        self.head_outputs = head_outputs
        self.sums: dict[nn.Parameter, torch.Tensor] = {}
        self.calls: dict[nn.Module, int] = {}
        self.n_samples = self.n_forwards = 0
        self._hooks = []

    @property
    def recording(self) -> bool:
        return bool(self._hooks)

    def start(self) -> "CoactivationRecorder":
        if self.recording:
            return self
        relu_after = relu_outputs(self.model)

        @torch.no_grad()
        def add(module, inputs, output):
            relu = module in relu_after
            post = F.relu(output) if relu else output
            if isinstance(module, IncrementalHead) and self.head_outputs is not None:
                read = torch.zeros_like(post)
                read[:, self.head_outputs] = post[:, self.head_outputs]
                post = read
            for layer, columns in linear_parts(module):
                add_layer_importance(layer, inputs[0].detach(), post.detach()[:, columns], self.sums, relu)
            self.calls[module] = self.calls.get(module, 0) + 1

        def count(module, inputs, output):
            self.n_samples += len(inputs[0])
            self.n_forwards += 1

        layers = linear_maps(self.model) + [m for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        self._hooks = [m.register_forward_hook(add) for m in layers] + [self.model.register_forward_hook(count)]
        return self

    def stop(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def take(self) -> dict[str, torch.Tensor]:
        """Omega from what was recorded, and a fresh start."""
        self.stop()
        self.n_samples = distributed.total([self.n_samples])[0]  # each process recorded its shares of the batches
        if self.n_samples == 0:
            raise TrainingError("l-MAS recorded no forward pass: nothing to measure importance on")
        self.check_each_layer_used_once()
        omega = {name: total / self.n_samples for name, total in distributed.add_up(self.sums_by_name()).items()}
        self.sums, self.calls, self.n_samples, self.n_forwards = {}, {}, 0, 0
        return omega

    def check_each_layer_used_once(self) -> None:
        """The closed form holds for a layer applied once per forward pass (not a shared, reused layer)."""
        for module, calls in self.calls.items():
            if calls != self.n_forwards:
                raise ConfigError(f"l-MAS needs each layer used once per forward pass; {module} was used "
                                  f"{calls} times in {self.n_forwards} passes")

    def sums_by_name(self) -> dict[str, torch.Tensor]:
        return {n: self.sums.get(p, torch.zeros_like(p)) for n, p in self.model.named_parameters()}


def hebbian_importance(model: nn.Module, x: torch.Tensor, head_outputs: slice | None = None) -> dict[str, torch.Tensor]:
    """sum over the batch `x` of |g_ij(x_k)|, g_ij = 2 y_i^{l-1} y_j^l, for every Linear and Conv2d layer, from
    one forward pass in evaluation mode (no backward). y^l is the layer's ReLU output where an nn.ReLU follows it,
    its linear output otherwise (a head; only its `head_outputs` columns, if given). Other parameters (batch norm)
    get no importance."""
    recorder = CoactivationRecorder(model, head_outputs).start()
    with measuring_mode(model), torch.no_grad():
        try:
            model(x)
        finally:
            recorder.stop()
    recorder.check_each_layer_used_once()
    return recorder.sums_by_name()


ACTIVATIONS = ("after-training", "last-epoch")


class LocalMAS(MAS):
    """l-MAS: Omega_ij = (1/N) sum_k |2 y_i^{l-1}(x_k) y_j^l(x_k)|, the Hebbian co-activation of the neurons a
    parameter connects (section 4.2). Options: `strength` and `accumulate` as for `mas`, and
    activations  "after-training" (default, the paper): the trained network's co-activations, from a forward
                 pass of its own over the task's training data in evaluation mode; "last-epoch": the
                 co-activations of the last training epoch's own forward passes, added up as training runs (no
                 pass of its own: the cost is one co-activation product per layer and batch). The network still
                 moves during that epoch and runs in training mode (dropout, batch statistics), so the two differ
                 a little; with one epoch per task "last-epoch" sees the whole of training.
    """

    name = "l-mas"
    importance_batch_size = 1024  # the closed form does not depend on it: bigger batches, fewer passes

    def __init__(self, model, setting: str = "class", strength: float = 1.0, accumulate: str = "sum",
                 activations: str = "after-training"):
        super().__init__(model, setting, strength, "per-sample", accumulate)
        uncovered = [name for name, module in model.named_modules()
                     if not isinstance(module, (nn.Linear, IncrementalHead)) and any(
                         True for _ in module.parameters(recurse=False))]
        if uncovered:  # a weight's co-activation is defined between a Linear layer's input and output only
            raise ConfigError(f"l-mas protects Linear layers only (a weight's importance is the co-activation of the "
                              f"two units it connects), and this model has other parameters ({', '.join(uncovered[:3])}"
                              f"{' ...' if len(uncovered) > 3 else ''}: convolutions, batch norm) it would leave "
                              "unprotected: use mas, whose importance is exact on any network")
        self.estimate = "local-hebbian"
        self.activations = check_choice("activations", activations, ACTIVATIONS)
        self._recorder = CoactivationRecorder(model)

    def statistic(self, x, task_id):
        return hebbian_importance(self.model, x, self.columns_read(task_id))

    def before_task(self, task):
        self._recorder.stop()  # an interrupted task may have left its hooks on the model
        super().before_task(task)
        # and its partial sums: start afresh, reading the head as MAS does
        self._recorder = CoactivationRecorder(self.model, self.read_columns(task.id))

    def before_epoch(self, epoch, n_epochs):
        super().before_epoch(epoch, n_epochs)
        if self.activations == "last-epoch" and epoch == n_epochs - 1:
            self._recorder.start()

    def task_importance(self, task):
        if self.activations == "last-epoch":
            return self._recorder.take()
        return super().task_importance(task)
