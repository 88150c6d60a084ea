"""A model's state before training, kept to train it again from scratch: GDumb's model at every evaluation, joint
training's at every task (`from_scratch`, as Mammoth's JOINT)."""

import torch
from torch import nn


def initial_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every entry of `model`'s state, as it is now (before training)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def restore_initial(model: nn.Module, initial: dict[str, torch.Tensor]) -> None:
    """`model` back to `initial`, every parameter trainable. An entry `initial` lacks (a head part added since it was
    taken) is recorded now, as it is, into `initial`: restore before anything trains a new part."""
    state = model.state_dict()
    for name, value in state.items():
        if name not in initial:
            initial[name] = value.detach().clone()
    model.load_state_dict({name: initial[name] for name in state})
    model.requires_grad_(True)
