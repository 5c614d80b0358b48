"""The contract every gcsbi simulator fulfils (what the bank, training and inference rely on)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["SimulatorProtocol"]


@runtime_checkable
class SimulatorProtocol(Protocol):
    """An ``sbi``-compatible simulator: theta (B, D) float32 -> x (B, C, H, W) float32.

    Attributes:
        prior: the ``gcsbi.priors.NamedBoxPrior`` whose ``names`` order theta's columns.
        param_names: ``prior.names``.
        output_shape: (C, H, W) of one observation after the input transforms.
        spec: JSON-serialisable description (simulator + prior specs) stored in checkpoints.
    """

    prior: Any
    param_names: tuple[str, ...]
    output_shape: tuple[int, ...]
    spec: dict[str, Any]

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """Simulate one observation per row of theta; same seed -> same bytes."""
        ...
