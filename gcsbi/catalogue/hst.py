"""Image mode for real data: read HST drizzled cutouts and put them on the simulator's grid.

:func:`read_hst_image` reads one band: the science array (``SCI`` extension or the first 2D HDU),
the band (``FILTER`` / ``FILTER1`` / ``FILTER2``, CLEAR* skipped), units, exposure time, zero point
and WCS, with the HST conventions:

* units: ``BUNIT`` ``ELECTRONS/S`` (``_drz``/``_drc`` pipeline products) -> x ``EXPTIME``;
  ``ELECTRONS`` as is; ``COUNTS/S`` / ``COUNTS`` (DN) -> x ``CCDGAIN`` (or ``gain=``). Without
  ``BUNIT`` a ``_drz``/``_drc`` file name means e-/s, anything else raises.
* zero point (Vega): the ``zeropoint_vega`` argument, else a ``ZP_VEGA``/``ZPVEGA``/``ZP`` keyword
  (taken as Vega), else from ``PHOTFLAM``/``PHOTPLAM`` (and ``PHOTZPT``, the ST zero point -21.10):
  ``ZP_AB = -2.5 log10(PHOTFLAM) - 5 log10(PHOTPLAM) - 2.408`` and ``ZP_Vega = ZP_AB - (AB - Vega)``
  with the band's AB-Vega offset (:data:`AB_MINUS_VEGA`, from the ACS/WFC3 zero-point tables;
  approximate, a warning says so).
* keywords are looked up in the SCI header first, then the primary header (PHOTFLAM sits in
  either, EXPTIME in the primary).

:func:`cutout_to_simulator` cuts a stamp of the simulator's size around (RA, Dec) on a
north-up, east-left TAN grid at the simulator's pixel scale (``reproject.reproject_exact``,
flux-conserving: surface brightness is resampled and multiplied by the pixel-area ratio), and
rescales the counts to the simulator's zero point and exposure, adding back the simulator's sky
(drizzled images are sky-subtracted, the simulator's images are not)::

    counts_sim = rate_real * 10**(-0.4 (ZP_real - ZP_sim)) * t_sim  (+ sky_sim)

:func:`read_hst_cutouts` does it for every band of a simulator spec and returns (C, H, W) e-,
ready for ``ObservationModel.transform`` / image-mode ``gcsbi.infer``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiFileError, GcsbiValueError

__all__ = ["HSTImage", "AB_MINUS_VEGA", "read_hst_image", "cutout_to_simulator", "read_hst_cutouts",
           "observation_from_cutouts"]

#: m_AB - m_Vega per band (ACS/WFC zeropoint calculator ~2012, WFC3/UVIS ISR 2017-14), approximate.
AB_MINUS_VEGA: dict[str, float] = {"F275W": 1.50, "F336W": 1.18, "F438W": -0.15, "F475W": -0.10, "F555W": -0.03,
                                   "F606W": 0.09, "F625W": 0.15, "F775W": 0.39, "F814W": 0.42, "F110W": 0.75,
                                   "F160W": 1.25}


@dataclass
class HSTImage:
    """One band of a real HST image, in e- over the exposure (``data``), with its calibration."""

    data: np.ndarray
    band: str
    exptime: float
    zeropoint_vega: float
    wcs: Any
    pixel_scale_arcsec: float
    path: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> np.ndarray:
        """e-/s."""
        return self.data / self.exptime


def _lookup(headers: Sequence[Any], *keys: str) -> Any:
    for key in keys:
        for h in headers:
            if h is not None and key in h and h[key] not in (None, ""):
                return h[key]
    return None


def _band(headers: Sequence[Any]) -> str | None:
    for key in ("FILTER", "FILTER1", "FILTER2", "BAND"):
        for h in headers:
            val = h.get(key) if h is not None else None
            if val and not str(val).strip().upper().startswith("CLEAR") and str(val).strip().upper() != "N/A":
                return str(val).strip().upper()
    return None


def read_hst_image(path: str | Path, *, band: str | None = None, zeropoint_vega: float | None = None,
                   gain: float | None = None) -> HSTImage:
    """Read one HST FITS image (module docstring for the conventions)."""
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"image file not found: {path}")
    try:
        with fits.open(path, memmap=False) as hdul:
            primary = hdul[0].header
            sci = None
            for hdu in hdul:
                if hdu.name.upper() == "SCI" and hdu.data is not None:
                    sci = hdu
                    break
            if sci is None:
                sci = next((h for h in hdul if h.data is not None and getattr(h.data, "ndim", 0) == 2), None)
            if sci is None:
                raise GcsbiFileError(f"{path}: no 2D image (SCI) extension")
            data = np.asarray(sci.data, dtype=np.float64)
            sh = sci.header.copy()
    except OSError as exc:
        raise GcsbiFileError(f"{path}: not a readable FITS file: {exc}") from exc
    headers = [sh, primary]
    notes: list[str] = []
    name = band.upper() if band else _band(headers)
    if not name:
        raise GcsbiValueError(f"{path}: no FILTER/FILTER1/FILTER2 keyword; pass band=")
    exptime = _lookup(headers, "EXPTIME", "TEXPTIME")
    if exptime is None or not float(exptime) > 0:
        raise GcsbiValueError(f"{path}: EXPTIME missing or not positive ({exptime})")
    exptime = float(exptime)
    bunit = str(_lookup(headers, "BUNIT") or "").strip().upper().replace(" ", "")
    if not bunit:
        if re.search(r"_(drz|drc)$", path.stem.lower()):
            bunit = "ELECTRONS/S"
            notes.append("no BUNIT: _drz/_drc file taken as electrons/s")
        else:
            raise GcsbiValueError(f"{path}: no BUNIT keyword; cannot tell e-/s from e- or counts")
    if bunit in ("ELECTRONS/S", "ELECTRONS/SEC", "E-/S", "ELECTRON/S"):
        data = data * exptime
    elif bunit in ("ELECTRONS", "E-", "ELECTRON"):
        pass
    elif bunit in ("COUNTS/S", "DN/S", "COUNTS", "DN"):
        g = gain if gain is not None else _lookup(headers, "CCDGAIN", "ATODGAIN", "GAIN")
        if g is None:
            raise GcsbiValueError(f"{path}: BUNIT {bunit} needs a gain (CCDGAIN keyword or gain=)")
        data = data * float(g) * (exptime if bunit.endswith("/S") else 1.0)
    else:
        raise GcsbiValueError(f"{path}: unsupported BUNIT {bunit!r} (electrons/s, electrons, counts[/s])")
    if zeropoint_vega is None:
        zp = _lookup(headers, "ZP_VEGA", "ZPVEGA", "ZP")
        if zp is not None:
            zeropoint_vega = float(zp)
            notes.append("Vega zero point from the ZP keyword")
        else:
            flam, plam = _lookup(headers, "PHOTFLAM"), _lookup(headers, "PHOTPLAM")
            if flam is None or plam is None or not float(flam) > 0 or not float(plam) > 0:
                raise GcsbiValueError(f"{path}: no zero point: need PHOTFLAM and PHOTPLAM, a ZP keyword, "
                                      "or zeropoint_vega=")
            zpt = _lookup(headers, "PHOTZPT")
            st = -2.5 * np.log10(float(flam)) + (float(zpt) if zpt is not None else -21.10)
            ab = st - 5.0 * np.log10(float(plam)) + 18.6921
            if name not in AB_MINUS_VEGA:
                raise GcsbiValueError(f"{path}: no AB-Vega offset known for {name}; pass zeropoint_vega=")
            zeropoint_vega = ab - AB_MINUS_VEGA[name]
            notes.append(f"Vega zero point {zeropoint_vega:.3f} from PHOTFLAM/PHOTPLAM (AB {ab:.3f}) and an "
                         f"approximate AB-Vega offset {AB_MINUS_VEGA[name]:+.2f}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(sh)
    if not wcs.has_celestial:
        raise GcsbiValueError(f"{path}: no celestial WCS in the image header")
    wcs = wcs.celestial
    scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    return HSTImage(data=data, band=name, exptime=exptime, zeropoint_vega=float(zeropoint_vega), wcs=wcs,
                    pixel_scale_arcsec=scale, path=str(path), notes=notes)


def _target_wcs(ra: float, dec: float, shape: tuple[int, int], scale_arcsec: float) -> Any:
    from astropy.wcs import WCS

    h, w = shape
    t = WCS(naxis=2)
    t.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    t.wcs.crval = [float(ra), float(dec)]
    t.wcs.crpix = [(w + 1) / 2.0, (h + 1) / 2.0]  # FITS 1-based: centre of the stamp = pixel ((W-1)/2, (H-1)/2)
    t.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    return t


def cutout_to_simulator(img: HSTImage, ra: float, dec: float, *, shape: tuple[int, int], pixel_scale_arcsec: float,
                        zeropoint_vega: float, exposure_s: float, sky_e: float = 0.0) -> np.ndarray:
    """(H, W) stamp centred on (ra, dec) deg in the simulator's units (module docstring)."""
    from astropy.nddata import Cutout2D, NoOverlapError
    from astropy.coordinates import SkyCoord
    import astropy.units as u

    try:
        from reproject import reproject_exact
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise GcsbiDependencyError("resampling HST images needs the 'reproject' package (pip install reproject)") from exc
    if not np.all(np.isfinite([ra, dec])):
        raise GcsbiValueError(f"RA/Dec must be finite, got {ra}, {dec}")
    h, w = shape
    size_arcsec = max(h, w) * pixel_scale_arcsec * 1.5 + 4 * img.pixel_scale_arcsec
    pos = SkyCoord(ra * u.deg, dec * u.deg)
    try:
        cut = Cutout2D(img.data, pos, size=size_arcsec * u.arcsec, wcs=img.wcs, mode="partial", fill_value=np.nan)
    except NoOverlapError as exc:
        raise GcsbiValueError(f"{Path(img.path).name}: RA, Dec = {ra:.6f}, {dec:.6f} lies outside the image") from exc
    target = _target_wcs(ra, dec, (h, w), pixel_scale_arcsec)
    # reproject treats values as surface brightness: resample counts per source pixel, then scale by area ratio
    out, footprint = reproject_exact((cut.data, cut.wcs), target, shape_out=(h, w))
    out = out * (pixel_scale_arcsec / img.pixel_scale_arcsec) ** 2
    if np.any(footprint < 0.999) or not np.all(np.isfinite(out)):
        bad = int(np.sum((footprint < 0.999) | ~np.isfinite(out)))
        raise GcsbiValueError(f"{Path(img.path).name} ({img.band}): {bad} stamp pixels fall off the image or on "
                              "NaN pixels; choose another position or a smaller stamp")
    scale = 10.0 ** (-0.4 * (img.zeropoint_vega - zeropoint_vega)) * exposure_s / img.exptime
    return out * scale + sky_e


