"""A-GEM: averaged gradient episodic memory (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM", ICLR;
the official facebookresearch/agem `model/model.py`, Mammoth's `models/agem.py`, Avalanche's `AGEMPlugin`).

Each step, g is the gradient of the incoming batch's loss (what the backward pass left in the parameters' .grad)
and g_ref the gradient of the loss on a reference draw from the memory. Where they conflict, g is projected onto
the half-space where the memory's loss does not rise to first order:

    if g . g_ref < 0:   g <- g - (g . g_ref / g_ref . g_ref) g_ref        else g unchanged

(dot products over all the trainable parameters flattened into one vector). The optimizer then steps with that g.
The projection lives in `before_step`, between the backward pass and the step: g_ref is computed by its own
forward and backward pass (`torch.autograd.grad`, which leaves .grad alone), then the projected g is written back
into .grad. The reference draw is made in `loss`, before the incoming batch is offered to the memory (as in ER: a
batch is not its own reference).

The memory, two kinds:
- by default a reservoir buffer (`lifelong.buffers.ReservoirBuffer`) over the stream, what the DER paper calls
  A-GEM-R (Mammoth's `agem_r`, its MNIST-360 row): A-GEM learns from a stream;
- `task_memory=m`: the paper's episodic memory, filled at task ends: after each task, m of its training samples
  drawn at random are added to the memory (the current task's samples are never in it). This is Mammoth's `agem`
  as the DER paper ran it (first release: `end_task` adds buffer_size // N_TASKS random samples of the task; the
  DER tables' P-, R- and S-MNIST rows); the official code keeps a ring of samples per class of each finished task,
  the same idea. It needs the task boundaries a stream hides, so such an A-GEM is refused in a stream.

On several processes (`lifelong.distributed`) g is already the whole batch's (added up before `before_step`); each
process's g_ref, from its own buffer, is averaged over the processes so that every one takes the same projection.
Only the single-process path is tested.

Known weakness: single-head (class-incremental) A-GEM forgets much (Avalanche's maintainers call it expected on
split-MNIST; the paper's results are task-incremental, with multi-head masks).
"""

import torch

from .. import distributed
from .er import ER, _size


def project(g: list[torch.Tensor], g_ref: list[torch.Tensor]) -> list[torch.Tensor]:
    """A-GEM's rule on gradients given per parameter (the lists flattened and concatenated are the vectors): g
    minus its component along g_ref when g . g_ref < 0, else g. Computed on the two vectors (a dozen operations,
    not a few per parameter), without a host synchronisation; the results are views of one projected vector."""
    flat_g = torch.cat([a.reshape(-1) for a in g])
    flat_r = torch.cat([b.reshape(-1) for b in g_ref])
    dot, norm = flat_g @ flat_r, flat_r @ flat_r
    scale = torch.where(dot < 0, dot / norm, torch.zeros_like(dot))  # norm is > 0 wherever dot < 0
    projected = (flat_g - scale * flat_r).split([a.numel() for a in g])
    return [p.view_as(a) for p, a in zip(projected, g)]


class AGEM(ER):
    name = "a-gem"

    def __init__(self, model, setting: str = "class", memory: int | None = None, reference: int = 256,
                 task_memory: int | None = None):
        """memory: the buffer's size in samples (required, e.g. 200 or 500). reference: the samples drawn from the
        buffer for each step's reference gradient (the paper's 256; all of the buffer while it holds fewer).
        task_memory: None (default): the memory is a reservoir over the stream (A-GEM-R); m: the paper's episodic
        memory, m random training samples of each task added at its end (Mammoth's `agem`: memory // tasks; needs
        task boundaries)."""
        super().__init__(model, setting, memory, _size("reference", reference))
        self.task_memory = _size("task_memory", task_memory)
        self.needs_task_boundaries = task_memory is not None  # this instance's: its memory is filled at task ends
        self._reference = None  # the draw for this step's g_ref, made in `loss`, used in `before_step`

    def loss(self, x, targets, task_ids):
        loss = self.classification_loss(self.model(x), targets, task_ids)
        self._reference = self.buffer.sample(self.minibatch)[:3] if len(self.buffer) else None
        if self.task_memory is None:
            self.buffer.add(x, targets, task_ids)
        return loss

    def after_task(self, task):
        """The episodic memory (`task_memory`): m of the task's training samples, drawn at random, added to it (by
        the buffer's reservoir rule, Mammoth's `Buffer.add_data`: while there is room, all of them are kept). A
        reservoir over the stream: nothing (a stream calls no boundary hook)."""
        if self.task_memory is None:
            return
        x, targets, task_ids = self.training_data(task)[:3]
        pick = torch.randperm(len(targets), generator=self.buffer.generator)[:self.task_memory]
        self.buffer.add(*(t[pick].to(self._device) for t in (x, targets, task_ids)))

    def reference_gradient(self, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
        """The gradient of the loss on the reference draw, per parameter (None where it does not reach)."""
        bx, by, bt = self._reference
        grads = list(torch.autograd.grad(self.classification_loss(self.model(bx), by, bt), params,
                                         allow_unused=True))
        if distributed.world_size() > 1:
            # every process reaches the same parameters (the same model, the same code): the messages match
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
            grads = [g / distributed.world_size() for g in distributed.add_up(dict(enumerate(grads))).values()]
        return grads

    def before_step(self):
        if self._reference is None:
            return  # an empty memory: the first step is plain SGD
        params = self.trainable_parameters()
        g_ref = self.reference_gradient(params)
        self._reference = None
        # a parameter neither loss reaches keeps no gradient (the optimizer skips it: no decay, no momentum)
        reached = [(p, r) for p, r in zip(params, g_ref) if p.grad is not None or r is not None]
        g = [torch.zeros_like(p) if p.grad is None else p.grad for p, _ in reached]
        r = [torch.zeros_like(p) if r is None else r for p, r in reached]
        for (p, _), projected in zip(reached, project(g, r)):
            p.grad = projected

    def describe(self) -> dict:
        return {"buffer": self.buffer.describe(), "reference": self.minibatch, "task_memory": self.task_memory}
