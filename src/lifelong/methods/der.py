"""Dark Experience Replay, DER and DER++ (Buzzega et al. 2020, "Dark Experience for General Continual Learning: a
Strong, Simple Baseline", NeurIPS; Mammoth's `models/der.py`, `models/derpp.py`).

The reservoir buffer (`lifelong.buffers.ReservoirBuffer`) also keeps each sample's logits at insertion: the
outputs of the incoming batch in training mode, before the step (Mammoth's `outputs.data`). Each step:

    DER:    L = CE(f(x), y) + alpha * MSE(f(x'), z')             (x', z') one draw from the buffer
    DER++:  L = DER's + beta * CE(f(x''), y'')                   (x'', y'') a second, independent draw

then the incoming batch is offered to the buffer with its logits (after the draws, as Mammoth does).

The MSE's denominator, chosen: the sum of squared differences over each buffer sample's stored columns, divided by
(buffer batch x the head's outputs now). In a stream the head has every class's output from the start, so this is
Mammoth's `F.mse_loss` (the mean over B x N_CLASSES) exactly. Where the head grows (the ordinary setting), the
logits are stored with their width and only those columns are compared; the weight of a column stays 1/(B x
outputs), where a mean over the stored columns alone would silently raise alpha for samples stored early.

One forward pass, chosen: the incoming batch and the buffer draws go through the model together (their logits split
apart after), where Mammoth makes a forward pass per batch (three for DER++). Without layers that pool over the
batch the outputs are the same, and at the stream's batch of 10 the fixed cost of a pass dominates the step (DER++ at
batch 10, MLP 784-100-100: 2.2 times ER's step in three passes, 1.6 in one; `benchmarks/stream_speed.md`). A model
with batch normalisation keeps Mammoth's separate passes, so that each batch is normalised by its own statistics as
in the paper's code (Avalanche's DER makes one pass of the incoming batch and one draw, batch normalisation or not).

Defaults: Mammoth requires alpha and beta (no defaults); ours are its best values for sequential MNIST with a
buffer of 500 (DER alpha 1.0; DER++ alpha 1.0, beta 0.5; Mammoth's best_args, batch 10, one epoch). On
sequential CIFAR-10 it uses DER alpha 0.3, DER++ alpha 0.2 and beta 0.5.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .er import ER


def pools_over_the_batch(model: nn.Module) -> bool:
    """Whether a sample's output in training mode depends on the rest of its batch (batch normalisation)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class DER(ER):
    name = "der"
    beta = 0.0  # DER++'s second term

    def __init__(self, model, setting: str = "class", memory: int | None = None, minibatch: int | None = None,
                 alpha: float = 1.0):
        """memory: the buffer's size in samples (required). minibatch: samples per buffer draw (default: as many as
        the incoming batch). alpha: the weight of the MSE between the buffer samples' logits now and their stored
        logits (Mammoth's best for sequential MNIST, buffer 500: 1.0)."""
        super().__init__(model, setting, memory, minibatch)
        self.alpha = float(alpha)
        self.one_pass = not pools_over_the_batch(model)  # the batches through the model together (module docstring)

    @staticmethod
    def logit_distance(logits: torch.Tensor, stored: torch.Tensor, widths: torch.Tensor,
                       full: bool = False) -> torch.Tensor:
        """Squared differences over each sample's stored columns, summed, over (samples x the head's outputs).
        `full`: every stored sample has all the head's columns (a stream's head), the mean squared error as it is."""
        if full and stored.shape[1] == logits.shape[1]:
            return F.mse_loss(logits, stored)
        w = stored.shape[1]
        real = torch.arange(w, device=stored.device) < widths.unsqueeze(1).to(stored.device)
        diff = (logits[:, :w] - stored) * real
        return diff.pow(2).sum() / (logits.shape[0] * logits.shape[1])

    def forward(self, batches: list[torch.Tensor]) -> list[torch.Tensor]:
        """The model's outputs for each of `batches`: one pass over them together, or (batch normalisation) one
        pass each."""
        if not self.one_pass or len(batches) == 1:
            return [self.model(b) for b in batches]
        return list(self.model(torch.cat(batches)).split([len(b) for b in batches]))

    def loss(self, x, targets, task_ids):
        if not len(self.buffer):
            logits = self.model(x)
            loss = self.classification_loss(logits, targets, task_ids)
        else:
            m = self.replay_size(targets)
            bx, _, _, fields = self.buffer.sample(m)  # the draws in Mammoth's order: the MSE's, then the CE's
            second = self.buffer.sample(m, fields=False) if self.beta else None
            logits, replayed, *again = self.forward([x, bx] + ([second[0]] if second else []))
            loss = self.classification_loss(logits, targets, task_ids)
            full = self.buffer.narrowest.get("logits") == logits.shape[1]  # known without reading the widths
            loss = loss + self.alpha * self.logit_distance(replayed, fields["logits"], fields["logits_width"], full)
            if second:
                loss = loss + self.beta * self.classification_loss(again[0], second[1], second[2])
        self.buffer.add(x, targets, task_ids, logits=logits.detach())
        return loss

    def describe(self) -> dict:
        return {**super().describe(), "alpha": self.alpha, "one_pass": self.one_pass,
                **({"beta": self.beta} if self.beta else {})}


class DERPP(DER):
    name = "der++"

    def __init__(self, model, setting: str = "class", memory: int | None = None, minibatch: int | None = None,
                 alpha: float = 1.0, beta: float = 0.5):
        """memory: the buffer's size in samples (required). minibatch: samples per buffer draw, each of the two
        (default: as many as the incoming batch). alpha: the weight of the logit MSE; beta: the weight of the
        cross-entropy on a second, independent buffer draw (Mammoth's best for sequential MNIST, buffer 500: 1.0
        and 0.5)."""
        super().__init__(model, setting, memory, minibatch, alpha)
        self.beta = float(beta)
