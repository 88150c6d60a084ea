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

Defaults: Mammoth requires alpha and beta (no defaults); ours are its best values for sequential MNIST with a
buffer of 500 (DER alpha 1.0; DER++ alpha 1.0, beta 0.5; Mammoth's best_args, batch 10, one epoch). On
sequential CIFAR-10 it uses DER alpha 0.3, DER++ alpha 0.2 and beta 0.5.
"""

import torch

from .er import ER


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

    @staticmethod
    def logit_distance(logits: torch.Tensor, stored: torch.Tensor, widths: torch.Tensor) -> torch.Tensor:
        """Squared differences over each sample's stored columns, summed, over (samples x the head's outputs)."""
        w = stored.shape[1]
        real = torch.arange(w, device=stored.device) < widths.unsqueeze(1).to(stored.device)
        diff = (logits[:, :w] - stored) * real
        return diff.pow(2).sum() / (logits.shape[0] * logits.shape[1])

    def loss(self, x, targets, task_ids):
        logits = self.model(x)
        loss = self.classification_loss(logits, targets, task_ids)
        if len(self.buffer):
            m = self.replay_size(targets)
            bx, _, _, fields = self.buffer.sample(m)
            loss = loss + self.alpha * self.logit_distance(self.model(bx), fields["logits"], fields["logits_width"])
            if self.beta:
                bx, by, bt, _ = self.buffer.sample(m)
                loss = loss + self.beta * self.classification_loss(self.model(bx), by, bt)
        self.buffer.add(x, targets, task_ids, logits=logits.detach())
        return loss

    def describe(self) -> dict:
        return {**super().describe(), "alpha": self.alpha, **({"beta": self.beta} if self.beta else {})}


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
