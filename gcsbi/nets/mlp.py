"""A small MLP embedding for catalogue-mode feature vectors (8 numbers per cluster)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["CatalogueMLP"]


class CatalogueMLP(nn.Module):
    """(B, in_features) -> (B, features): ``layers`` hidden layers of ``hidden`` units (SiLU)."""

    def __init__(self, in_features: int = 8, hidden: int = 64, features: int = 16, layers: int = 2) -> None:
        super().__init__()
        self.config: dict[str, Any] = {"in_features": int(in_features), "hidden": int(hidden),
                                       "features": int(features), "layers": int(layers)}
        mods: list[nn.Module] = []
        width = int(in_features)
        for _ in range(int(layers)):
            mods += [nn.Linear(width, int(hidden)), nn.SiLU()]
            width = int(hidden)
        mods.append(nn.Linear(width, int(features)))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), -1))
