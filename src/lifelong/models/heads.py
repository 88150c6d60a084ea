"""The classifier that grows as tasks arrive, and the backbone + head pair that every method trains.

One `IncrementalHead` serves all three settings. It is a list of linear layers, one per `add` call, whose
outputs are concatenated: mathematically one linear layer over all classes seen so far, grown without
touching the rows already learned.
- class-incremental: a part per task, prediction over the whole concatenation (a growing head);
- task-incremental: a part per task, each task read only through its own part (a multi-head);
- domain-incremental: a single part shared by every task.
"""

import itertools

import torch
import torch.nn.functional as F
from torch import nn


class GrowingHead(nn.Module):
    """The contract of every head a `ContinualModel` holds: a list of parts, one per `add` call, each with
    `out_features` classes. A subclass says what a part is (`new_part`) and how the logits are computed
    (`forward`): linear rows here, cosine rows (`models.cosine`), K proxies per class (`models.lsc`)."""

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = in_features
        self.parts = nn.ModuleList()
        # follows .to() / .cuda() / .double() even while the head has no part: where new parts go
        self.register_buffer("_where", torch.empty(0), persistent=False)

    @property
    def sizes(self) -> list[int]:
        return [part.out_features for part in self.parts]

    @property
    def out_features(self) -> int:
        return sum(self.sizes)

    def new_part(self, n_outputs: int) -> nn.Module:
        """A freshly initialised part for `n_outputs` classes (with an `out_features` attribute)."""
        raise NotImplementedError

    def add(self, n_outputs: int) -> int:
        """Append `n_outputs` new outputs (freshly initialised); return the index of their first output."""
        if n_outputs < 1:
            raise ValueError(f"a head part needs at least one output, got {n_outputs}")
        offset = self.out_features
        # initialised on the CPU (the same numbers on every device for a seed), then moved where the model is
        self.parts.append(self.new_part(n_outputs).to(self._where.device, self._where.dtype))
        return offset


class IncrementalHead(GrowingHead):
    def new_part(self, n_outputs: int) -> nn.Module:
        return nn.Linear(self.in_features, n_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.parts:
            raise RuntimeError("the head has no outputs yet: call add() before the first forward pass")
        if len(self.parts) == 1:
            return self.parts[0](features)
        # one product with the stacked weights: fewer (and larger) operations than a product per part and a
        # concatenation of the outputs, forward and backward; parts that do not require grad get none
        weight = torch.cat([part.weight for part in self.parts])
        bias = torch.cat([part.bias for part in self.parts])
        return F.linear(features, weight, bias)

    def part_columns(self) -> list[tuple[nn.Linear, slice]]:
        """Each part with the columns of the head's output that it computes."""
        offsets = [0, *itertools.accumulate(self.sizes)]
        return [(part, slice(a, b)) for part, a, b in zip(self.parts, offsets, offsets[1:])]


def linear_maps(model: nn.Module) -> list[nn.Module]:
    """The modules to hook to see every linear layer of `model` applied, each once, with its input and output:
    each `IncrementalHead` (its parts run as one product, so their own hooks never fire) and every other nn.Linear.
    `linear_parts` splits a head's output back into its parts'."""
    heads = [m for m in model.modules() if isinstance(m, IncrementalHead)]
    head_parts = {part for head in heads for part in head.parts}
    return heads + [m for m in model.modules() if isinstance(m, nn.Linear) and m not in head_parts]


def linear_parts(module: nn.Module) -> list[tuple[nn.Linear, slice]]:
    """(layer, its columns of `module`'s output): each part of an `IncrementalHead`; any other layer is itself,
    with every output."""
    return module.part_columns() if isinstance(module, IncrementalHead) else [(module, slice(None))]


class ContinualModel(nn.Module):
    """A backbone (features) followed by an `IncrementalHead` (logits over every output added so far)."""

    def __init__(self, backbone: nn.Module, out_features: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = IncrementalHead(out_features or backbone.out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
