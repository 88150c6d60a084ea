"""The CIFAR ResNets of He et al. 2016 (section 4.2): 6n+2 layers in 3 stages of 16, 32, 64 channels.

Shortcuts are option A of the paper (identity, with stride-2 subsampling and zero-padded extra channels), so
ResNet-20 has 0.27M and ResNet-32 0.46M parameters as in the paper's Table 6. No torchvision needed.
"""

import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.final_relu = True  # False: the block returns its sum before the ReLU (CifarResNet.remove_final_activation)

    def shortcut(self, x):
        if self.stride == 1 and self.extra_channels == 0:
            return x
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # option A: zero channels, no parameters

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + self.shortcut(x)
        return F.relu(out) if self.final_relu else out


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images; returns the 64 globally averaged features (no classifier).

    `remove_final_activation()` drops the last block's ReLU (the backbone contract of docs/architecture.md: LUCIR's
    "modified" ResNet, whose last residual block ends without it, so features may be negative).
    `stages`: its three stage groups (`blocks.1` .. `blocks.3`, maps of 16, 32 and 64 channels, the last the map the
    features are pooled from), the intermediate maps a method may read (`lifelong.models.stages`)."""

    stages = ("blocks.1", "blocks.2", "blocks.3")

    def __init__(self, depth: int = 32, in_channels: int = 3):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n+2 (20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        stages, width = [], 16
        for out_channels, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = [BasicBlock(width, out_channels, stride)]
            blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            width = out_channels
        self.blocks = nn.Sequential(stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = width
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def remove_final_activation(self) -> None:
        """The last residual block returns its sum before the ReLU (no parameter changes)."""
        self.blocks[-3][-1].final_relu = False

    def forward(self, x):
        return self.blocks(x)


def resnet20(in_channels: int = 3) -> CifarResNet:
    return CifarResNet(20, in_channels)


def resnet32(in_channels: int = 3) -> CifarResNet:
    return CifarResNet(32, in_channels)
