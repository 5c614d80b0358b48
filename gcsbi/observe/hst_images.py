"""Image mode for real data: read HST images and put them on the simulator's grid.

:func:`read_hst_images` reads every band of a FITS file: each science image HDU (the ``SCI``
extensions, else every 2D image HDU except weight/context/error/quality maps), its band
(``FILTER`` / ``FILTER1`` / ``FILTER2``, CLEAR* skipped; in the image HDU's own header, or the
primary header when the file holds one image), units, exposure time, zero point and WCS, with
the HST conventions; :func:`read_hst_image` reads a file holding one band:

* units: ``BUNIT`` ``ELECTRONS/S`` (``_drz``/``_drc`` pipeline products) -> x ``EXPTIME``;
  ``ELECTRONS`` as is; ``COUNTS/S`` / ``COUNTS`` (DN) -> x ``CCDGAIN`` (or ``gain=``). Without
  ``BUNIT`` a ``_drz``/``_drc`` file name means e-/s, anything else raises.
* zero point (Vega): the ``zeropoint_vega`` argument, else a ``ZP_VEGA``/``ZPVEGA``/``ZP`` keyword
  (taken as Vega), else from ``PHOTFLAM``/``PHOTPLAM`` (and ``PHOTZPT``, the ST zero point -21.10):
  ``ZP_AB = -2.5 log10(PHOTFLAM) - 5 log10(PHOTPLAM) - 2.408`` and ``ZP_Vega = ZP_AB - (AB - Vega)``
  with the band's AB-Vega offset (:data:`AB_MINUS_VEGA`, from the ACS/WFC3 zero-point tables;
  approximate, a warning says so).
* keywords are looked up in the image HDU's header first, then the primary header (PHOTFLAM
  sits in either, EXPTIME in the primary).

Broken input ends in one-line errors: a truncated, header-only or non-FITS file raises
:class:`~gcsbi.errors.GcsbiFileError` naming the file; a non-numeric keyword value, a missing or
malformed celestial WCS, or a position off the image raises :class:`~gcsbi.errors.GcsbiValueError`.
Image sizes are checked from the headers (``NAXISn``/``ZNAXISn``, ``BITPIX``) before any pixel is
read: a file declaring more than :data:`MAX_IMAGE_BYTES`, or compressed data (tile-compressed
HDUs, gzip/bzip2 files) declaring more than :data:`MAX_EXPANSION` times their stored size, raises
GcsbiFileError (a decompression bomb would otherwise take gigabytes of memory).

:func:`cutout_to_simulator` cuts a stamp of the simulator's size around (RA, Dec) on a
north-up, east-left TAN grid at the simulator's pixel scale (``reproject.reproject_exact``,
flux-conserving: surface brightness is resampled and multiplied by the pixel-area ratio), and
rescales the counts to the simulator's zero point and exposure, adding back the simulator's sky
(drizzled images are sky-subtracted, the simulator's images are not)::

    counts_sim = rate_real * 10**(-0.4 (ZP_real - ZP_sim)) * t_sim  (+ sky_sim)

:func:`read_hst_cutouts` does it for every band of a simulator spec and returns (C, H, W) e-,
ready for ``ObservationModel.transform`` / image-mode ``gcsbi.infer``. Images already on the
simulator grid (shape ``spec.observation.size``, north up, the spec's pixel scale) need no
(RA, Dec) and no resampling: calibrated ones (``BUNIT``/``PHOTFLAM``/``ZP`` keywords) are only
rescaled as above, and images with none of these keywords are taken as the simulator's own
counts (e- over the spec's exposure, sky included), as written out from a mock.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiError, GcsbiFileError, GcsbiValueError, UnknownFilterError

__all__ = ["HSTImage", "FitsPlane", "AB_MINUS_VEGA", "MAX_IMAGE_BYTES", "MAX_EXPANSION", "EXPANSION_FLOOR",
           "check_expansion", "format_bytes", "read_fits_planes", "read_hst_image", "read_hst_images",
           "cutout_to_simulator", "read_hst_cutouts", "observation_from_cutouts"]

#: m_AB - m_Vega per band (ACS/WFC zeropoint calculator ~2012, WFC3/UVIS ISR 2017-14), approximate.
AB_MINUS_VEGA: dict[str, float] = {"F275W": 1.50, "F336W": 1.18, "F438W": -0.15, "F475W": -0.10, "F555W": -0.03,
                                   "F606W": 0.09, "F625W": 0.15, "F775W": 0.39, "F814W": 0.42, "F110W": 0.75,
                                   "F160W": 1.25}

#: Image extensions that are never a band's science image (drizzle weight/context, error, quality).
AUXILIARY_EXTNAMES = frozenset({"WHT", "WGHT", "WEIGHT", "CTX", "CON", "ERR", "DQ", "VAR", "IVAR", "MASK", "EXP",
                                "SAMP", "TIME", "HDRTAB"})
#: Keywords that mark an image as calibrated (units and zero point); without any, counts are the simulator's.
CALIBRATION_KEYS = ("BUNIT", "PHOTFLAM", "ZP_VEGA", "ZPVEGA", "ZP")
#: Most image data (bytes, in the file's own pixel type) the science images of one FITS file may
#: declare: a 16k x 16k float32 mosaic; a whole PHAT brick (~14400 x 7800 px) is ~450 MB. Larger
#: images must be cut down around the target first. Read as float64, memory is up to twice this.
MAX_IMAGE_BYTES = 1 << 30
#: Compressed data may declare at most this many times their stored size (past EXPANSION_FLOOR).
#: Noisy images compress 2-10x (Rice/gzip), images with large blank areas a few 10x; a stream of
#: zeros deflates ~1000x, which is how a 4 MB file declares gigabytes.
MAX_EXPANSION = 100
#: Declared sizes up to this are never refused for their expansion ratio (cheap to decompress).
EXPANSION_FLOOR = 16 << 20
#: First bytes of a whole-file compressed FITS file (gzip, bzip2, zip), which astropy opens transparently.
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"PK\x03\x04")


@dataclass
class HSTImage:
    """One band of a real HST image, in e- over the exposure (``data``), with its calibration.

    ``wcs`` is None (and ``pixel_scale_arcsec`` NaN) only for an image read without a celestial
    WCS on purpose (already on the simulator grid).
    """

    data: np.ndarray
    band: str
    exptime: float
    zeropoint_vega: float
    wcs: Any
    pixel_scale_arcsec: float
    path: str = ""
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def rate(self) -> np.ndarray:
        """e-/s."""
        return self.data / self.exptime


@dataclass
class FitsPlane:
    """One science image HDU of a FITS file, as read (``data`` float64, None when read headers-only)."""

    data: np.ndarray | None
    shape: tuple[int, ...]
    header: Any
    primary: Any
    path: Path
    label: str  # the file, plus "[EXTNAME,EXTVER]" or "[index]" when the file holds several images
    n_in_file: int
    nbytes: int = 0  # image data size its header declares (|BITPIX| / 8 x the pixel count)

    @property
    def headers(self) -> list[Any]:
        """Where keywords are looked up: the image HDU's header, then the primary header."""
        return [self.header] if self.header is self.primary else [self.header, self.primary]

    @property
    def band_headers(self) -> list[Any]:
        """Where FILTER is looked up: the primary header names the band only of a one-image file."""
        return self.headers if self.n_in_file == 1 else [self.header]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``1.6 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return ""  # not reached


