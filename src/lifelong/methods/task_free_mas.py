"""Task-free MAS (Aljundi, Kelchtermans & Tuytelaars, "Task-Free Continual Learning", CVPR 2019; the authors'
code: kkelchte/task_free_continual_learning `method.py`).

MAS with no task boundary: the stream fills a *recent buffer*; when it is full the model makes `gradient_steps`
steps on the recent buffer together with a *hard buffer* (the samples that were hardest), then

1. the first of those steps' losses joins a window of the last `window` such losses; a *plateau* (window mean <
   `mean_threshold`, variance < `variance_threshold`) reached after a new *peak* (window mean > the mean at the last
   update + the square root of the variance then) updates the importance on the hard buffer, with the model after
   the steps:

       Omega_new = sum over the hard buffer's samples of |d ||f(x)||_2 / d theta|     (the norm, not its square)
       Omega     = Omega_new / N + (1 - 1/N) Omega_old          (N: the number of updates so far; the first: Omega_new)
       theta*    = theta

2. the hard buffer keeps the `hard_size` samples of recent + hard whose loss (at the last step's forward pass) was
   highest, and the recent buffer is emptied.

Each step's loss: the cross-entropy over recent + hard (their mean) plus (mas_weight / 2) sum Omega (theta -
theta*)^2, whose gradient `before_step` adds in closed form (the importance methods' one penalty, `Regularizer`,
with lambda = mas_weight / 2).

The several steps per full recent buffer go through the engine's `Method.batch_losses` hook: each incoming batch is
added to the recent buffer sample by sample, in order; each time it fills, the round's steps are yielded (a batch
of 10 makes a round every third batch; a batch of 64 makes two rounds and leaves 4 samples waiting).

Differences from the authors' code (a 2-D synthetic demo, an MLP with MSE on one-hot targets):
- the loss is the library's cross-entropy (the setting's: the sample's own task part in the task setting), the mean
  over recent + hard, where the authors sum the MSE over samples and outputs: their learning rate (0.005, SGD) and
  their thresholds (0.2 and 0.1 on that sum) do not carry over as numbers; ours are on the mean cross-entropy;
- the hard buffer is ranked by the per-sample cross-entropy (theirs: the per-sample MSE, mean over the outputs);
- f(x) is read through the outputs the setting predicts with (every output of a stream's head; a sample's own task
  part in the task setting);
- the importance is measured in evaluation mode (the library's `measuring_mode`; the demo's MLP has no layer where
  it matters).
"""

import torch
import torch.nn.functional as F

from ..checks import check_weight
from ..errors import ConfigError
from .base import Method
from .regularization import Regularizer, per_sample_statistic


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive whole number, got {value!r}")
    return value


class PlateauDetector:
    """The authors' loss-window test: `add(loss)` appends a loss to the window of the last `length` and says
    whether the importance is to be updated now. A new peak (window mean > last update's mean + sqrt(its variance))
    arms it; a plateau (mean < `mean_threshold` and population variance < `variance_threshold`) while armed fires it
    and disarms it. Armed at the start (no update yet)."""

    def __init__(self, length: int = 5, mean_threshold: float = 0.2, variance_threshold: float = 0.1):
        self.length, self.mean_threshold, self.variance_threshold = length, mean_threshold, variance_threshold
        self.window: list[float] = []
        self.new_peak = True
        self.last_mean = self.last_variance = 0.0

    def add(self, loss: float) -> bool:
        self.window = (self.window + [float(loss)])[-self.length:]
        mean = sum(self.window) / len(self.window)
        variance = sum((value - mean) ** 2 for value in self.window) / len(self.window)
        if not self.new_peak and mean > self.last_mean + self.last_variance ** 0.5:
            self.new_peak = True
        if mean < self.mean_threshold and variance < self.variance_threshold and self.new_peak:
            self.last_mean, self.last_variance, self.new_peak = mean, variance, False
            return True
        return False

    def state_dict(self) -> dict:
        return {"window": list(self.window), "new_peak": self.new_peak, "last_mean": self.last_mean,
                "last_variance": self.last_variance}

    def load_state_dict(self, state: dict) -> None:
        self.window, self.new_peak = list(state["window"]), state["new_peak"]
        self.last_mean, self.last_variance = state["last_mean"], state["last_variance"]


def _empty():
    return None


def _join(a, b):
    """Two (x, targets, task ids) triples one after the other (either may be None)."""
    if a is None:
        return b
    if b is None:
        return a
    return tuple(torch.cat([u, v]) for u, v in zip(a, b))


