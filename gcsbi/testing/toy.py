"""A tiny image simulator with the full simulator contract: a noisy 2D Gaussian blob per band."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import GcsbiValueError
from ..spec.priors import NamedBoxPrior, ParameterSpec

__all__ = ["ToyImageSimulator"]


class ToyImageSimulator:
    """theta = (log10 flux, width in pixels, colour) -> (3, size, size) images with Gaussian noise.

    The posterior is well defined and narrow enough for quick training/calibration tests.
    """

    def __init__(self, size: int = 16, noise: float = 0.05) -> None:
        self.size = int(size)
        self.noise = float(noise)
        self.prior = NamedBoxPrior(
            (
                ParameterSpec("log10_flux", 0.0, 1.0, "dex"),
                ParameterSpec("width", 1.0, 3.0, "pix"),
                ParameterSpec("colour", -0.5, 0.5, "mag"),
            ),
            name="toy",
        )
        self.param_names = self.prior.names
        self.output_shape = (3, self.size, self.size)
        self.spec: dict[str, Any] = {"simulator": {"name": "toy", "size": self.size, "noise": self.noise},
                                     "prior": {"name": "toy"}}

    def __call__(self, theta: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
        """Images (B, 3, size, size) for theta (B, 3).

        ``seed=None`` draws the seed from torch's global generator, so ``torch.manual_seed`` (which
        ``sbi.inference.simulate_for_sbi(..., seed=)`` calls) makes a run repeat.
        """
        t = self.prior.check(theta).double().numpy()
        if seed is None:
            seed = int(torch.randint(0, 2**63 - 1, (1,)).item())
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[: self.size, : self.size] - (self.size - 1) / 2.0
        r2 = (xx**2 + yy**2)[None]
        out = np.empty((len(t), 3, self.size, self.size), dtype=np.float32)
        for i, (lf, w, c) in enumerate(t):
            if w <= 0:
                raise GcsbiValueError("width must be positive")
            blob = np.exp(-0.5 * r2 / w**2) / (2 * np.pi * w**2)
            scales = 10**lf * 10 ** (-0.4 * np.array([c, 0.0, -c]))[:, None, None]
            out[i] = (scales * blob * 10 + self.noise * rng.standard_normal(blob.shape * np.array([3, 1, 1]))).astype(np.float32)
        return torch.from_numpy(out)