def check_expansion(label: str, declared: int, stored: int, what: str, *, remedy: str) -> None:
    """Refuse compressed data declaring more than MAX_EXPANSION x ``stored`` bytes (past EXPANSION_FLOOR)."""
    if declared > EXPANSION_FLOOR and declared > MAX_EXPANSION * max(int(stored), 1):
        raise GcsbiFileError(f"{label}: {format_bytes(int(stored))} of compressed data declare {what} "
                             f"({format_bytes(declared)}, {declared / max(int(stored), 1):.0f}x), more than the "
                             f"{MAX_EXPANSION}x accepted past {format_bytes(EXPANSION_FLOOR)}; {remedy}")


def _declared_bytes(hdu: Any) -> int:
    """Image data size from the header alone (for a tile-compressed HDU: ZBITPIX and ZNAXISn)."""
    return abs(int(hdu.header.get("BITPIX", -64))) // 8 * math.prod(int(n) for n in hdu.shape)


def _check_sizes(path: Path, hdul: Any, idx: list[int], labels: list[str]) -> None:
    """Refuse declared image sizes past MAX_IMAGE_BYTES or past MAX_EXPANSION x the stored data."""
    from astropy.io.fits import CompImageHDU

    sizes = [_declared_bytes(hdul[i]) for i in idx]
    shapes = ", ".join(f"{tuple(hdul[i].shape)} BITPIX {hdul[i].header.get('BITPIX')}" for i in idx)
    if sum(sizes) > MAX_IMAGE_BYTES:
        raise GcsbiFileError(f"{path}: its science image(s) declare {shapes} ({format_bytes(sum(sizes))}), more "
                             f"than the {format_bytes(MAX_IMAGE_BYTES)} of image data read from one file; cut out "
                             "a region around the target first (e.g. astropy Cutout2D)")
    remedy = "if the data are genuine, decompress the file first (funpack / gunzip)"
    for i, n, label in zip(idx, sizes, labels):
        if isinstance(hdul[i], CompImageHDU):
            check_expansion(label, n, int(hdul[i].fileinfo()["datSpan"]), f"{tuple(hdul[i].shape)} "
                            f"BITPIX {hdul[i].header.get('BITPIX')}", remedy=remedy)
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(_COMPRESSED_MAGIC):
        check_expansion(str(path), sum(sizes), path.stat().st_size, shapes, remedy=remedy)


