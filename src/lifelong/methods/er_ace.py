"""ER-ACE: experience replay with the asymmetric cross-entropy (Caccia et al. 2022, "New Insights on Reducing
Abrupt Representation Change in Online Continual Learning", ICLR; the official pclucas14/AML `methods/er_ace.py`,
Mammoth's `models/er_ace.py`).

Each step, two cross-entropies, summed (as the official code and Mammoth; Avalanche averages them, /2):

    L = CE_masked(f(x), y) + CE(f(x'), y'),    (x', y') a draw from the reservoir buffer

- the incoming term's logits keep the classes present in the incoming batch and every output not seen yet (the
  classes to come: in a stream the head has them all from the start); the other seen classes are masked (-inf), so
  the incoming samples do not push the old classes' logits down, which is what moves the old representations
  abruptly when new classes arrive;
- the replay term is a separate forward pass over the buffer draw, over the whole head (the setting's outputs).

Then the incoming batch is offered to the buffer (after the draw, as in ER). "Seen" is a set of outputs, recorded
from the labels offered so far (not from task boundaries): the masking applies from the first batch of a stream,
task-free, as AML does (Mammoth's `task_free` option, which its best configuration sets).

The rule is per output, so it holds in every setting. In the class and task settings an output is a class; in the
domain setting (tasks share the outputs) an output is "seen" once any task has shown its label: after the first
few batches every output is seen, and the incoming term runs over the batch's present outputs only (what AML's
and Mammoth's rule give on a domain-incremental dataset). In the task setting the setting's own mask (a sample's
task part) applies as well.

Differences from the official code: it keeps unmasked "every output >= the largest seen so far" (the largest seen
included), which equals "not seen" when class ids arrive in increasing order (split streams); ours is the set of
outputs not seen, whatever the order (blurry boundaries, an ordered stream, the domain setting). The masked value
is -inf (AML: -1e9; the same softmax). Mammoth also swaps in a cosine head by default; ours is the model's head.
"""

import torch

from .er import ER


class ERACE(ER):
    name = "er-ace"

    def __init__(self, model, setting: str = "class", memory: int | None = None, minibatch: int | None = None):
        """memory: the buffer's size in samples (required, e.g. 200 or 500). minibatch: samples drawn from the buffer
        each step, for the replay term; default None: as many as the incoming batch (AML's 10 + 10)."""
        super().__init__(model, setting, memory, minibatch)
        self.seen_outputs = torch.zeros(0, dtype=torch.bool)  # the outputs whose label was offered so far

    def _seen(self, width: int, device) -> torch.Tensor:
        """The seen outputs among the first `width` (a head grown since: its new outputs are not seen)."""
        seen = self.seen_outputs.to(device)
        if len(seen) < width:
            seen = torch.cat([seen, seen.new_zeros(width - len(seen))])
        return seen[:width]

    def incoming_mask(self, targets: torch.Tensor, width: int) -> torch.Tensor:
        """The outputs (of `width`) the incoming term masks: seen before, and absent from this batch."""
        masked = self._seen(width, targets.device).clone()
        masked[targets] = False
        return masked

    def loss(self, x, targets, task_ids):
        logits = self.model(x)
        masked = self.incoming_mask(targets, logits.shape[1])
        loss = self.classification_loss(logits.masked_fill(masked, float("-inf")), targets, task_ids)
        if len(self.buffer):
            bx, by, bt, _ = self.buffer.sample(self.replay_size(targets))
            loss = loss + self.classification_loss(self.model(bx), by, bt)
        self.buffer.add(x, targets, task_ids)
        seen = self._seen(logits.shape[1], targets.device).clone()  # targets index the head: no sync for a max
        seen[targets] = True
        self.seen_outputs = seen
        return loss

    # ------------------------------------------------------------------ results and checkpoints
    def describe(self) -> dict:
        return {**super().describe(), "seen_outputs": int(self.seen_outputs.sum())}

    def state_dict(self):
        return {**super().state_dict(), "seen_outputs": self.seen_outputs.cpu()}

    def load_state_dict(self, state, tasks):
        super().load_state_dict(state, tasks)
        self.seen_outputs = state["seen_outputs"].to(self._device)
