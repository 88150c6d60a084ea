"""A multi-layer perceptron backbone."""

from torch import nn


class MLP(nn.Module):
    """Flatten the input, then hidden layers of Linear + ReLU (+ dropout).

    `blocks[i]` is hidden layer i; methods that freeze "the lower layers" (Finetune-FC) count in blocks.
    The classifier is not part of the backbone: it lives in the model's `IncrementalHead`.
    `stages`: the hidden layers (`blocks.0`, `blocks.1`, ...), whose outputs are the intermediate "maps" a method may
    read (`lifelong.models.stages`): vectors, maps with no width or height.
    `remove_final_activation()` drops the last hidden layer's ReLU (the backbone contract of
    docs/architecture.md: LUCIR's features, which may be negative).
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (400, 400), dropout: float = 0.0):
        super().__init__()
        if in_features < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"MLP needs in_features >= 1 and at least one hidden layer, got {in_features}, {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers, width = [], in_features
        for size in hidden:
            block = [nn.Linear(width, size), nn.ReLU()]
            if dropout > 0:
                block.append(nn.Dropout(dropout))
            layers.append(nn.Sequential(*block))
            width = size
        self.blocks = nn.Sequential(*layers)
        self.out_features = width
        self.stages = tuple(f"blocks.{i}" for i in range(len(hidden)))

    def remove_final_activation(self) -> None:
        """Return the last hidden layer's pre-activations as features: its ReLU becomes an identity (no parameter
        changes: checkpoints load either way)."""
        self.blocks[-1][1] = nn.Identity()

    def forward(self, x):
        return self.blocks(x.flatten(1))
