"""A small CNN embedding, fast enough for tests and toy problems."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["SmallCNN"]


class SmallCNN(nn.Module):
    """Two conv blocks + linear head: (B, C, H, W) -> (B, features). Fast enough for tests."""

    def __init__(self, in_channels: int = 3, features: int = 16, channels: int = 8) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"in_channels": int(in_channels), "features": int(features),
                                       "channels": int(channels)}
        c = int(channels)
        self.net = nn.Sequential(
            nn.Conv2d(int(in_channels), c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(2 * c * 16, int(features)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
