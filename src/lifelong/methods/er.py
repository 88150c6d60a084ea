"""Experience replay with a reservoir buffer (ER; Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual
Learning", arXiv:1902.10486; Mammoth's `models/er.py`).

Each step, the incoming batch and a batch drawn uniformly (without replacement) from the buffer are trained on
together: one cross-entropy over their union, as Mammoth does. Then the incoming batch is offered to the buffer
(Vitter's algorithm R, `lifelong.buffers.ReservoirBuffer`): the draw comes before the insertion, so a batch is
never replayed in its own step (Mammoth's order). Nothing happens at task boundaries: it learns from a stream
(`--stream`) and, in the ordinary setting, offers each epoch's samples again.

Differences from Mammoth: it stores the batch the loss saw, augmented when the scenario augments (Mammoth stores
the non-augmented inputs and re-augments at replay); the buffer draws from its own seeded generator (resumable),
not NumPy's global one. The official TensorFlow code draws the reservoir index with an exclusive upper bound (a
slight recency bias); ours is algorithm R exactly.
"""

import torch

from ..buffers import ReservoirBuffer
from ..errors import ConfigError
from .base import Method


def _size(name: str, value):
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive number of samples, got {value!r}")
    return value


class ER(Method):
    name = "er"
    keeps_exemplars = True  # takes --memory: the buffer's size
    needs_task_boundaries = False

    def __init__(self, model, setting: str = "class", memory: int | None = None, minibatch: int | None = None):
        """memory: the buffer's size in samples (Mammoth's --buffer_size; required, e.g. 200 or 500).
        minibatch: samples drawn from the buffer each step (Mammoth's --minibatch_size); default None: as many as
        the incoming batch (the official code's 10 + 10 at --batch-size 10)."""
        super().__init__(model, setting)
        if memory is None:
            raise ConfigError(f"{self.name} keeps a replay buffer and needs its size: add --memory N (e.g. 500)")
        seed = int(torch.randint(2**31, (1,)))  # drawn from the run's seeded generator: a seed per run
        self.buffer = ReservoirBuffer(_size("memory", memory), torch.Generator().manual_seed(seed))
        self.minibatch = _size("minibatch", minibatch)

    def replay_size(self, targets: torch.Tensor) -> int:
        return self.minibatch or len(targets)

    def loss(self, x, targets, task_ids):
        if len(self.buffer):
            bx, by, bt, _ = self.buffer.sample(self.replay_size(targets))
            loss = self.classification_loss(self.model(torch.cat([x, bx])), torch.cat([targets, by]),
                                            torch.cat([task_ids, bt]))
        else:
            loss = self.classification_loss(self.model(x), targets, task_ids)
        self.buffer.add(x, targets, task_ids)
        return loss

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        return {"buffer": self.buffer.describe(), "minibatch": self.minibatch}

    def state_dict(self):
        return {**super().state_dict(), "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.buffer.load_state_dict(state["buffer"], device=self._device)