def _lookup(headers: Sequence[Any], *keys: str) -> Any:
    for key in keys:
        for h in headers:
            if h is not None and key in h and h[key] not in (None, ""):
                return h[key]
    return None


def _number(headers: Sequence[Any], label: str, *keys: str) -> float | None:
    """The first of ``keys`` found, as a finite float; a value that is not one raises GcsbiValueError."""
    for key in keys:
        for h in headers:
            if h is not None and key in h and h[key] not in (None, ""):
                val = h[key]
                try:
                    out = float(val)
                except (TypeError, ValueError):
                    raise GcsbiValueError(f"{label}: header keyword {key} = {val!r} is not a number") from None
                if not np.isfinite(out):
                    raise GcsbiValueError(f"{label}: header keyword {key} = {val!r} is not finite")
                return out
    return None


def band_name(headers: Sequence[Any]) -> str | None:
    """The band a FITS image holds, from FILTER/FILTER1/FILTER2/BAND (CLEAR and N/A skipped), upper-cased."""
    for key in ("FILTER", "FILTER1", "FILTER2", "BAND"):
        for h in headers:
            val = h.get(key) if h is not None else None
            if val and not str(val).strip().upper().startswith("CLEAR") and str(val).strip().upper() != "N/A":
                return str(val).strip().upper()
    return None


def _science_indices(hdul: Any) -> list[int]:
    """HDUs holding a band: the SCI extensions, else every image HDU with data that is not auxiliary."""
    from astropy.io.fits import CompImageHDU, ImageHDU, PrimaryHDU

    idx = []
    for i, hdu in enumerate(hdul):
        if isinstance(hdu, (PrimaryHDU, ImageHDU, CompImageHDU)):
            shape = tuple(hdu.shape)
            if len(shape) >= 2 and all(n > 0 for n in shape):
                idx.append(i)
    sci = [i for i in idx if hdul[i].name.upper() == "SCI"]
    return sci or [i for i in idx if hdul[i].name.upper() not in AUXILIARY_EXTNAMES]


