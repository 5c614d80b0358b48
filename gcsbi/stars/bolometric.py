"""Bolometric corrections: MIST/C3K tables for real ground bands, blackbody+residual transfer for HST/JWST.

The MIST/C3K tables (MIST v1.2 bolometric corrections, C3K atmospheres, Av = 0) ship with gcsbi:
``gcsbi/stars/data/mist_c3k_bc_av0.npz``, the bands gcsbi reads cut unchanged out of astroLACHESIS'
``bc_tables.h5`` by ``scripts/make_bc_tables.py`` and checked against :data:`BC_TABLE_SHA256` on
load (provenance, citation and licence in ``gcsbi/stars/data/README.md``).

HST/JWST bands have no MIST/C3K table there. Their BC is a blackbody's plus the
*residual* (real - blackbody) that the real MIST bands measure, interpolated in log wavelength.
Between GALEX NUV (2300 A) and SDSS u (3560 A) no band measures the spectrum, and cool stars'
line blanketing makes the residual fall steeply toward the NUV. Interpolating from band pivots
alone spreads the NUV deficit up to 3355 A and made F336W ~0.14 mag too faint for the Sun and
~0.24 mag for a solar-metallicity old population. The u band's residual is therefore taken to
hold across the u passband, down to its blue half-maximum edge (3280 A): F336W (3094-3643 A at
half maximum) lies inside it, and only below that edge does the residual run to the NUV's.
Known-answer checks (``transfer_from_spectrum`` on the Kurucz Sun and Vega shipped with sedpy,
and ``out_of_sample_errors`` on real MIST bands that the transfer does not use) are in the tests
and ``bench/bench_population.py``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import GcsbiFileError
from .filters import SEDPY_NAMES, _sedpy_filters, blackbody_flambda, check_filters, filter_info, vega_magnitudes

__all__ = [
    "MBOL_SUN",
    "TEFF_SUN",
    "LOG_G_SUN",
    "REFERENCE_BANDS",
    "DIRECT_BANDS",
    "BCGrid",
    "BC_TABLE_FILE",
    "BC_TABLE_SHA256",
    "bc_table_path",
    "bc_grid",
    "bolometric_corrections",
    "transfer_from_spectrum",
    "HOLDOUT_BANDS",
    "PLATEAU_BANDS",
    "leave_one_out_errors",
    "out_of_sample_errors",
]

#: Solar absolute bolometric magnitude used by MIST (IAU 2015 B2).
MBOL_SUN = 4.74
#: Solar effective temperature, K (IAU 2015 B3 nominal).
TEFF_SUN = 5772.0
#: log10 of the solar surface gravity, cgs.
LOG_G_SUN = 4.438

#: Real MIST/C3K bands used to measure the real-minus-blackbody residual: (system, band, sedpy name, zero point).
REFERENCE_BANDS: tuple[tuple[str, str, str, str], ...] = (
    ("GALEX", "GALEX_NUV", "galex_NUV", "AB"),
    ("SDSSugriz", "SDSS_u", "sdss_u0", "AB"),
    ("UBVRIplus", "Bessell_U", "bessell_U", "Vega"),
    ("UBVRIplus", "Bessell_B", "bessell_B", "Vega"),
    ("SDSSugriz", "SDSS_g", "sdss_g0", "AB"),
    ("UBVRIplus", "Bessell_V", "bessell_V", "Vega"),
    ("UBVRIplus", "Bessell_R", "bessell_R", "Vega"),
    ("SDSSugriz", "SDSS_i", "sdss_i0", "AB"),
    ("UBVRIplus", "Bessell_I", "bessell_I", "Vega"),
    ("SDSSugriz", "SDSS_z", "sdss_z0", "AB"),
    ("PanSTARRS", "PS_y", "panstarrs_y", "AB"),
    ("UBVRIplus", "2MASS_J", "twomass_J", "Vega"),
    ("UBVRIplus", "2MASS_H", "twomass_H", "Vega"),
    ("UBVRIplus", "2MASS_Ks", "twomass_Ks", "Vega"),
    ("WISE", "WISE_W1", "wise_w1", "Vega"),
    ("WISE", "WISE_W2", "wise_w2", "Vega"),
)

#: Reference bands whose residual holds across their passband down to the blue half-maximum edge.
PLATEAU_BANDS: tuple[str, ...] = ("SDSS_u",)

#: gcsbi filters taken directly from the MIST tables (Johnson-Cousins = MIST "Bessell").
DIRECT_BANDS: dict[str, str] = {"U": "Bessell_U", "B": "Bessell_B", "V": "Bessell_V", "R": "Bessell_R", "I": "Bessell_I"}


#: The shipped MIST/C3K table: Av = 0, the bands of REFERENCE_BANDS and HOLDOUT_BANDS, float32 as in
#: the source (built by scripts/make_bc_tables.py; see gcsbi/stars/data/README.md).
BC_TABLE_FILE = Path(__file__).resolve().parent / "data" / "mist_c3k_bc_av0.npz"
#: SHA-256 of :data:`BC_TABLE_FILE`, checked on every load.
BC_TABLE_SHA256 = "20a6453ccb423a2649c1503aa916296775555b3815c210b38004f288fa4021f0"


def bc_table_path() -> Path:
    """Location of the shipped bolometric-correction table (:data:`BC_TABLE_FILE`)."""
    if not BC_TABLE_FILE.is_file():
        raise GcsbiFileError(f"bolometric-correction table not found: {BC_TABLE_FILE} (reinstall gcsbi)")
    return BC_TABLE_FILE


@lru_cache(maxsize=1)
def _bc_tables() -> dict[str, np.ndarray]:
    """The shipped table's arrays, after checking its SHA-256."""
    path = bc_table_path()
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BC_TABLE_SHA256:
        raise GcsbiFileError(f"{path}: SHA-256 {digest} is not the shipped table's {BC_TABLE_SHA256} "
                             "(corrupt or replaced; reinstall gcsbi)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:  # pragma: no cover - the digest matched, so only a bad build gets here
        raise GcsbiFileError(f"{path}: cannot read the bolometric-correction table: {exc}") from exc


@dataclass(frozen=True)
class BCGrid:
    """BC(log Teff, log g, [Fe/H]) for Av = 0 on a regular grid; ``bc`` has shape (nT, ng, nfeh, nband)."""

    log_teff: np.ndarray
    log_g: np.ndarray
    feh: np.ndarray
    bands: tuple[str, ...]
    bc: np.ndarray

    def __call__(self, log_teff: np.ndarray, log_g: np.ndarray, feh: np.ndarray | float) -> np.ndarray:
        """Trilinear interpolation (clipped to the grid), shape (n, nband)."""
        lt = np.atleast_1d(np.asarray(log_teff, dtype=float))
        lg = np.broadcast_to(np.asarray(log_g, dtype=float), lt.shape)
        fh = np.broadcast_to(np.asarray(feh, dtype=float), lt.shape)
        idx, wts = [], []
        for axis, x in ((self.log_teff, lt), (self.log_g, lg), (self.feh, fh)):
            xc = np.clip(x, axis[0], axis[-1])
            i = np.clip(np.searchsorted(axis, xc, side="right") - 1, 0, axis.size - 2)
            idx.append(i)
            wts.append((xc - axis[i]) / (axis[i + 1] - axis[i]))
        out = np.zeros(lt.shape + (self.bc.shape[-1],))
        for a in (0, 1):
            wa = wts[0] if a else 1 - wts[0]
            for b in (0, 1):
                wb = wts[1] if b else 1 - wts[1]
                for c in (0, 1):
                    wc = wts[2] if c else 1 - wts[2]
                    out += (wa * wb * wc)[:, None] * self.bc[idx[0] + a, idx[1] + b, idx[2] + c]
        return out


#: Real MIST/C3K bands the transfer never uses, for out-of-sample checks (Pan-STARRS1 g, r, i, z).
HOLDOUT_BANDS: tuple[tuple[str, str, str, str], ...] = (
    ("PanSTARRS", "PS_g", "panstarrs_g", "AB"),
    ("PanSTARRS", "PS_r", "panstarrs_r", "AB"),
    ("PanSTARRS", "PS_i", "panstarrs_i", "AB"),
    ("PanSTARRS", "PS_z", "panstarrs_z", "AB"),
)


@lru_cache(maxsize=2)
def _mist_grid(bands: tuple[tuple[str, str, str, str], ...]) -> BCGrid:
    """MIST/C3K BCs of ``bands`` ((system, band, sedpy name, zero point) tuples), Vega zero points, Av = 0."""
    table = _bc_tables()
    teff, logg, feh = table["teff"], table["logg"], table["feh"]  # float32, float32, float64 as in the source
    shipped = {(str(s), str(b)): k for k, (s, b) in enumerate(zip(table["systems"], table["bands"]))}
    tables = {}
    for system, band, sedpy_name, zp in bands:
        if (system, band) not in shipped:
            raise GcsbiFileError(f"{bc_table_path()}: no {system} {band} band (rebuild with scripts/make_bc_tables.py)")
        bc = table["bc"][shipped[system, band]]  # (nteff, nlogg, nfeh) float32
        if zp == "AB":  # BC_Vega = Mbol - M_Vega = BC_AB - ab_to_vega
            bc = bc - filter_info(sedpy_name).ab_to_vega
        tables[band] = bc
    bc = np.stack([tables[b[1]] for b in bands], axis=-1)
    return BCGrid(np.log10(teff), logg.astype(float), feh.astype(float), tuple(b[1] for b in bands), bc.astype(float))


def _reference_grid() -> BCGrid:
    """All reference bands, Vega zero points, Av = 0."""
    return _mist_grid(REFERENCE_BANDS)


@lru_cache(maxsize=None)
def _blackbody_bc(sedpy_names: tuple[str, ...], log_teff: tuple[float, ...]) -> np.ndarray:
    """BC of a blackbody (Vega system) at each Teff, shape (nT, nband)."""
    wave = np.geomspace(900.0, 80000.0, 8000)
    flux_10pc = blackbody_flambda(wave, 10 ** np.asarray(log_teff)) * 3.828e33 / (4 * np.pi * (3.0857e19) ** 2)
    return MBOL_SUN - vega_magnitudes(wave, flux_10pc, sedpy_names)


@lru_cache(maxsize=None)
def _blue_edge(sedpy_name: str) -> float:
    """Shortest wavelength (Angstrom) where a filter's transmission reaches half its maximum."""
    (flt,) = _sedpy_filters((sedpy_name,))
    t = np.asarray(flt.transmission, dtype=float)
    return float(np.asarray(flt.wavelength, dtype=float)[t >= 0.5 * t.max()].min())


def _interpolate_residuals(resid: np.ndarray, use: np.ndarray, target_sedpy: tuple[str, ...]) -> np.ndarray:
    """Residual (real - blackbody BC) in target bands from the reference bands' ``resid`` (..., nref).

    Linear in log wavelength between reference nodes (each band's pivot; :data:`PLATEAU_BANDS`
    also at their blue half-maximum edge), flat beyond the end nodes.
    """
    x, cols = [], []
    for k, (_, band, sedpy_name, _) in enumerate(REFERENCE_BANDS):
        if not use[k]:
            continue
        x.append(np.log10(filter_info(sedpy_name).pivot_angstrom))
        cols.append(k)
        if band in PLATEAU_BANDS:
            x.append(np.log10(_blue_edge(sedpy_name)))
            cols.append(k)
    order = np.argsort(x, kind="stable")
    x_ref, cols = np.asarray(x)[order], np.asarray(cols)[order]
    out = np.empty(resid.shape[:-1] + (len(target_sedpy),))
    for j, name in enumerate(target_sedpy):
        xt = np.log10(filter_info(name).pivot_angstrom)
        k = int(np.clip(np.searchsorted(x_ref, xt) - 1, 0, x_ref.size - 2))
        w = np.clip((xt - x_ref[k]) / (x_ref[k + 1] - x_ref[k]), 0.0, 1.0)
        out[..., j] = (1 - w) * resid[..., cols[k]] + w * resid[..., cols[k + 1]]
    return out


def _transfer(ref: BCGrid, use: np.ndarray, target_sedpy: tuple[str, ...]) -> np.ndarray:
    """BC for target bands = BC_bb(target) + residual(real - bb) interpolated from the reference bands."""
    ref_sedpy = tuple(b[2] for b in REFERENCE_BANDS)
    lt = tuple(ref.log_teff.tolist())
    resid = ref.bc - _blackbody_bc(ref_sedpy, lt)[:, None, None, :]
    return _interpolate_residuals(resid, use, target_sedpy) + _blackbody_bc(target_sedpy, lt)[:, None, None, :]


def transfer_from_spectrum(wave_angstrom: np.ndarray, flambda: np.ndarray, teff: float,
                           filters: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Known-answer check of the transfer on a star whose spectrum is known.

    The spectrum's magnitudes in the MIST reference bands play the role of the MIST table; the
    transfer then predicts ``filters`` from them and a ``teff`` blackbody. Returns filter ->
    (transferred, true) absolute magnitude for a bolometric luminosity of 1 L_sun.
    """
    names = check_filters(filters)
    wave, flam = np.asarray(wave_angstrom, dtype=float), np.asarray(flambda, dtype=float)
    ok = np.isfinite(flam) & (wave > 900.0) & (wave < 3.0e5)
    wave, flam = wave[ok], flam[ok] / np.trapezoid(flam[ok], wave[ok])
    to_mag = 3.828e33 / (4 * np.pi * (3.0857e19) ** 2)
    ref_sedpy = tuple(b[2] for b in REFERENCE_BANDS)
    tgt_sedpy = tuple(SEDPY_NAMES[f] for f in names)
    resid = MBOL_SUN - vega_magnitudes(wave, flam * to_mag, ref_sedpy)[0] - _blackbody_bc(ref_sedpy, (np.log10(teff),))[0]
    bc = _interpolate_residuals(resid, np.ones(len(REFERENCE_BANDS), bool), tgt_sedpy) + _blackbody_bc(
        tgt_sedpy, (np.log10(teff),))[0]
    true = vega_magnitudes(wave, flam * to_mag, tgt_sedpy)[0]
    return {f: (float(MBOL_SUN - bc[j]), float(true[j])) for j, f in enumerate(names)}


@lru_cache(maxsize=None)
def bc_grid(filters: tuple[str, ...]) -> BCGrid:
    """BC grid for gcsbi filters (cached on the filter tuple). UBVRI are MIST's own; HST/JWST are transferred."""
    names = check_filters(filters)
    ref = _reference_grid()
    out = np.empty(ref.bc.shape[:3] + (len(names),))
    derived = [f for f in names if f not in DIRECT_BANDS]
    if derived:
        use = np.ones(len(REFERENCE_BANDS), dtype=bool)
        tr = _transfer(ref, use, tuple(SEDPY_NAMES[f] for f in derived))
    for j, f in enumerate(names):
        if f in DIRECT_BANDS:
            out[..., j] = ref.bc[..., ref.bands.index(DIRECT_BANDS[f])]
        else:
            out[..., j] = tr[..., derived.index(f)]
    return BCGrid(ref.log_teff, ref.log_g, ref.feh, names, out)


def bolometric_corrections(
    log_teff: np.ndarray, log_g: np.ndarray, feh: float | np.ndarray, filters: Iterable[str]
) -> np.ndarray:
    """BC (Vega) per star and filter, shape (n, nfilters); absolute mag = 4.74 - 2.5 log L - BC."""
    return bc_grid(check_filters(filters))(log_teff, log_g, feh)


def _validation_cells(ref: BCGrid, teff_range: tuple[float, float], logg_range: tuple[float, float],
                      feh_range: tuple[float, float]) -> np.ndarray:
    return (((10**ref.log_teff >= teff_range[0]) & (10**ref.log_teff <= teff_range[1]))[:, None, None]
            & ((ref.log_g >= logg_range[0]) & (ref.log_g <= logg_range[1]))[None, :, None]
            & ((ref.feh >= feh_range[0]) & (ref.feh <= feh_range[1]))[None, None, :])


def _error_stats(err: np.ndarray) -> tuple[float, float, float]:
    return float(np.median(err)), float(np.sqrt(np.mean(err**2))), float(np.max(np.abs(err)))


def out_of_sample_errors(
    *,
    teff_range: tuple[float, float] = (3500.0, 10000.0),
    logg_range: tuple[float, float] = (0.0, 5.0),
    feh_range: tuple[float, float] = (-2.5, 0.5),
) -> dict[str, tuple[float, float, float]]:
    """The transfer's prediction of real MIST bands it never uses (:data:`HOLDOUT_BANDS`) vs MIST's own tables.

    Returns band -> (median, rms, max |err|) in mag over the grid cells in the given ranges.
    """
    ref = _reference_grid()
    truth = _mist_grid(HOLDOUT_BANDS)
    pred = _transfer(ref, np.ones(len(REFERENCE_BANDS), dtype=bool), tuple(b[2] for b in HOLDOUT_BANDS))
    sel = _validation_cells(ref, teff_range, logg_range, feh_range)
    return {b[1]: _error_stats((pred[..., j] - truth.bc[..., j])[sel]) for j, b in enumerate(HOLDOUT_BANDS)}


def leave_one_out_errors(
    *,
    teff_range: tuple[float, float] = (3500.0, 10000.0),
    logg_range: tuple[float, float] = (0.0, 5.0),
    feh_range: tuple[float, float] = (-2.5, 0.5),
    exclude_within: float = 0.0,
) -> dict[str, tuple[float, float, float]]:
    """Validate the transfer: predict each real band from the others; returns band -> (median, rms, max |err|).

    ``exclude_within`` > 0 also drops reference bands whose pivot lies within that fractional
    distance of the held-out band (a stricter test, closer to F336W's 6% gap to SDSS u).
    """
    ref = _reference_grid()
    pivots = np.array([filter_info(b[2]).pivot_angstrom for b in REFERENCE_BANDS])
    sel = _validation_cells(ref, teff_range, logg_range, feh_range)
    out = {}
    for k in range(1, len(REFERENCE_BANDS) - 1):  # interior bands only (interpolation, not extrapolation)
        use = np.abs(pivots / pivots[k] - 1.0) > max(exclude_within, 1e-9)
        if not (use & (pivots < pivots[k])).any() or not (use & (pivots > pivots[k])).any():
            continue
        pred = _transfer(ref, use, (REFERENCE_BANDS[k][2],))[..., 0]
        out[REFERENCE_BANDS[k][1]] = _error_stats((pred - ref.bc[..., k])[sel])
    return out
