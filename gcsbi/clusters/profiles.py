"""Radial profiles of snapshots: surface brightness, projected mass, dispersion."""

from __future__ import annotations

import numpy as np

from ..errors import GcsbiValueError
from .snapshot import Snapshot

__all__ = ["surface_brightness_profile", "half_light_radius", "SB_CONSTANT"]

#: mu [mag/arcsec^2] = -2.5 log10(L / pc^2 in units of a 0-mag star) + SB_CONSTANT, for any distance.
SB_CONSTANT = 5.0 * np.log10(206264.806 / 10.0)


def _band_flux(snapshot: Snapshot, band: str) -> np.ndarray:
    if snapshot.abs_mag is None:
        raise GcsbiValueError("snapshot has no photometry attached")
    if band not in snapshot.filters:
        raise GcsbiValueError(f"band {band!r} not in snapshot filters {snapshot.filters}")
    return np.power(10.0, -0.4 * snapshot.abs_mag[:, snapshot.filters.index(band)])


def surface_brightness_profile(
    snapshot: Snapshot, *, band: str = "V", edges_pc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Azimuthally averaged surface brightness (mag/arcsec^2) in annuli of the x-y plane.

    Returns (geometric mid radius in pc, surface brightness); empty annuli give +inf.
    """
    edges = np.asarray(edges_pc, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise GcsbiValueError("edges_pc must be an increasing 1D array")
    r = np.hypot(snapshot.positions[:, 0], snapshot.positions[:, 1])
    lum, _ = np.histogram(r, edges, weights=_band_flux(snapshot, band))
    area = np.pi * np.diff(edges**2)
    with np.errstate(divide="ignore"):
        sb = -2.5 * np.log10(lum / area) + SB_CONSTANT
    mid = np.sqrt(edges[1:] * np.maximum(edges[:-1], edges[1] * 1e-3))
    return mid, sb


def half_light_radius(snapshot: Snapshot, *, band: str = "V", projected: bool = True) -> float:
    """Radius (pc) enclosing half the light in ``band`` (projected on x-y by default)."""
    pos = snapshot.positions[:, :2] if projected else snapshot.positions
    r = np.sqrt((pos**2).sum(axis=1))
    order = np.argsort(r)
    cum = np.cumsum(_band_flux(snapshot, band)[order])
    return float(np.interp(0.5 * cum[-1], cum, r[order]))
