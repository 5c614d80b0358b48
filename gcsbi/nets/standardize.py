"""Input standardisation for image embeddings: one mean and std per channel."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelStandardize"]


class ChannelStandardize(nn.Module):
    """(x - mean_c) / std_c with one mean and std per channel (dim 1) of the training x.

    The per-pixel z-scoring sbi does by default (``z_score_x="independent"``) divides each pixel
    by its own standard deviation; in a sparse channel such as a pixel-CMD histogram, bins that
    are almost always empty get a tiny std, and the rare image that fills them arrives at the
    network with values of ~10^3 (measured on the hst-phat pixel-CMD channel).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).clone())
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clone())

    @classmethod
    def from_data(cls, x: torch.Tensor) -> ChannelStandardize:
        x = torch.as_tensor(x, dtype=torch.float32)
        dims = (0, *range(2, x.ndim))  # every dim but the channel one; no copy of a many-GB x
        std = x.std(dim=dims)
        return cls(x.mean(dim=dims), torch.where(std > 1e-8, std, torch.ones_like(std)))  # constant: shift only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return (x - self.mean.reshape(shape)) / self.std.reshape(shape)
