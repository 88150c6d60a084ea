"""The backbone contract for intermediate maps: a backbone may name its stages, and their outputs are collected
during the ordinary forward pass (forward hooks, no second pass).

    class MyNet(nn.Module):
        stages = ("layer1", "layer2", "layer3")   # names in self.named_modules(), in the order they run

    with StageOutputs(backbone) as maps:           # hooks on those submodules, for the duration of the block
        features = backbone(x)                     # maps: [layer1's output, layer2's output, layer3's output]

Any `nn.Module` that returns features stays a valid backbone: `stages` is asked for only by a method that needs the
maps (PODNet's POD-spatial), and one without it is refused in one line (`stage_modules`) before any training. The
library's backbones declare theirs: the CIFAR ResNets their three stage groups (maps of 16, 32, 64 channels), the
MLP its hidden layers (vectors: a map with no width or height).

The hooks exist only inside the `with` block, so a copy of the model (`copy.deepcopy`, the old model a method keeps)
never carries a hook that writes into another model's list.
"""

import torch
from torch import nn

from ..errors import ConfigError


def stage_modules(backbone: nn.Module, who: str = "this method") -> list[nn.Module]:
    """The submodules that `backbone.stages` names, in order; a ConfigError in one line if it names none or a name
    that is not one of its submodules."""
    names = getattr(backbone, "stages", None)
    if not names or isinstance(names, str):
        raise ConfigError(f"{who} needs a backbone's intermediate maps, and {type(backbone).__name__} declares no "
                          "stages: give it `stages = (names of its submodules whose outputs are the maps, in "
                          "order)` (docs/architecture.md, the backbone contract), or use mlp, resnet20 or resnet32")
    modules = dict(backbone.named_modules())
    missing = [name for name in names if name not in modules or name == ""]
    if missing:
        raise ConfigError(f"{type(backbone).__name__}.stages names {', '.join(map(repr, missing))}, which is not "
                          f"one of its submodules (see named_modules())")
    return [modules[name] for name in names]


def remove_final_activation(backbone: nn.Module, who: str) -> None:
    """The other backbone contract: features taken before the backbone's last ReLU (LUCIR, PODNet), through its
    `remove_final_activation()`; a ConfigError in one line for a backbone without one."""
    remove = getattr(backbone, "remove_final_activation", None)
    if remove is None:
        raise ConfigError(f"{who} takes the features before the backbone's last ReLU, and {type(backbone).__name__} "
                          "has no remove_final_activation(): define it, or pass remove_last_relu=False to keep the "
                          "ReLU")
    remove()


class StageOutputs:
    """`with StageOutputs(backbone) as maps:` the outputs of the backbone's stages, appended to `maps` as the
    forward pass inside the block runs them (a stage run twice appears twice)."""

    def __init__(self, backbone: nn.Module, who: str = "this method"):
        self.modules = stage_modules(backbone, who)
        self.maps: list[torch.Tensor] = []
        self._handles = []

    def _keep(self, module, inputs, output):
        self.maps.append(output)

    def __enter__(self) -> list[torch.Tensor]:
        self.maps = []
        self._handles = [module.register_forward_hook(self._keep) for module in self.modules]
        return self.maps

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