def read_hst_cutouts(paths: Mapping[str, str | Path] | Sequence[str | Path], ra: float, dec: float, *,
                     simulator: Any = "hst-phat", zeropoints_vega: Mapping[str, float] | None = None,
                     add_sky: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """Real cutouts for every band of a simulator spec -> ((C, H, W) e- float32, info).

    ``paths``: band -> file, or files whose FILTER keywords name the bands. ``simulator``: a spec
    name/path, a ``SimulatorSpec`` or a ``ClusterSimulator``. ``info`` has per band the zero point,
    exposure, native pixel scale and notes.
    """
    from ..specs import SimulatorSpec, load_simulator_spec

    spec = getattr(simulator, "sim_spec", simulator)
    spec = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
    zps = dict(zeropoints_vega or {})
    images: dict[str, HSTImage] = {}
    items = list(paths.items()) if isinstance(paths, Mapping) else [(None, p) for p in paths]
    if not items:
        raise GcsbiValueError("no image files given")
    for b, p in items:
        img = read_hst_image(p, band=b, zeropoint_vega=zps.get(b) if b else None)
        if img.band in images:
            raise GcsbiValueError(f"band {img.band} given twice ({images[img.band].path}, {p})")
        images[img.band] = img
    wanted = list(spec.filters)
    missing = [b for b in wanted if b not in images]
    if missing:
        raise GcsbiValueError(f"missing band(s) {missing}: the {spec.name} simulator needs {wanted}, got {sorted(images)}")
    h, w = spec.observation.size
    out = []
    info: dict[str, Any] = {"ra": float(ra), "dec": float(dec), "bands": {}}
    for band_spec in spec.instrument.bands:
        img = images[band_spec.filter]
        sky = float(band_spec.sky_e) if (add_sky and spec.noise.sky) else 0.0
        out.append(cutout_to_simulator(img, ra, dec, shape=(h, w), pixel_scale_arcsec=spec.instrument.pixel_scale_arcsec,
                                       zeropoint_vega=band_spec.zeropoint_vega, exposure_s=band_spec.exposure_s,
                                       sky_e=sky))
        info["bands"][band_spec.filter] = {"path": img.path, "zeropoint_vega": img.zeropoint_vega, "exptime": img.exptime,
                                         "pixel_scale_arcsec": img.pixel_scale_arcsec, "notes": img.notes}
    return np.stack(out).astype(np.float32), info


def observation_from_cutouts(paths: Mapping[str, str | Path] | Sequence[str | Path], ra: float, dec: float, *,
                             simulator: Any = "hst-phat", **kwargs: Any) -> np.ndarray:
    """Image-mode network input (C', H, W) for real cutouts: :func:`read_hst_cutouts` + the spec's transform."""
    from ..observe.observe import get_observation_model
    from ..specs import SimulatorSpec, load_simulator_spec

    spec = getattr(simulator, "sim_spec", simulator)
    spec = spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)
    image, _ = read_hst_cutouts(paths, ra, dec, simulator=spec, **kwargs)
    model = get_observation_model(spec)
    return model.transform(image, sky=model.sky_e)
