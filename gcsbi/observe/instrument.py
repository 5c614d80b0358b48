"""Photometry and geometry: absolute magnitudes -> counts, 3D/2D pc -> pixel coordinates.

Conventions (used throughout :mod:`gcsbi.observe`):

* Counts are electrons (e-) summed over the exposure: a star of apparent Vega
  magnitude ``m`` gives ``exposure_s * 10**(-0.4 (m - zeropoint_vega))`` e-.
* ``m = M + mu + A_f`` with the distance modulus ``mu = 5 log10(d / 10 pc)``
  and ``A_f = R_f * E(B-V)`` (``R_f = A_f / E(B-V)`` per band).
* Positions: the line of sight is the snapshot's z axis (the viewing rotation
  is applied by ``Snapshot``); ``(x, y)`` pc project to sky offsets
  ``X = x / d``, ``Y = y / d`` (radians -> arcsec, astropy units). On the image,
  ``X`` grows to the right (+column) and ``Y`` up (+row); with North up and
  East left, ``Y`` is North and ``-X`` is East.
* Ellipticity ``e = 1 - b/a`` and position angle ``PA`` (degrees, from +Y/North
  towards -X/East, the astronomical convention) are applied to the projected
  positions as an area-preserving stretch ``(X, Y) -> (X sqrt(q), Y / sqrt(q))``
  with ``q = 1 - e`` (major axis along Y), then a rotation by PA. The surface
  density at the centre is unchanged; a round cluster becomes an ellipse of
  axis ratio q with its major axis at PA.
"""

from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import numpy as np

from ..errors import GcsbiValueError, UnknownFilterError

__all__ = [
    "ARCSEC_PER_PC_AT_1KPC",
    "distance_kpc_value",
    "distance_modulus",
    "project_positions",
    "sky_to_pixels",
    "select_bands",
    "magnitudes_to_counts",
]

#: Angle subtended by 1 pc at 1 kpc, in arcsec (206.265"), from astropy units.
ARCSEC_PER_PC_AT_1KPC: float = float(((1 * u.pc) / (1 * u.kpc) * u.rad).to(u.arcsec).value)


def distance_kpc_value(distance: float | u.Quantity) -> float:
    """Distance in kpc from a float (kpc) or an astropy length Quantity; must be finite and > 0."""
    if isinstance(distance, u.Quantity):
        try:
            d = float(distance.to_value(u.kpc))
        except u.UnitConversionError as exc:
            raise GcsbiValueError(f"distance must be a length, got {distance}") from exc
    else:
        d = float(distance)
    if not (np.isfinite(d) and d > 0):
        raise GcsbiValueError(f"distance must be finite and > 0 kpc, got {distance}")
    return d


def distance_modulus(distance_kpc: float | u.Quantity) -> float:
    """``5 log10(d / 10 pc)``."""
    d = distance_kpc_value(distance_kpc)
    return 5.0 * np.log10(d * 1e3) - 5.0


def project_positions(
    positions_pc: np.ndarray,
    *,
    distance_kpc: float | u.Quantity,
    ellipticity: float = 0.0,
    position_angle_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sky offsets (X, Y) in arcsec of (n, 3) or (n, 2) positions in pc (see module docstring)."""
    pos = np.asarray(positions_pc, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] not in (2, 3):
        raise GcsbiValueError(f"positions_pc must have shape (n, 3) or (n, 2), got {pos.shape}")
    if not np.all(np.isfinite(pos[:, :2])):
        raise GcsbiValueError("positions_pc contains NaN or inf")
    e = float(ellipticity)
    if not (0.0 <= e < 1.0):
        raise GcsbiValueError(f"ellipticity must be in [0, 1), got {ellipticity}")
    pa = float(position_angle_deg)
    if not np.isfinite(pa):
        raise GcsbiValueError(f"position_angle_deg must be finite, got {position_angle_deg}")
    s = ARCSEC_PER_PC_AT_1KPC / distance_kpc_value(distance_kpc)
    x = pos[:, 0] * s
    y = pos[:, 1] * s
    if e > 0:
        sq = np.sqrt(1.0 - e)
        x = x * sq
        y = y / sq
    if pa != 0.0:
        t = np.deg2rad(pa)
        c, sn = np.cos(t), np.sin(t)
        # rotate the +Y axis towards -X (North through East)
        x, y = x * c - y * sn, x * sn + y * c
    return x, y


def sky_to_pixels(
    x_arcsec: np.ndarray, y_arcsec: np.ndarray, *, pixel_scale_arcsec: float, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (column x, row y) with the offsets' origin at the stamp centre ((W-1)/2, (H-1)/2)."""
    h, w = shape
    return (np.asarray(x_arcsec) / pixel_scale_arcsec + (w - 1) / 2.0,
            np.asarray(y_arcsec) / pixel_scale_arcsec + (h - 1) / 2.0)  # fmt: skip


def select_bands(abs_mag: np.ndarray, filters: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Columns of ``abs_mag`` (n, F) for the ``wanted`` filters, as (n, len(wanted)) float64.

    ``+inf`` (dark particles) is allowed; NaN and ``-inf`` raise.
    """
    m = np.asarray(abs_mag, dtype=np.float64)
    filters = list(filters)
    if m.ndim != 2 or m.shape[1] != len(filters):
        raise GcsbiValueError(f"abs_mag must have shape (n, {len(filters)}) for filters {filters}, got {m.shape}")
    missing = [f for f in wanted if f not in filters]
    if missing:
        raise UnknownFilterError(f"snapshot has no magnitudes for {missing}; it has {filters}")
    out = m[:, [filters.index(f) for f in wanted]]
    if np.any(np.isnan(out)) or np.any(out == -np.inf):
        raise GcsbiValueError("abs_mag contains NaN or -inf")
    return out


def magnitudes_to_counts(
    abs_mag: np.ndarray,
    *,
    zeropoints: np.ndarray,
    exposure_s: np.ndarray,
    distance_modulus: float,
    extinction_mag: np.ndarray | None = None,
) -> np.ndarray:
    """Counts (F, n) in e- from absolute magnitudes (n, F); ``+inf`` magnitudes give 0."""
    m = np.asarray(abs_mag, dtype=np.float64).T + distance_modulus
    if extinction_mag is not None:
        m = m + np.asarray(extinction_mag, dtype=np.float64)[:, None]
    zp = np.asarray(zeropoints, dtype=np.float64)[:, None]
    t = np.asarray(exposure_s, dtype=np.float64)[:, None]
    return t * np.power(10.0, -0.4 * (m - zp))
