"""Batched data augmentation with tensor operations (no per-image Python work, no torchvision)."""

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad each (N, C, H, W) image by `padding` on every side and cut a random H x W window from it."""
    n, c, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device="cpu").to(x.device)
    left = torch.randint(0, 2 * padding + 1, (n, 1), generator=generator, device="cpu").to(x.device)
    rows = (top + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (left + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channel = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_horizontal_flip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = torch.rand(x.shape[0], generator=generator, device="cpu").to(x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def crop_and_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The standard CIFAR training augmentation: random crop with padding 4, then a random horizontal flip."""
    return random_horizontal_flip(random_crop(x, 4, generator), 0.5, generator)
