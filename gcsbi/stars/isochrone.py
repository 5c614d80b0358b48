"""MIST v2.5 isochrones (lachesis-grids) interpolated in log age and [Fe/H] at fixed EEP."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiFileError, GcsbiValueError

__all__ = ["Isochrone", "isochrone", "mist_path", "grid_ranges", "ALIVE_MIST_PHASES"]

_GRID_FILE = "mist_v2.5_vvcrit0.4.h5"
# MIST phase codes kept as "alive" stars: PMS, MS, RGB, CHeB, EAGB, TPAGB, WR (post-AGB/WD, 6, are cut:
# white dwarfs come from the initial-final mass relation instead).
ALIVE_MIST_PHASES: tuple[int, ...] = (-1, 0, 2, 3, 4, 5, 9)
_COLS = {"initial_mass": 2, "star_mass": 3, "log_teff": 4, "log_g": 5, "log_l": 6, "phase": 8}


def mist_path() -> Path:
    try:
        from lachesis_grids import grid_path
    except ImportError as exc:
        raise GcsbiDependencyError("lachesis-grids is required for MIST isochrones (pip install lachesis-grids)") from exc
    try:
        return Path(grid_path(_GRID_FILE))
    except FileNotFoundError as exc:
        raise GcsbiFileError(str(exc)) from exc


@lru_cache(maxsize=1)
def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import h5py

    with h5py.File(mist_path(), "r") as h5:
        feh = h5["feh_values"][:].astype(float)
        lage = h5["age_values"][:].astype(float)
        n_eep = h5["eep_values"].shape[0]
        lengths = h5["lengths"][:]
        offsets = h5["offsets"][:]
        values = h5["values"][:][:, [2, 3, 4, 5, 6, 8]].astype(float)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    return feh, lage, lengths, offsets, starts, values if n_eep else values


def grid_ranges() -> tuple[tuple[float, float], tuple[float, float]]:
    """([Fe/H] min, max), (log age min, max) of the MIST grid."""
    feh, lage, *_ = _grid()
    return (float(feh[0]), float(feh[-1])), (float(lage[0]), float(lage[-1]))


@lru_cache(maxsize=64)
def _dense(i_feh: int, i_age: int) -> np.ndarray:
    """(1722, 6) array of one grid isochrone on the full EEP axis, NaN where absent; Mi de-quantised."""
    feh, lage, lengths, offsets, starts, values = _grid()
    k = i_feh * lage.size + i_age
    out = np.full((1722, 6), np.nan)
    n = int(lengths[k])
    if n == 0:
        return out
    out[offsets[k] : offsets[k] + n] = values[starts[k] : starts[k] + n]
    return out


def _dequantise(mi: np.ndarray) -> np.ndarray:
    """Make float32-quantised initial masses strictly increasing (runs of ties -> linear through run centres)."""
    mi = np.maximum.accumulate(mi)
    change = np.concatenate([[True], np.diff(mi) > 0])
    starts = np.flatnonzero(change)
    ends = np.concatenate([starts[1:], [mi.size]])
    centres = 0.5 * (starts + ends - 1)
    out = np.interp(np.arange(mi.size), centres, mi[starts])
    # strictly increasing even at the ends of the array
    bump = np.arange(mi.size) * 1e-12
    return np.maximum.accumulate(out) + bump


@dataclass(frozen=True)
class Isochrone:
    """Alive stars of one isochrone, sorted by EEP (initial mass strictly increasing)."""

    log_age: float
    feh: float
    eep: np.ndarray
    initial_mass: np.ndarray
    star_mass: np.ndarray
    log_teff: np.ndarray
    log_g: np.ndarray
    log_l: np.ndarray
    mist_phase: np.ndarray

    @property
    def max_alive_mass(self) -> float:
        return float(self.initial_mass[-1])


@lru_cache(maxsize=32)
def isochrone(log_age: float, feh: float) -> Isochrone:
    """Bilinear interpolation in (log age, [Fe/H]) of the four neighbouring MIST isochrones at fixed EEP."""
    fehs, lages, *_ = _grid()
    if not (fehs[0] <= feh <= fehs[-1]):
        raise GcsbiValueError(f"[Fe/H]={feh} outside the MIST grid [{fehs[0]}, {fehs[-1]}]")
    if not (lages[0] <= log_age <= lages[-1]):
        raise GcsbiValueError(f"log age={log_age} outside the MIST grid [{lages[0]}, {lages[-1]}]")
    i_f = int(np.clip(np.searchsorted(fehs, feh, side="right") - 1, 0, fehs.size - 2))
    i_a = int(np.clip(np.searchsorted(lages, log_age, side="right") - 1, 0, lages.size - 2))
    w_f = (feh - fehs[i_f]) / (fehs[i_f + 1] - fehs[i_f])
    w_a = (log_age - lages[i_a]) / (lages[i_a + 1] - lages[i_a])
    acc = np.zeros((1722, 6))
    valid = np.ones(1722, dtype=bool)
    best, best_w = None, -1.0
    for df, wf in ((0, 1 - w_f), (1, w_f)):
        for da, wa in ((0, 1 - w_a), (1, w_a)):
            w = wf * wa
            if w <= 1e-12:
                continue
            d = _dense(i_f + df, i_a + da).copy()
            alive = np.isin(d[:, 5], ALIVE_MIST_PHASES)
            # cut everything from the first post-AGB/WD point on
            dead = np.flatnonzero(np.isfinite(d[:, 5]) & ~alive)
            if dead.size:
                alive[dead[0] :] = False
            ok = alive & np.all(np.isfinite(d), axis=1)
            if ok.sum() < 10:
                raise GcsbiValueError(f"MIST grid has no isochrone at log age {lages[i_a + da]}, [Fe/H] {fehs[i_f + df]}")
            d[ok, 0] = _dequantise(d[ok, 0])
            valid &= ok
            acc += w * np.nan_to_num(d)
            if w > best_w:
                best, best_w = d, w
    idx = np.flatnonzero(valid)
    if idx.size < 10:
        raise GcsbiValueError(f"cannot interpolate MIST isochrones at log age {log_age}, [Fe/H] {feh}")
    # keep the contiguous run from the first valid EEP (gaps would break the EEP ordering)
    a = acc[idx]
    mi = _dequantise(a[:, 0])
    return Isochrone(
        log_age=float(log_age),
        feh=float(feh),
        eep=idx.astype(float),
        initial_mass=mi,
        star_mass=np.minimum(a[:, 1], mi),
        log_teff=a[:, 2],
        log_g=a[:, 3],
        log_l=a[:, 4],
        mist_phase=best[idx, 5].astype(int),
    )