def _ext_label(hdu: Any, i: int) -> str:
    name = hdu.name.strip()
    if not name or name == "PRIMARY":
        return str(i)
    ver = hdu.header.get("EXTVER")
    return f"{name},{ver}" if ver not in (None, "") else name


def read_fits_planes(path: str | Path, *, load_data: bool = True) -> list[FitsPlane]:
    """Every science image HDU of a FITS file (see :func:`_science_indices`), in file order.

    ``load_data=False`` reads the headers only (``data`` None). A missing, non-FITS, truncated or
    header-only file raises GcsbiFileError naming the file and what is wrong, and so does, before
    any data are read, one declaring too much image data (module docstring).
    """
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"{path}: not a file" if path.exists() else f"image file not found: {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False) as hdul:
                primary = hdul[0].header.copy()
                idx = _science_indices(hdul)
                if not idx:
                    raise GcsbiFileError(f"{path}: no 2D image (SCI) extension with data")
                labels = [str(path) if len(idx) == 1 else f"{path}[{_ext_label(hdul[i], i)}]" for i in idx]
                if load_data:
                    _check_sizes(path, hdul, idx, labels)
                planes = []
                for i, label in zip(idx, labels):
                    hdu = hdul[i]
                    data = None
                    if load_data:
                        try:
                            data = np.asarray(hdu.data, dtype=np.float64)
                        except (ValueError, TypeError, OSError, IndexError) as exc:
                            raise GcsbiFileError(_truncated(label, caught, exc)) from exc
                    header = primary if i == 0 else hdu.header.copy()
                    planes.append(FitsPlane(data, tuple(hdu.shape), header, primary, path, label, len(idx),
                                            _declared_bytes(hdu)))
        except GcsbiError:
            raise
        except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError) as exc:
            raise GcsbiFileError(f"{path}: not a readable FITS file ({_one_line(exc)})") from exc
    for w in caught:  # pass on what astropy said about a file that did read (a short one fails on reading data)
        if "truncated" not in str(w.message):
            warnings.warn(w.message, w.category, stacklevel=2)
    return planes


def _truncated(label: str, caught: list[Any], exc: BaseException) -> str:
    sizes = next((str(w.message) for w in caught if "truncated" in str(w.message)), "")
    m = re.search(r"actual file length \((\d+)\) is smaller than the expected size \((\d+)\)", sizes)
    if m:
        return (f"{label}: truncated FITS file ({m.group(1)} of the {m.group(2)} bytes its headers declare); "
                "its image data are missing")
    return f"{label}: truncated or corrupt FITS image data ({_one_line(exc)})"


def _is_calibrated(plane: FitsPlane) -> bool:
    return (_lookup(plane.headers, *CALIBRATION_KEYS) is not None
            or re.search(r"_(drz|drc)$", plane.path.stem.lower()) is not None)


