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


def rotate(x: torch.Tensor, degrees, mode: str = "nearest", chunk: int = 8192) -> torch.Tensor:
    """Each (N, C, H, W) image turned counter-clockwise (as displayed, row 0 at the top) by `degrees` about its
    centre, the corners that come from outside the image filled with zeros; the size is kept (torchvision's
    `rotate(img, degrees)` with expand=False, fill 0). `degrees`: one angle for all, or one per image ((N,) tensor
    or sequence). `mode`: "nearest" (torchvision's default, so pixel values are the image's own) or "bilinear".
    Batched (`affine_grid` + `grid_sample`), `chunk` images at a time to bound the sampling grid's memory."""
    n, _, height, width = x.shape
    angles = torch.as_tensor(degrees, dtype=torch.float64).flatten()
    if angles.numel() not in (1, n):
        raise ValueError(f"one angle or one per image ({n}), got {angles.numel()}")
    radians = torch.deg2rad(angles.expand(n) if angles.numel() == 1 else angles)
    cos, sin = radians.cos(), radians.sin()
    # affine_grid maps each output position (normalised x right, y down) to the input position it samples: the
    # inverse turn, (x cos - y sin, x sin + y cos) in pixels, written in each axis's normalised units
    theta = torch.stack([torch.stack([cos, -sin * height / width, torch.zeros_like(cos)], 1),
                         torch.stack([sin * width / height, cos, torch.zeros_like(cos)], 1)], 1)
    theta = theta.to(x.dtype if x.is_floating_point() else torch.float32).to(x.device)
    source = x if x.is_floating_point() else x.float()
    parts = []
    for start in range(0, n, chunk):
        part = source[start:start + chunk]
        grid = F.affine_grid(theta[start:start + chunk], list(part.shape), align_corners=False)
        parts.append(F.grid_sample(part, grid, mode=mode, padding_mode="zeros", align_corners=False))
    out = torch.cat(parts) if parts else source.clone()
    return out if x.is_floating_point() else out.round().to(x.dtype)


def rotation_map(height: int, width: int, degrees: float) -> torch.Tensor:
    """`rotate(x, degrees, "nearest")` as a gather: for each output pixel (row-major), 1 + the index of the input
    pixel it copies, or 0 where it falls outside the image. `pad_gather(x, map)` applies it: one index_select per
    read, as fast as a pixel permutation (a fifth of the time of `rotate` for one angle)."""
    index = torch.arange(1, height * width + 1, dtype=torch.float64).view(1, 1, height, width)
    return rotate(index, degrees, "nearest").flatten().round().long()


def pad_gather(x: torch.Tensor, pixel_map: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) images whose pixel p (in every channel) is the input's pixel `pixel_map[p] - 1`, or 0 where
    `pixel_map[p]` is 0 (`rotation_map`)."""
    n, channels = x.shape[:2]
    pixel_map = pixel_map.to(x.device)
    pixels = pixel_map.numel()
    # one index over C x H x W (index_select on the flat images: 0.15 s for 60,000 MNIST images)
    index = ((pixel_map - 1).clamp_min(0) + pixels * torch.arange(channels, device=x.device)[:, None]).flatten()
    out = torch.index_select(x.flatten(1), 1, index)
    out.masked_fill_((pixel_map == 0).repeat(channels), 0)
    return out.reshape(x.shape)
