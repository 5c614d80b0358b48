"""Simulated observations as per-band FITS images (``gcsbi simulate --fits DIR``).

Every mock is written as one FITS file per band, ``mock<i>_<FILTER>.fits``: a 2D float32 image
in electrons summed over the band's exposure, with the sky the simulator added subtracted (the
convention of drizzled HST images), and a header that ``gcsbi infer`` reads back
(:func:`gcsbi.observe.hst_images.read_hst_cutouts`):

* ``FILTER``, ``BUNIT = 'ELECTRONS'``, ``EXPTIME`` (s) and ``ZP_VEGA`` (the band's Vega zero
  point, 1 e-/s): the reader rescales to the spec's zero point and exposure (a factor of
  exactly 1 here) and adds the spec's sky back, so ``gcsbi infer <posterior> DIR/mock0_*.fits``
  gives the simulation's x again, up to float32 rounding; ``SKYSUB`` records the sky subtracted;
* a celestial TAN WCS (``CD`` matrix, north up, east left) at the spec's pixel scale, centred on
  the given RA/Dec or on the placeholder position :data:`PLACEHOLDER_RA_DEC`;
* the simulation: ``SIMSPEC``, ``PRIOR``, ``SEED`` and ``MOCK`` (mock ``i`` of a run draws its
  noise from ``SeedSequence([SEED, MOCK])``), and one ``HIERARCH THETA <name>`` card per
  parameter (its unit as the comment).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiValueError

__all__ = ["PLACEHOLDER_RA_DEC", "band_header", "mock_file_names", "write_fits_images", "check_position"]

#: (RA, Dec) in degrees of the image centre when none is given: a placeholder, not a real target.
PLACEHOLDER_RA_DEC = (0.0, 0.0)


def check_position(ra: Any, dec: Any) -> tuple[float, float]:
    """(RA in [0, 360), Dec) in degrees; not finite, or Dec outside [-90, 90], is a GcsbiValueError."""
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise GcsbiValueError(f"RA/Dec must be numbers in degrees, got {ra!r}, {dec!r}") from None
    if not (np.isfinite(ra) and np.isfinite(dec)):
        raise GcsbiValueError(f"RA/Dec must be finite, got {ra}, {dec}")
    if not -90.0 <= dec <= 90.0:
        raise GcsbiValueError(f"Dec must lie within [-90, 90] deg, got {dec}")
    return ra % 360.0, dec


def mock_file_names(n: int, filters: Sequence[str]) -> list[list[str]]:
    """File names per mock and band: ``mock<i>_<FILTER>.fits``, ``i`` zero-padded to at least 3 digits."""
    width = max(3, len(str(int(n) - 1)))
    return [[f"mock{i:0{width}d}_{band}.fits" for band in filters] for i in range(int(n))]


def band_header(spec: Any, band: int, *, ra: float, dec: float, theta: dict[str, float] | None = None,
                units: dict[str, str] | None = None, seed: int | None = None, index: int | None = None,
                prior_name: str | None = None, placeholder: bool = False) -> Any:
    """The FITS header of band number ``band`` of ``spec`` (a ``SimulatorSpec``), see the module docstring."""
    from astropy.io import fits

    from ..observe.transforms import sky_levels

    b = spec.instrument.bands[band]
    h, w = spec.observation.size
    scale = float(spec.instrument.pixel_scale_arcsec) / 3600.0
    hdr = fits.Header()
    hdr["ORIGIN"] = ("gcsbi", "simulated observation")
    hdr["TELESCOP"] = str(spec.instrument.telescope)
    if getattr(b, "camera", ""):
        hdr["INSTRUME"] = str(b.camera)
    hdr["FILTER"] = (str(b.filter), "band")
    hdr["BUNIT"] = ("ELECTRONS", "e- summed over EXPTIME, sky subtracted")
    hdr["EXPTIME"] = (float(b.exposure_s), "[s] exposure time")
    hdr["ZP_VEGA"] = (float(b.zeropoint_vega), "[mag] Vega magnitude giving 1 e-/s")
    hdr["SKYSUB"] = (float(sky_levels(spec)[band]), "[e-] sky per pixel subtracted")
    hdr["WCSAXES"] = 2
    hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
    hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    hdr["CRVAL1"] = (float(ra), "[deg] RA of the image centre" + (" (placeholder)" if placeholder else ""))
    hdr["CRVAL2"] = (float(dec), "[deg] Dec of the image centre" + (" (placeholder)" if placeholder else ""))
    hdr["CRPIX1"], hdr["CRPIX2"] = (w + 1) / 2.0, (h + 1) / 2.0
    hdr["CD1_1"], hdr["CD1_2"] = -scale, 0.0  # north up, east left
    hdr["CD2_1"], hdr["CD2_2"] = 0.0, scale
    hdr["RADESYS"] = "ICRS"
    hdr.append(_card("SIMSPEC", str(spec.name), "gcsbi simulator spec"))
    if prior_name is not None:
        hdr.append(_card("PRIOR", str(prior_name), "gcsbi prior"))
    if seed is not None:
        hdr["SEED"] = (int(seed), "gcsbi simulate --seed")
    if index is not None:
        hdr["MOCK"] = (int(index), "mock i: noise from SeedSequence([SEED, i])")
    for i, (name, value) in enumerate((theta or {}).items(), 1):
        unit = str((units or {}).get(name, ""))
        # a name too long for a HIERARCH card goes into the comment of a numbered card
        hdr.append(_card(f"HIERARCH THETA {name}", float(value), unit, fallback=(f"THETA{i}", name[:45])))
    if placeholder:
        hdr["COMMENT"] = "The WCS centre is a placeholder position (gcsbi simulate --ra/--dec set it)."
    return hdr


def _card(key: str, value: Any, comment: str, *, fallback: tuple[str, str] | None = None) -> Any:
    """A header card that fits 80 characters: the comment is cut or left out, else ``fallback`` (key, comment)."""
    import warnings

    from astropy.io import fits
    from astropy.io.fits.verify import VerifyWarning

    tries = [(key, comment), (key, "")] + ([fallback, (fallback[0], "")] if fallback else [])
    for k, c in tries:
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            try:
                card = fits.Card(k, value, c)
                card.image  # formats it: a card too long warns or raises here
                return card
            except (VerifyWarning, ValueError):
                continue
    raise GcsbiValueError(f"cannot write {key} = {value!r} as a FITS header card")


def write_fits_images(folder: str | Path, images: Any, theta: Any, *, spec: Any, names: Sequence[str],
                      units: dict[str, str] | None = None, seed: int | None = None, prior_name: str | None = None,
                      ra: float | None = None, dec: float | None = None) -> list[Path]:
    """Write ``images`` (B, F, H, W) e- (sky included, as simulated) with their ``theta`` (B, D) into ``folder``.

    One file per mock and band (:func:`mock_file_names`); returns their paths. ``folder`` must
    exist (``gcsbi simulate`` passes the temporary folder of :func:`gcsbi.outputs.output_dir`).
    """
    from astropy.io import fits

    from ..observe.transforms import sky_levels

    images = np.asarray(images)
    theta = np.asarray(theta, dtype=np.float64).reshape(len(images), -1)
    n_bands = len(spec.filters)
    if images.ndim != 4 or images.shape[1] != n_bands or tuple(images.shape[2:]) != tuple(spec.observation.size):
        raise GcsbiValueError(f"images must have shape (B, {n_bands}, {', '.join(map(str, spec.observation.size))}) "
                              f"for the {spec.name} spec, got {images.shape}")
    placeholder = ra is None and dec is None
    ra, dec = check_position(*(PLACEHOLDER_RA_DEC if placeholder else (ra, dec)))
    sky = sky_levels(spec)
    folder = Path(folder)
    written = []
    for i, files in enumerate(mock_file_names(len(images), spec.filters)):
        values = dict(zip(names, theta[i].tolist()))
        for band, fname in enumerate(files):
            hdr = band_header(spec, band, ra=ra, dec=dec, theta=values, units=units, seed=seed, index=i,
                              prior_name=prior_name, placeholder=placeholder)
            data = (images[i, band].astype(np.float64) - sky[band]).astype(np.float32)
            fits.PrimaryHDU(data=data, header=hdr).writeto(folder / fname)
            written.append(folder / fname)
    return written