def _calibrate(plane: FitsPlane, name: str | None, *, zeropoint_vega: float | None = None, gain: float | None = None,
               require_wcs: bool = True) -> HSTImage:
    """Units, zero point and WCS of one image (module docstring for the conventions)."""
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    label, headers = plane.label, plane.headers
    if plane.data is None or plane.data.ndim != 2:
        raise GcsbiValueError(f"{label}: expected a 2D image, got shape {plane.shape}")
    data = plane.data
    notes: list[str] = []
    if not name:
        raise GcsbiValueError(f"{label}: no FILTER/FILTER1/FILTER2 keyword; pass band=")
    exptime = _number(headers, label, "EXPTIME", "TEXPTIME")
    if exptime is None or not exptime > 0:
        raise GcsbiValueError(f"{label}: EXPTIME missing or not positive ({exptime})")
    bunit = str(_lookup(headers, "BUNIT") or "").strip().upper().replace(" ", "")
    if not bunit:
        if re.search(r"_(drz|drc)$", plane.path.stem.lower()):
            bunit = "ELECTRONS/S"
            notes.append("no BUNIT: _drz/_drc file taken as electrons/s")
        else:
            raise GcsbiValueError(f"{label}: no BUNIT keyword; cannot tell e-/s from e- or counts")
    if bunit in ("ELECTRONS/S", "ELECTRONS/SEC", "E-/S", "ELECTRON/S"):
        data = data * exptime
    elif bunit in ("ELECTRONS", "E-", "ELECTRON"):
        pass
    elif bunit in ("COUNTS/S", "DN/S", "COUNTS", "DN"):
        g = gain if gain is not None else _number(headers, label, "CCDGAIN", "ATODGAIN", "GAIN")
        if g is None or not g > 0:
            raise GcsbiValueError(f"{label}: BUNIT {bunit} needs a positive gain (CCDGAIN keyword or gain=), got {g}")
        data = data * float(g) * (exptime if bunit.endswith("/S") else 1.0)
    else:
        raise GcsbiValueError(f"{label}: unsupported BUNIT {bunit!r} (electrons/s, electrons, counts[/s])")
    if zeropoint_vega is None:
        zp = _number(headers, label, "ZP_VEGA", "ZPVEGA", "ZP")
        if zp is not None:
            zeropoint_vega = zp
            notes.append("Vega zero point from the ZP keyword")
        else:
            flam, plam = _number(headers, label, "PHOTFLAM"), _number(headers, label, "PHOTPLAM")
            if flam is None or plam is None or not flam > 0 or not plam > 0:
                raise GcsbiValueError(f"{label}: no zero point: need PHOTFLAM and PHOTPLAM, a ZP keyword, "
                                      "or zeropoint_vega=")
            zpt = _number(headers, label, "PHOTZPT")
            st = -2.5 * np.log10(flam) + (zpt if zpt is not None else -21.10)
            ab = st - 5.0 * np.log10(plam) + 18.6921
            if name not in AB_MINUS_VEGA:
                raise GcsbiValueError(f"{label}: no AB-Vega offset known for {name}; pass zeropoint_vega=")
            zeropoint_vega = ab - AB_MINUS_VEGA[name]
            notes.append(f"Vega zero point {zeropoint_vega:.3f} from PHOTFLAM/PHOTPLAM (AB {ab:.3f}) and an "
                         f"approximate AB-Vega offset {AB_MINUS_VEGA[name]:+.2f}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning and astropy's notes on odd keyword values
            wcs = WCS(plane.header)
    except (ValueError, KeyError, TypeError, MemoryError) as exc:  # astropy's WcsError is a ValueError
        raise GcsbiValueError(f"{label}: malformed WCS in the image header ({_one_line(exc)})") from exc
    scale = float("nan")
    if wcs.has_celestial:
        wcs = wcs.celestial
        scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
        if not (np.isfinite(scale) and scale > 0):
            raise GcsbiValueError(f"{label}: the WCS pixel scale is {scale} arcsec (CD/CDELT keywords)")
    elif require_wcs:
        raise GcsbiValueError(f"{label}: no celestial WCS in the image header (CTYPE1/CTYPE2 RA---TAN/DEC--TAN, "
                              "CRVAL, CRPIX, CD): it cannot be resampled")
    else:
        wcs = None
    return HSTImage(data=data, band=name, exptime=exptime, zeropoint_vega=float(zeropoint_vega), wcs=wcs,
                    pixel_scale_arcsec=scale, path=str(plane.path), notes=notes, label=label)


def read_hst_image(path: str | Path, *, band: str | None = None, zeropoint_vega: float | None = None,
                   gain: float | None = None) -> HSTImage:
    """Read an HST FITS file holding one band (module docstring for the conventions).

    A file with several science images raises GcsbiValueError; :func:`read_hst_images` reads them all.
    """
    planes = read_fits_planes(path)
    if len(planes) > 1:
        found = ", ".join(f"{p.label}: {band_name(p.band_headers) or 'no FILTER'}" for p in planes)
        raise GcsbiValueError(f"{path}: holds {len(planes)} images ({found}); read every band with read_hst_images")
    plane = planes[0]
    return _calibrate(plane, band.upper() if band else band_name(plane.band_headers), zeropoint_vega=zeropoint_vega,
                      gain=gain)


def read_hst_images(path: str | Path, *, zeropoints_vega: Mapping[str, float] | None = None,
                    gain: float | None = None) -> list[HSTImage]:
    """Every band of an HST FITS file (one science image per band, each naming its FILTER), in file order."""
    zps = {str(k).upper(): float(v) for k, v in (zeropoints_vega or {}).items()}
    out = []
    for plane in read_fits_planes(path):
        name = band_name(plane.band_headers)
        out.append(_calibrate(plane, name, zeropoint_vega=zps.get(name or ""), gain=gain))
    return out


def _target_wcs(ra: float, dec: float, shape: tuple[int, int], scale_arcsec: float) -> Any:
    from astropy.wcs import WCS

    h, w = shape
    t = WCS(naxis=2)
    t.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    t.wcs.crval = [float(ra), float(dec)]
    t.wcs.crpix = [(w + 1) / 2.0, (h + 1) / 2.0]  # FITS 1-based: centre of the stamp = pixel ((W-1)/2, (H-1)/2)
    t.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    return t


def _check_position(ra: float, dec: float) -> tuple[float, float]:
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise GcsbiValueError(f"RA/Dec must be numbers in degrees, got {ra!r}, {dec!r}") from None
    if not np.all(np.isfinite([ra, dec])):
        raise GcsbiValueError(f"RA/Dec must be finite, got {ra}, {dec}")
    if not -90.0 <= dec <= 90.0:
        raise GcsbiValueError(f"Dec must lie within [-90, 90] deg, got {dec}")
    return ra, dec


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
    ra, dec = _check_position(ra, dec)
    name = Path(img.label or img.path).name
    if img.wcs is None:
        raise GcsbiValueError(f"{name}: no celestial WCS in the image header: it cannot be resampled")
    h, w = shape
    size_arcsec = max(h, w) * pixel_scale_arcsec * 1.5 + 4 * img.pixel_scale_arcsec
    pos = SkyCoord(ra * u.deg, dec * u.deg)
    try:
        cut = Cutout2D(img.data, pos, size=size_arcsec * u.arcsec, wcs=img.wcs, mode="partial", fill_value=np.nan)
    except (NoOverlapError, ValueError) as exc:  # ValueError: the position projects to no pixel at all
        raise GcsbiValueError(f"{name}: RA, Dec = {ra:.6f}, {dec:.6f} lies outside the image") from exc
    target = _target_wcs(ra, dec, (h, w), pixel_scale_arcsec)
    # reproject treats values as surface brightness: resample counts per source pixel, then scale by area ratio
    out, footprint = reproject_exact((cut.data, cut.wcs), target, shape_out=(h, w))
    out = out * (pixel_scale_arcsec / img.pixel_scale_arcsec) ** 2
    if np.any(footprint < 0.999) or not np.all(np.isfinite(out)):
        bad = int(np.sum((footprint < 0.999) | ~np.isfinite(out)))
        raise GcsbiValueError(f"{name} ({img.band}): {bad} stamp pixels fall off the image or on "
                              "NaN pixels; choose another position or a smaller stamp")
    scale = 10.0 ** (-0.4 * (img.zeropoint_vega - zeropoint_vega)) * exposure_s / img.exptime
    return out * scale + sky_e


def _load_spec(simulator: Any) -> Any:
    from ..spec.simulator_spec import SimulatorSpec, load_simulator_spec

    spec = getattr(simulator, "sim_spec", simulator)
    return spec if isinstance(spec, SimulatorSpec) else load_simulator_spec(spec)


def _name_bands(planes: list[tuple[str | None, FitsPlane]], bands: Sequence[str] | None,
                spec: Any) -> dict[str, FitsPlane]:
    """band -> image: from the mapping keys, the FILTER keywords, or ``bands`` in image order; checked."""
    wanted = list(spec.filters)
    order = [str(b).strip().upper() for b in bands] if bands is not None else None
    if order is not None and len(order) != len(planes):
        raise GcsbiValueError(f"{len(order)} band(s) named ({', '.join(order)}) for {len(planes)} image(s) "
                              f"({', '.join(p.label for _, p in planes)})")
    named: dict[str, FitsPlane] = {}
    for i, (given, plane) in enumerate(planes):
        found = given or band_name(plane.band_headers)
        if order is not None:
            if found is not None and found != order[i]:
                raise GcsbiValueError(f"{plane.label}: the band list says {order[i]} but its FILTER keyword "
                                      f"says {found}")
            name = order[i]
        elif found is None:
            raise GcsbiValueError(f"{plane.label}: no FILTER/FILTER1/FILTER2 keyword; name the band of each image "
                                  f"in order (bands=[...]; gcsbi infer --bands {','.join(wanted)})")
        else:
            name = found
        if name not in wanted:
            raise UnknownFilterError(f"{plane.label}: filter {name} is not a band of the {spec.name} simulator "
                                     f"({', '.join(wanted)})")
        if name in named:
            raise GcsbiValueError(f"band {name} given twice ({named[name].label}, {plane.label})")
        named[name] = plane
    missing = [b for b in wanted if b not in named]
    if missing:
        raise GcsbiValueError(f"missing band(s) {missing}: the {spec.name} simulator needs {wanted}, "
                              f"got {sorted(named)}")
    return named


def read_hst_cutouts(paths: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
                     ra: float | None = None, dec: float | None = None, *, simulator: Any = "hst-phat",
                     zeropoints_vega: Mapping[str, float] | None = None, add_sky: bool = True,
                     bands: Sequence[str] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Real images for every band of a simulator spec -> ((C, H, W) e- float32, info), in the spec's band order.

    ``paths``: band -> file; or files (one path, or a list) whose science images each name their
    band by FILTER keyword, one band per file or several per multi-extension file; or, for images
    without FILTER, ``bands`` naming the band of each image in file and extension order.
    ``ra``, ``dec`` (deg): cut out and resample around them (needs calibrated images with a WCS);
    without them every image must already be on the simulator grid (module docstring).
    ``simulator``: a spec name/path, a ``SimulatorSpec`` or a ``ClusterSimulator``. ``info`` has
    per band the image, zero point, exposure, native pixel scale and notes.
    """
    spec = _load_spec(simulator)
    if (ra is None) != (dec is None):
        raise GcsbiValueError("give both RA and Dec (--ra and --dec), or neither for images already on the "
                              "simulator grid")
    if ra is not None:
        ra, dec = _check_position(ra, dec)
    zps = {str(k).upper(): float(v) for k, v in (zeropoints_vega or {}).items()}
    if isinstance(paths, (str, Path)):
        items: list[tuple[str | None, Any]] = [(None, paths)]
    elif isinstance(paths, Mapping):
        items = [(str(b).strip().upper(), p) for b, p in paths.items()]
    else:
        items = [(None, p) for p in paths]
    if not items:
        raise GcsbiValueError("no image files given")
    planes: list[tuple[str | None, FitsPlane]] = []
    for b, p in items:
        found = read_fits_planes(p)
        if b is not None and len(found) > 1:
            raise GcsbiValueError(f"{p}: holds {len(found)} images but is given as band {b}; pass the files as a "
                                  "list so that each image's FILTER keyword names its band")
        planes += [(b, q) for q in found]
    named = _name_bands(planes, bands, spec)
    h, w = spec.observation.size
    out = []
    info: dict[str, Any] = {"ra": ra, "dec": dec, "resampled": ra is not None, "bands": {}}
    for band_spec in spec.instrument.bands:
        b = band_spec.filter
        plane = named[b]
        if plane.data is None or plane.data.ndim != 2:
            raise GcsbiValueError(f"{plane.label}: a {plane.shape} array; each band must be one 2D image")
        if ra is None:
            if plane.data.shape != (h, w):
                hh, ww = plane.data.shape
                raise GcsbiValueError(f"{plane.label}: image is {hh}x{ww} pixels, not on the {spec.name} grid "
                                      f"({h}x{w}); give the target's RA/Dec (ra=, dec=; --ra, --dec) to cut out "
                                      "and resample it")
            n_bad = int(np.sum(~np.isfinite(plane.data)))
            if n_bad:
                raise GcsbiValueError(f"{plane.label}: {n_bad} NaN/inf pixels; mask or inpaint them first")
        sky = float(band_spec.sky_e) if (add_sky and spec.noise.sky) else 0.0
        if not (_is_calibrated(plane) or b in zps):
            if ra is not None:
                raise GcsbiValueError(f"{plane.label}: no BUNIT/PHOTFLAM/ZP keywords, so it cannot be calibrated "
                                      "for resampling (images already on the simulator grid need no RA/Dec)")
            out.append(plane.data)
            info["bands"][b] = {"path": str(plane.path), "image": plane.label, "units": "simulator e-",
                                "zeropoint_vega": band_spec.zeropoint_vega, "exptime": band_spec.exposure_s,
                                "notes": ["no BUNIT/PHOTFLAM/ZP keywords: taken as the simulator's counts "
                                          "(e- over the spec's exposure, sky included)"]}
            continue
        img = _calibrate(plane, b, zeropoint_vega=zps.get(b), require_wcs=ra is not None)
        if ra is not None:
            stamp = cutout_to_simulator(img, ra, dec, shape=(h, w),
                                        pixel_scale_arcsec=spec.instrument.pixel_scale_arcsec,
                                        zeropoint_vega=band_spec.zeropoint_vega, exposure_s=band_spec.exposure_s,
                                        sky_e=sky)
        else:
            grid = spec.instrument.pixel_scale_arcsec
            if img.wcs is not None and abs(img.pixel_scale_arcsec / grid - 1.0) > 0.01:
                raise GcsbiValueError(f"{plane.label}: pixel scale {img.pixel_scale_arcsec:.4f} arcsec is not the "
                                      f"{spec.name} grid's {grid} arcsec; give the target's RA/Dec to resample it")
            stamp = img.data * (10.0 ** (-0.4 * (img.zeropoint_vega - band_spec.zeropoint_vega))
                                * band_spec.exposure_s / img.exptime) + sky
        out.append(stamp)
        info["bands"][b] = {"path": img.path, "image": plane.label, "units": "calibrated",
                            "zeropoint_vega": img.zeropoint_vega, "exptime": img.exptime,
                            "pixel_scale_arcsec": img.pixel_scale_arcsec, "notes": img.notes}
    return np.stack(out).astype(np.float32), info


def observation_from_cutouts(paths: Mapping[str, str | Path] | Sequence[str | Path] | str | Path,
                             ra: float | None = None, dec: float | None = None, *, simulator: Any = "hst-phat",
                             **kwargs: Any) -> np.ndarray:
    """Image-mode network input (C', H, W) for real images: :func:`read_hst_cutouts` + the spec's transform."""
    from . import transforms

    spec = _load_spec(simulator)
    image, _ = read_hst_cutouts(paths, ra, dec, simulator=spec, **kwargs)
    return transforms.transform(image, spec, sky=transforms.sky_levels(spec))
