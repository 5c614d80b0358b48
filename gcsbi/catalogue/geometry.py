"""M31's disc geometry and the Milky Way foreground reddening toward it.

* :func:`m31_disc_radius_kpc`: deprojected galactocentric radius in M31's disc plane from RA/Dec,
  with the centre, position angle and inclination below (astropy does the spherical offsets).
  Halo clusters get a disc radius too; it is a coordinate, not a claim that they lie in the disc.
* :data:`EBV_FOREGROUND`: E(B-V) of the Milky Way in front of M31, the physical lower bound of every
  M31 cluster's reddening (:mod:`gcsbi.catalogue.priors`).

Constants (with their sources):

* centre RA 10.684708, Dec 41.268750 deg (M31's nucleus; NED, 2MASS position);
* position angle 38 deg and inclination 77 deg of the disc (de Vaucouleurs 1958, ApJ 128, 465;
  Walterbos & Kennicutt 1987, A&AS 69, 311: PA 37.7, i 77);
* distance 785 kpc (McConnachie et al. 2005, MNRAS 356, 979);
* foreground A_V = 0.17 mag from the Schlegel, Finkbeiner & Davis (1998) dust map with the
  Schlafly & Finkbeiner (2011, ApJ 737, 103) recalibration, the value the PHAT survey adopts
  (Dalcanton et al. 2012, ApJS 200, 18; 2015, ApJ 814, 3): E(B-V) = A_V / 3.1 = 0.055 mag. A
  star-based map of the foreground (Wang et al. 2025, arXiv:2503.18367) gives A_V = 0.185 on
  average, i.e. 0.060: the floor is the lower of the two.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["M31_CENTRE_DEG", "M31_PA_DEG", "M31_INCLINATION_DEG", "M31_DISTANCE_KPC", "EBV_FOREGROUND",
           "m31_disc_radius_kpc"]

M31_CENTRE_DEG = (10.684708, 41.268750)
M31_PA_DEG = 38.0
M31_INCLINATION_DEG = 77.0
M31_DISTANCE_KPC = 785.0
#: Milky Way foreground E(B-V) toward M31 (mag): Schlafly & Finkbeiner (2011) A_V = 0.17 / 3.1.
EBV_FOREGROUND = 0.055


def m31_disc_radius_kpc(ra_deg: Any, dec_deg: Any) -> np.ndarray:
    """Deprojected radius (kpc) in M31's disc plane of positions ``ra_deg``, ``dec_deg`` (degrees, any shape)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra, dec = np.asarray(ra_deg, dtype=float), np.asarray(dec_deg, dtype=float)
    if ra.shape != dec.shape:
        raise GcsbiValueError(f"RA and Dec must have the same shape, got {ra.shape} and {dec.shape}")
    bad = ~(np.isfinite(ra) & np.isfinite(dec)) | (np.abs(dec) > 90)
    if bad.any():
        raise GcsbiValueError(f"positions must be finite with |Dec| <= 90 deg; {int(bad.sum())} are not "
                              f"(first: RA {ra[bad].flat[0]!r}, Dec {dec[bad].flat[0]!r})")
    centre = SkyCoord(M31_CENTRE_DEG[0] * u.deg, M31_CENTRE_DEG[1] * u.deg)
    dxi, deta = centre.spherical_offsets_to(SkyCoord(ra * u.deg, dec * u.deg))
    xi, eta = dxi.to_value(u.rad), deta.to_value(u.rad)
    pa, inc = np.radians(M31_PA_DEG), np.radians(M31_INCLINATION_DEG)
    major = xi * np.sin(pa) + eta * np.cos(pa)
    minor = (-xi * np.cos(pa) + eta * np.sin(pa)) / np.cos(inc)
    return M31_DISTANCE_KPC * np.hypot(major, minor)
