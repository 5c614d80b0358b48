"""Bolometric corrections: MIST/C3K tables for real ground bands, blackbody+residual transfer for HST/JWST."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiFileError
from .filters import SEDPY_NAMES, blackbody_flambda, check_filters, filter_info, vega_magnitudes

__all__ = [
    "MBOL_SUN",
    "TEFF_SUN",
    "LOG_G_SUN",
    "REFERENCE_BANDS",
    "DIRECT_BANDS",
    "BCGrid",
    "bc_table_path",
    "bc_grid",
    "bolometric_corrections",
    "leave_one_out_errors",
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

#: gcsbi filters taken directly from the MIST tables (Johnson-Cousins = MIST "Bessell").
DIRECT_BANDS: dict[str, str] = {"U": "Bessell_U", "B": "Bessell_B", "V": "Bessell_V", "R": "Bessell_R", "I": "Bessell_I"}


def bc_table_path() -> Path:
    """Location of astroLACHESIS' ``bc_tables.h5`` (found without importing lachesis' heavy modules)."""
    import importlib.util

    spec = importlib.util.find_spec("lachesis")
    if spec is None or not spec.submodule_search_locations:
        raise GcsbiDependencyError("astrolachesis is required for bolometric-correction tables (pip install astrolachesis)")
    path = Path(list(spec.submodule_search_locations)[0]) / "Datafiles" / "BC_tables" / "bc_tables.h5"
    if not path.is_file():
        raise GcsbiFileError(f"bolometric-correction table not found: {path}")
    return path


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


@lru_cache(maxsize=1)
def _reference_grid() -> BCGrid:
    """All reference bands, Vega zero points, Av = 0."""
    import h5py

    tables = {}
    with h5py.File(bc_table_path(), "r") as h5:
        for system, band, sedpy_name, zp in REFERENCE_BANDS:
            grp = h5[system]
            names = [n.decode() for n in grp["band_names"][:]]
            data = grp["data"][:]  # (nfeh, nrow, 5 + nband): Teff, logg, feh, Av, Rv, BCs
            feh = grp["feh_values"][:]
            sel = data[0, :, 3] == 0.0
            order = np.lexsort((data[0, sel, 1], data[0, sel, 0]))
            teff = np.unique(data[0, sel, 0])
            logg = np.unique(data[0, sel, 1])
            col = 5 + names.index(band)
            bc = data[:, sel, col][:, order].reshape(feh.size, teff.size, logg.size).transpose(1, 2, 0)
            if zp == "AB":  # BC_Vega = Mbol - M_Vega = BC_AB - ab_to_vega
                bc = bc - filter_info(sedpy_name).ab_to_vega
            tables[band] = (teff, logg, feh, bc)
    teff, logg, feh, _ = tables[REFERENCE_BANDS[0][1]]
    for t, g, f, _ in tables.values():
        if not (np.array_equal(t, teff) and np.array_equal(g, logg) and np.array_equal(f, feh)):
            raise GcsbiFileError("BC tables of different systems are on different grids")
    bc = np.stack([tables[b[1]][3] for b in REFERENCE_BANDS], axis=-1)
    return BCGrid(np.log10(teff), logg.astype(float), feh.astype(float), tuple(b[1] for b in REFERENCE_BANDS), bc.astype(float))


@lru_cache(maxsize=None)
def _blackbody_bc(sedpy_names: tuple[str, ...], log_teff: tuple[float, ...]) -> np.ndarray:
    """BC of a blackbody (Vega system) at each Teff, shape (nT, nband)."""
    wave = np.geomspace(900.0, 80000.0, 8000)
    flux_10pc = blackbody_flambda(wave, 10 ** np.asarray(log_teff)) * 3.828e33 / (4 * np.pi * (3.0857e19) ** 2)
    return MBOL_SUN - vega_magnitudes(wave, flux_10pc, sedpy_names)


def _transfer(ref: BCGrid, use: np.ndarray, target_sedpy: tuple[str, ...]) -> np.ndarray:
    """BC for target bands = BC_bb(target) + residual(real - bb) interpolated in log pivot wavelength."""
    ref_sedpy = tuple(b[2] for b in REFERENCE_BANDS)
    lt = tuple(ref.log_teff.tolist())
    resid = ref.bc - _blackbody_bc(ref_sedpy, lt)[:, None, None, :]
    x_ref = np.log10([filter_info(n).pivot_angstrom for n in ref_sedpy])[use]
    order = np.argsort(x_ref)
    r = resid[..., use][..., order].reshape(-1, order.size)
    x_ref = x_ref[order]
    bb_t = _blackbody_bc(target_sedpy, lt)
    out = np.empty(ref.bc.shape[:3] + (len(target_sedpy),))
    for j, name in enumerate(target_sedpy):
        x = np.log10(filter_info(name).pivot_angstrom)
        k = int(np.clip(np.searchsorted(x_ref, x) - 1, 0, x_ref.size - 2))
        w = np.clip((x - x_ref[k]) / (x_ref[k + 1] - x_ref[k]), 0.0, 1.0)  # flat beyond the end bands
        out[..., j] = ((1 - w) * r[:, k] + w * r[:, k + 1]).reshape(ref.bc.shape[:3]) + bb_t[:, None, None, j]
    return out


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
    sel = (
        ((10**ref.log_teff >= teff_range[0]) & (10**ref.log_teff <= teff_range[1]))[:, None, None]
        & ((ref.log_g >= logg_range[0]) & (ref.log_g <= logg_range[1]))[None, :, None]
        & ((ref.feh >= feh_range[0]) & (ref.feh <= feh_range[1]))[None, None, :]
    )
    out = {}
    for k in range(1, len(REFERENCE_BANDS) - 1):  # interior bands only (interpolation, not extrapolation)
        use = np.abs(pivots / pivots[k] - 1.0) > max(exclude_within, 1e-9)
        if not (use & (pivots < pivots[k])).any() or not (use & (pivots > pivots[k])).any():
            continue
        pred = _transfer(ref, use, (REFERENCE_BANDS[k][2],))[..., 0]
        err = (pred - ref.bc[..., k])[sel]
        out[REFERENCE_BANDS[k][1]] = (float(np.median(err)), float(np.sqrt(np.mean(err**2))), float(np.max(np.abs(err))))
    return out
