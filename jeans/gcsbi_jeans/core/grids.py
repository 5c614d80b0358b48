"""Radius grids every route evaluates its profiles on, and the radii the data cover."""

from __future__ import annotations

import numpy as np

from .io import StarTable

__all__ = ["DATA_QUANTILES", "default_grids", "data_radius_range", "radius_quantiles"]

#: Weighted quantiles of the stars' projected radii taken as the radii the data cover (JFlow's ensemble members
#: must be physical between them: :func:`~gcsbi_jeans.jflow.fit.screen_members`).
DATA_QUANTILES = (0.05, 0.95)


def radius_quantiles(stars: StarTable, qs: tuple[float, ...]) -> list[float]:
    """Weighted quantiles ``qs`` of the stars' projected radii (kpc; at least 1e-6)."""
    order = np.argsort(stars.R)
    cw = np.cumsum(stars.weight[order])
    cw /= cw[-1]
    return [max(float(stars.R[order][min(np.searchsorted(cw, q), stars.n - 1)]), 1e-6) for q in qs]


def default_grids(stars: StarTable, *, n_r: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Radius grid r (kpc) for 3D profiles and R for projected ones, spanning the data's radial range."""
    lo, hi = radius_quantiles(stars, (0.01, 0.99))
    return np.geomspace(lo, hi * 1.5, n_r), np.geomspace(lo, hi, n_r // 2)


def data_radius_range(stars: StarTable, quantiles: tuple[float, float] = DATA_QUANTILES) -> tuple[float, float]:
    """The radii (kpc) the data cover: weighted quantiles (default 5% and 95%) of the projected radii."""
    lo, hi = radius_quantiles(stars, tuple(quantiles))
    return lo, hi