class TaskFreeMAS(Regularizer):
    name = "task-free-mas"
    needs_task_boundaries = False  # the stream's own plateaus, not task ends, update the importance

    def __init__(self, model, setting: str = "class", recent_size: int = 30, hard_size: int = 30,
                 gradient_steps: int = 5, window: int = 5, mean_threshold: float = 0.2,
                 variance_threshold: float = 0.1, mas_weight: float = 0.5):
        """recent_size: the recent buffer's samples; a round of steps each time it is full (the authors'
        `recent_buffer_size=30`). hard_size: the hard buffer's samples, the highest-loss ones of recent + hard
        (`hard_buffer_size=30`). gradient_steps: steps per round (`gradient_steps=5`). window: first-step losses in
        the plateau window (`loss_window_length=5`). mean_threshold, variance_threshold: a plateau is a window
        whose mean and variance are below them (`loss_window_mean_threshold=0.2`,
        `loss_window_variance_threshold=0.1`; theirs on a summed MSE, ours on the mean cross-entropy).
        mas_weight: lambda of the penalty (lambda / 2) sum Omega (theta - theta*)^2 (`MAS_weight=0.5`)."""
        mas_weight = check_weight("mas_weight (the penalty's lambda)", mas_weight)
        super().__init__(model, setting, strength=mas_weight / 2)
        self.mas_weight = mas_weight
        self.recent_size, self.hard_size = _count("recent_size", recent_size), _count("hard_size", hard_size)
        self.gradient_steps, window = _count("gradient_steps", gradient_steps), _count("window", window)
        self.plateau = PlateauDetector(window, check_weight("mean_threshold", mean_threshold),
                                       check_weight("variance_threshold", variance_threshold))
        self.recent = _empty()  # (x, targets, task ids) waiting for the round, fewer than recent_size
        self.hard = _empty()  # (x, targets, task ids) of the hard buffer
        self.n_rounds = 0

    # ------------------------------------------------------------------ the stream
    def sample_losses(self, logits, targets, task_ids) -> torch.Tensor:
        """Each sample's cross-entropy over the outputs the setting allows (`classification_loss`, unreduced)."""
        logits = self.seen(logits)
        if self.setting == "task":
            logits = logits.masked_fill(~self.output_mask[task_ids], float("-inf"))
        return F.cross_entropy(logits, targets, reduction="none")

    def batch_losses(self, x, targets, task_ids, *extras):
        """Add the batch to the recent buffer, in order; a round of steps each time it fills."""
        start = 0
        while start < len(x):
            room = self.recent_size - (0 if self.recent is None else len(self.recent[0]))
            part = slice(start, start + room)
            self.recent = _join(self.recent, (x[part].detach(), targets[part], task_ids[part]))
            start += room
            if len(self.recent[0]) == self.recent_size:
                yield from self.round()

    def round(self):
        """`gradient_steps` steps on recent + hard (each loss yielded to the engine), then the plateau test, the
        importance if it fires (on the hard buffer, the model after the steps), the new hard buffer."""
        x, targets, task_ids = _join(self.recent, self.hard)
        first = ranking = None
        for s in range(self.gradient_steps):
            per_sample = self.sample_losses(self.model(x), targets, task_ids)
            loss = per_sample.mean()
            if s == 0:
                first = loss.item()
            if s == self.gradient_steps - 1:
                ranking = per_sample.detach()
            yield loss
        self.n_rounds += 1
        if self.plateau.add(first):
            self.consolidate(self.hard_importance())
        keep = torch.sort(ranking, descending=True, stable=True).indices[:self.hard_size]
        self.hard = (x[keep], targets[keep], task_ids[keep])
        self.recent = _empty()

    def function_norm(self, out: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """||f(x)||_2 per sample (not squared), over the outputs the setting reads (a sample's task part in the task
        setting)."""
        out = self.seen(out)
        if self.setting == "task":
            out = out * self.output_mask[task_ids]
        return out.flatten(1).norm(dim=1)

    def hard_importance(self) -> dict[str, torch.Tensor]:
        """sum over the hard buffer of |d ||f(x)||_2 / d theta|, exact per sample (zeros before it holds any)."""
        if self.hard is None:
            return {n: torch.zeros_like(p) for n, p in self.model.named_parameters()}
        x, _, task_ids = self.hard
        return per_sample_statistic(self.model, self.function_norm, x, task_ids)

    def combine(self, new):
        """The running mean over the updates: Omega_new / N + (1 - 1/N) Omega_old, N counting this one."""
        n = self.n_consolidated + 1
        for name, omega in new.items():
            old = self._importance.get(name)
            fresh = old is None or old.shape != omega.shape
            self._importance[name] = omega if fresh else omega / n + (1 - 1 / n) * old
        self._anchor = self.snapshot()

    def after_task(self, task):
        """Nothing at a task's end (the stream's plateaus update the importance), not MAS's task importance."""
        Method.after_task(self, task)

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        return {"recent_size": self.recent_size, "hard_size": self.hard_size, "gradient_steps": self.gradient_steps,
                "importance_updates": self.n_consolidated, "rounds": self.n_rounds}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "recent": self.recent, "hard": self.hard, "plateau": self.plateau.state_dict(),
                "rounds": self.n_rounds}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        device = self._device
        move = (lambda triple: None if triple is None else tuple(t.to(device) for t in triple))
        self.recent, self.hard = move(state["recent"]), move(state["hard"])
        self.plateau.load_state_dict(state["plateau"])
        self.n_rounds = state["rounds"]
