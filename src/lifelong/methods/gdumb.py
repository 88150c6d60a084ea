"""GDumb (Prabhu, Torr & Dokania, "GDumb: A Simple Approach that Questions Our Progress in Continual Learning",
ECCV 2020).

The stream only fills a class-balanced memory (`lifelong.buffers.ClassBalancedBuffer`, the paper's greedy sampler:
a sample is admitted while there is room, or if its class holds fewer than memory / classes seen, a random sample of
the largest class making room); no gradient step is taken on it (a local learner: `local_update` stores the batch).
Whenever the model is to be evaluated (`before_evaluation`, after each task, in a stream too), the model is put back
to its initial state and trained from scratch on the memory alone: `passes` passes of SGD (momentum 0.9, weight
decay 1e-6, batches of 16), the first at 0.1 x lr (the official warm-up), then SGDR (cosine warm restarts, cycles
of 1, 2, 4, ... passes, from lr 0.05 down to min_lr 0.0005, set at every step), each gradient clipped to norm 10.

Differences from the official code (drimpossible/GDumb): it runs the paper's greedy sampler, where the official
loader takes a fixed slice of memory / (all classes) samples per class, the class count known up front; the
accuracy reported is the last pass's (the official code logs the best test accuracy over passes, `best_prec1`);
fp32, not fp16; no CutMix (the official code's p 0.5 on image sets). The default `passes` is 32, not the official
256 (CIFAR) or 128 (MNIST in `scripts/replicate.sh`): the retraining is repeated at every evaluation, here after
each task. On augmented scenarios the memory holds the crops the stream passed, cropped again at each pass. With
more than one epoch per task (the ordinary setting) each epoch offers the task's samples again, as ER does.
"""

import math

import torch

from ..buffers import ClassBalancedBuffer
from ..errors import ConfigError
from ..models.initial import initial_state, restore_initial
from .base import Method
from .er import _size


def sgdr_lr(position: float, lr: float, min_lr: float) -> float:
    """SGDR's learning rate (Loshchilov & Hutter 2017; T0 1, T_mult 2) `position` passes after the restarts began
    (a fraction within a pass): cosine from `lr` to `min_lr` over cycles of 1, 2, 4, ... passes."""
    start, length = 0, 1
    while start + length <= position:
        start, length = start + length, 2 * length
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (position - start) / length)) / 2


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class GDumb(Method):
    name = "gdumb"
    keeps_exemplars = True  # takes --memory: the class-balanced memory's size
    needs_task_boundaries = False  # the memory fills from the stream; the model is made at evaluation
    local_learning = True  # the stream takes no gradient step: the engine calls local_update (the memory's)

    def __init__(self, model, setting: str = "class", memory: int | None = None, passes: int = 32, lr: float = 0.05,
                 min_lr: float = 0.0005, memory_batch: int = 16, clip: float = 10.0, momentum: float = 0.9,
                 weight_decay: float = 1e-6):
        """memory: the class-balanced memory's size in samples (required: --memory N; the paper's MNIST runs 300,
        500, 4400).
        passes: passes over the memory each time the model is made, before every evaluation (official: 256 on CIFAR,
        128 on MNIST; 32 here for speed, a whole number of SGDR cycles after the warm-up pass).
        lr, min_lr: SGDR's highest and lowest learning rates (official 0.05 and 0.0005); the first pass runs at
        0.1 x lr (the official warm-up). The run's own --lr, --optimizer, --momentum are not used: the stream takes no
        gradient step (in Python, `Learner("gdumb", lr=...)` is this option: a method's option wins a shared name).
        memory_batch: the batches the memory is trained in (official 16; the run's --batch-size is the stream's).
        clip: the gradient's norm is clipped to this at each step (official 10).
        momentum, weight_decay: SGD's (official 0.9 and 1e-6)."""
        super().__init__(model, setting)
        if memory is None:
            raise ConfigError(f"{self.name} keeps a class-balanced memory and needs its size: add --memory N "
                              "(e.g. 500)")
        seed = int(torch.randint(2**31, (1,)))  # drawn from the run's seeded generator: a seed per run
        self.buffer = ClassBalancedBuffer(_size("memory", memory), torch.Generator().manual_seed(seed))
        self.passes = _size("passes", passes)
        self.memory_batch = _size("memory_batch", memory_batch)
        self.lr, self.min_lr, self.clip = _positive("lr", lr), _positive("min_lr", min_lr), _positive("clip", clip)
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr ({min_lr}) must not exceed lr ({lr})")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        # the model's initial state, each entry as first seen (a head part added later: at the next evaluation,
        # before anything trained it, since the stream trains nothing)
        self.initial = initial_state(model)
        self._optimizer = None
        self._step = 0
        self._steps_per_pass = 1

    @torch.no_grad()
    def local_update(self, x, targets, task_ids):
        """A batch of the stream: offered to the memory, nothing else."""
        self.buffer.add(x, targets, task_ids)

    def before_evaluation(self, fit):
        """The model from its initial state (every parameter trainable: the task setting's frozen old heads
        included), trained on the memory alone."""
        restore_initial(self.model, self.initial)
        data = self.buffer.contents()
        self._optimizer = torch.optim.SGD(self.model.parameters(), lr=self.lr * 0.1, momentum=self.momentum,
                                          weight_decay=self.weight_decay)
        self._step, self._steps_per_pass = 0, math.ceil(len(data[0]) / self.memory_batch)
        fit(data, self._optimizer, self.passes, self.memory_batch)
        self._optimizer = None

    def lr_at(self, step: int) -> float:
        """The learning rate of step `step` (from 0) of a retraining: 0.1 x lr in the first pass, then SGDR."""
        position = step / self._steps_per_pass
        return self.lr * 0.1 if position < 1 else sgdr_lr(position - 1, self.lr, self.min_lr)

    def before_step(self):
        """The gradient clipped to norm `clip`; this step's learning rate."""
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        for group in self._optimizer.param_groups:
            group["lr"] = self.lr_at(self._step)
        self._step += 1

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        return {"buffer": self.buffer.describe(), "passes": self.passes, "lr": self.lr, "min_lr": self.min_lr,
                "memory_batch": self.memory_batch, "clip": self.clip,
                "accuracy": "the last pass's (the official code reports the best test accuracy over passes)"}

    def state_dict(self):
        return {**super().state_dict(), "buffer": self.buffer.state_dict(), "initial": dict(self.initial)}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.buffer.load_state_dict(state["buffer"], device=self._device)
        self.initial = {name: value.to(self._device) for name, value in state["initial"].items()}
