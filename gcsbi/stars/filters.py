"""Supported photometric filters (sedpy curves, Vega zero points) and extinction coefficients."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiValueError, UnknownFilterError
from ..spec.simulator_spec import KNOWN_FILTERS

__all__ = [
    "FILTERS",
    "SEDPY_NAMES",
    "FilterInfo",
    "check_filters",
    "filter_info",
    "blackbody_flambda",
    "vega_magnitudes",
    "extinction_coefficients",
    "solar_absolute_magnitudes",
]

#: Bands the package predicts, in the canonical order (defined once, with the specs that name them).
FILTERS: tuple[str, ...] = KNOWN_FILTERS

#: gcsbi name -> sedpy filter name (the six PHAT bands: HST WFC3/UVIS F275W/F336W, ACS/WFC F475W/F814W,
#: WFC3/IR F110W/F160W; JWST NIRCam; Johnson-Cousins/Bessell).
SEDPY_NAMES: dict[str, str] = {
    "F275W": "wfc3_uvis_f275w",
    "F336W": "wfc3_uvis_f336w",
    "F475W": "acs_wfc_f475w",
    "F814W": "acs_wfc_f814w",
    "F110W": "wfc3_ir_f110w",
    "F160W": "wfc3_ir_f160w",
    "F070W": "jwst_f070w",
    "F115W": "jwst_f115w",
    "F356W": "jwst_f356w",
    "U": "bessell_U",
    "B": "bessell_B",
    "V": "bessell_V",
    "R": "bessell_R",
    "I": "bessell_I",
}


@dataclass(frozen=True)
class FilterInfo:
    """Name, sedpy name, pivot wavelength (Angstrom) and AB-to-Vega offset (m_Vega = m_AB + ab_to_vega)."""

    name: str
    sedpy_name: str
    pivot_angstrom: float
    ab_to_vega: float


def check_filters(filters: Iterable[str] | str) -> tuple[str, ...]:
    """Return ``filters`` as a tuple, raising :class:`UnknownFilterError` for unsupported names."""
    names = (filters,) if isinstance(filters, str) else tuple(filters)
    if not names:
        raise GcsbiValueError("at least one filter is required")
    bad = [f for f in names if f not in SEDPY_NAMES]
    if bad:
        raise UnknownFilterError(f"unknown filter(s) {bad}; supported: {', '.join(FILTERS)}")
    if len(set(names)) != len(names):
        raise GcsbiValueError(f"duplicate filter names in {names}")
    return names


@lru_cache(maxsize=None)
def _sedpy_filters(sedpy_names: tuple[str, ...]) -> tuple:
    try:
        from sedpy import observate
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise GcsbiDependencyError("astro-sedpy is required for filter curves (pip install astro-sedpy)") from exc
    return tuple(observate.load_filters(list(sedpy_names)))


def filter_info(name: str) -> FilterInfo:
    """Properties of one supported filter (or of any sedpy filter name, used for the reference bands)."""
    sedpy_name = SEDPY_NAMES.get(name, name)
    (flt,) = _sedpy_filters((sedpy_name,))
    return FilterInfo(name, sedpy_name, float(flt.wave_pivot), float(flt.ab_to_vega))


def blackbody_flambda(wave_angstrom: np.ndarray, teff: np.ndarray) -> np.ndarray:
    """Blackbody f_lambda normalised to unit bolometric flux, shape (len(teff), len(wave))."""
    h, c, k = 6.62607015e-27, 2.99792458e10, 1.380649e-16
    lam = np.asarray(wave_angstrom, dtype=float)[None, :] * 1e-8
    t = np.atleast_1d(np.asarray(teff, dtype=float))[:, None]
    x = np.minimum(h * c / (lam * k * t), 700.0)
    b = 2 * h * c**2 / lam**5 / np.expm1(x)  # erg/s/cm^2/cm/sr
    sigma = 5.670374419e-5
    return np.pi * b * 1e-8 / (sigma * t**4)  # per Angstrom, integral = 1


def vega_magnitudes(wave_angstrom: np.ndarray, flambda: np.ndarray, sedpy_names: tuple[str, ...]) -> np.ndarray:
    """Vega magnitudes of spectra ``flambda`` (n_spec, n_wave; erg/s/cm^2/A) through sedpy filters, (n_spec, n_filt)."""
    flam = np.atleast_2d(flambda)
    out = np.empty((flam.shape[0], len(sedpy_names)))
    for j, flt in enumerate(_sedpy_filters(tuple(sedpy_names))):
        with np.errstate(divide="ignore"):
            out[:, j] = np.asarray(flt.ab_mag(wave_angstrom, flam)).reshape(-1) + flt.ab_to_vega
    return out


@lru_cache(maxsize=None)
def _extinction_coefficients(filters: tuple[str, ...], r_v: float, teff: float) -> tuple[float, ...]:
    try:
        import extinction
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise GcsbiDependencyError("the 'extinction' package is required (pip install extinction)") from exc
    wave = np.geomspace(1200.0, 60000.0, 6000)
    spec = blackbody_flambda(wave, np.array([teff]))
    ebv_ref = 0.1  # small reference reddening; A_f/E(B-V) is linear to <1% here
    a_lambda = extinction.fitzpatrick99(wave, r_v * ebv_ref, r_v)
    reddened = spec * 10 ** (-0.4 * a_lambda)[None, :]
    names = tuple(SEDPY_NAMES[f] for f in filters)
    a_f = vega_magnitudes(wave, reddened, names) - vega_magnitudes(wave, spec, names)
    return tuple(float(x) for x in a_f[0] / ebv_ref)


def extinction_coefficients(
    filters: Iterable[str] = FILTERS, *, r_v: float = 3.1, teff: float = 5000.0
) -> dict[str, float]:
    """A_f / E(B-V) per filter for the Fitzpatrick (1999) law, integrated over the filter curve.

    The source spectrum is a ``teff`` blackbody (5000 K ~ the light of an old population).
    Apply as ``mag + R_f * ebv``.
    """
    names = check_filters(filters)
    if not (1.5 <= r_v <= 6.0):
        raise GcsbiValueError(f"r_v={r_v} outside [1.5, 6]")
    if not (2000.0 <= teff <= 50000.0):
        raise GcsbiValueError(f"teff={teff} outside [2000, 50000] K")
    return dict(zip(names, _extinction_coefficients(names, float(r_v), float(teff))))


@lru_cache(maxsize=None)
def _solar(filters: tuple[str, ...]) -> tuple[float, ...]:
    flts = _sedpy_filters(tuple(SEDPY_NAMES[f] for f in filters))
    return tuple(float(f.solar_ab_mag + f.ab_to_vega) for f in flts)


def solar_absolute_magnitudes(filters: Iterable[str] = FILTERS) -> dict[str, float]:
    """Absolute Vega magnitudes of the Sun from sedpy's solar spectrum (M_V,sun = 4.80; Willmer 2018: 4.81)."""
    names = check_filters(filters)
    return dict(zip(names, _solar(names)))
