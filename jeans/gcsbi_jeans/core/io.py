"""Star tables for the Jeans module: generic text tables, Walker/GravSphere spectroscopy, Gaia Challenge mocks."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import JeansFileError, JeansValueError, JeansWarning

__all__ = [
    "StarTable",
    "read_table",
    "read_walker",
    "read_gaia_challenge",
    "read_stars",
    "write_table",
    "radec_to_projected_kpc",
    "ARCMIN_PER_RAD",
    "OUTLIER_Z",
    "DUPLICATE_REFUSE_FRAC",
    "robust_velocity_scale",
    "systemic_velocity",
    "velocity_zscores",
    "outlier_stars",
    "robust_dispersion2",
    "star_label",
    "check_duplicates",
    "check_outliers",
    "MIN_STARS",
    "check_fit_sample",
    "sample_scales",
]

ARCMIN_PER_RAD = 180.0 * 60.0 / math.pi

#: A star whose weighted squared z-score w z^2 exceeds OUTLIER_Z^2 is a gross outlier: z = |v - median| /
#: sqrt(s^2 + err^2), s the robust (MAD) dispersion. Members of real dwarfs reach w z^2 ~ 15 (Fornax, Walker
#: et al. 2009) and the strongly leptokurtic Gaia Challenge PlumCoreOm mock (kurtosis ~5) z ~ 9 in 10^4 stars.
OUTLIER_Z = 10.0
#: A table in which this fraction of the rows or more repeat another row exactly is refused (fewer: a warning).
DUPLICATE_REFUSE_FRAC = 0.1
#: Fewest member stars a fit accepts: below it the half-number radius, velocity dispersion and the
#: kernel bandwidths derived from them are noise, and the fit returns confident-looking nonsense.
MIN_STARS = 20


@dataclass(frozen=True)
class StarTable:
    """Projected positions x, y (kpc), LOS velocities v (km/s, systemic velocity removed), errors, weights."""

    x: np.ndarray
    y: np.ndarray
    v: np.ndarray
    verr: np.ndarray
    weight: np.ndarray
    vsys: float = 0.0
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        arrs = {k: np.asarray(getattr(self, k), dtype=float) for k in ("x", "y", "v", "verr", "weight")}
        n = arrs["x"].shape
        for k, a in arrs.items():
            if a.ndim != 1 or a.shape != n:
                raise JeansValueError(f"column {k!r} must be 1-D with {n[0] if n else '?'} entries, got {a.shape}")
            if not np.all(np.isfinite(a)):
                raise JeansValueError(f"column {k!r} contains NaN or infinite values")
            object.__setattr__(self, k, a)
        if n[0] < 2:
            raise JeansValueError(f"need at least 2 stars, got {n[0]}")
        _check_errors(arrs["verr"])
        if np.any(arrs["weight"] < 0) or np.any(arrs["weight"] > 1) or arrs["weight"].sum() <= 0:
            raise JeansValueError("membership weights must lie in [0, 1] and not all be zero")

    @property
    def n(self) -> int:
        return int(self.x.size)

    @property
    def R(self) -> np.ndarray:
        return np.hypot(self.x, self.y)

    def select(self, idx: np.ndarray) -> "StarTable":
        """Subset (or bootstrap resample) by an index array; ``meta['rows']`` (data rows) follows the stars and
        ``meta['resampled']`` marks a selection that repeats stars (its copies are deliberate)."""
        idx = np.asarray(idx)
        meta = dict(self.meta)
        if "rows" in meta:
            meta["rows"] = np.asarray(meta["rows"])[idx]
        flat = np.arange(self.n)[idx].ravel()
        if np.unique(flat).size < flat.size:
            meta["resampled"] = True
        return replace(self, x=self.x[idx], y=self.y[idx], v=self.v[idx], verr=self.verr[idx], weight=self.weight[idx],
                       meta=meta)

    def members(self, min_weight: float = 0.0) -> "StarTable":
        """Drop stars with membership weight <= min_weight."""
        return self.select(np.flatnonzero(self.weight > min_weight))

    def half_light_radius(self) -> float:
        """Weighted median projected radius (kpc): the projected half-number radius of the sample."""
        order = np.argsort(self.R)
        cw = np.cumsum(self.weight[order])
        return float(self.R[order][np.searchsorted(cw, 0.5 * cw[-1])])


def _check_errors(verr: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Refuse negative velocity errors, naming how many and the first (1-based data row if ``rows``)."""
    bad = np.flatnonzero(verr < 0)
    if bad.size:
        where = f"data row {int(rows[bad[0]]) + 1}" if rows is not None else f"star {int(bad[0])}"
        raise JeansValueError(f"velocity errors must be >= 0; {bad.size} stars have negative errors, "
                              f"first at {where} ({verr[bad[0]]:g} km/s)")


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cw, 0.5 * cw[-1])])


def robust_velocity_scale(v: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted median and 1.4826 x weighted median absolute deviation of ``v`` (both 50% breakdown: one wild
    star cannot move them); the weighted rms about the median if more than half the stars share one velocity."""
    v, w = np.asarray(v, float), np.asarray(w, float)
    m = _weighted_median(v, w)
    s = 1.4826 * _weighted_median(np.abs(v - m), w)
    if not s > 0:
        s = math.sqrt(float(np.sum(w * (v - m) ** 2) / np.sum(w)))
    return m, s


def velocity_zscores(v: np.ndarray, verr: np.ndarray, w: np.ndarray) -> np.ndarray:
    """|v - median| / sqrt(s^2 + err^2), s the robust dispersion of :func:`robust_velocity_scale` (0 where
    there is no spread at all)."""
    v = np.asarray(v, float)
    m, s = robust_velocity_scale(v, w)
    scale = np.sqrt(s**2 + np.asarray(verr, float) ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, np.abs(v - m) / scale, 0.0)


def systemic_velocity(v: np.ndarray, verr: np.ndarray, w: np.ndarray) -> float:
    """Weighted mean velocity of the stars that are not gross outliers (sqrt(w) z <= :data:`OUTLIER_Z`, z in
    robust dispersions from the weighted median: see :func:`outlier_stars`).

    For a clean sample this is the weighted mean (the efficient estimator, unchanged for every reference data
    set here); a star at 9999 km/s among 200 members, which drags the mean by 50 km/s, is left out.
    """
    v, w = np.asarray(v, float), np.asarray(w, float)
    keep = np.sqrt(w) * velocity_zscores(v, verr, w) <= OUTLIER_Z
    if not np.sum(w[keep]) > 0:
        return _weighted_median(v, w)
    return float(np.sum(w[keep] * v[keep]) / np.sum(w[keep]))


def _weighted_z(stars: "StarTable") -> np.ndarray:
    return np.sqrt(stars.weight) * velocity_zscores(stars.v, stars.verr, stars.weight)


def outlier_stars(stars: "StarTable") -> np.ndarray:
    """Indices of the gross velocity outliers: sqrt(w) z > :data:`OUTLIER_Z` (a star's pull on a Gaussian
    likelihood is w z^2, so a low-probability member far out counts as much as a full one closer in)."""
    return np.flatnonzero(_weighted_z(stars) > OUTLIER_Z)


def robust_dispersion2(stars: "StarTable") -> float:
    """Weighted mean of v^2 - err^2 over the stars that are not gross outliers: a second moment one wild star
    cannot inflate (v has the systemic velocity removed)."""
    keep = np.ones(stars.n, bool)
    keep[outlier_stars(stars)] = False
    w = stars.weight[keep]
    return float(np.sum(w * (stars.v[keep] ** 2 - stars.verr[keep] ** 2)) / np.sum(w))


def star_label(stars: "StarTable", idx, *, limit: int = 5) -> str:
    """'data row 18' / 'data rows 3, 17, ...' (1-based rows of the file read) or 'star 17' (0-based index) for
    tables built in memory."""
    idx = np.atleast_1d(np.asarray(idx, int))
    rows = stars.meta.get("rows")
    file_rows = rows is not None and len(rows) == stars.n
    names = [str(int(rows[i]) + 1) if file_rows else str(int(i)) for i in idx[:limit]]
    more = f", ... ({idx.size} in all)" if idx.size > limit else ""
    what = ("data row" if file_rows else "star") + ("s" if idx.size > 1 else "")
    return f"{what} {', '.join(names)}{more}"


def check_duplicates(stars: "StarTable") -> None:
    """Refuse a table in which :data:`DUPLICATE_REFUSE_FRAC` of the rows or more repeat another row exactly
    (same x, y and v), warn (:class:`JeansWarning`) for fewer; names the rows. Bootstrap resamples, whose
    copies are deliberate (``meta['resampled']``), are not checked."""
    if stars.meta.get("resampled"):
        return
    key = np.column_stack([stars.x, stars.y, stars.v])
    _, first, inverse, counts = np.unique(key, axis=0, return_index=True, return_inverse=True, return_counts=True)
    extra = stars.n - first.size
    if extra == 0:
        return
    inverse = inverse.ravel()
    copied = [g for g in np.argsort(first) if counts[g] > 1]
    groups = [star_label(stars, np.flatnonzero(inverse == g), limit=4) for g in copied[:3]]
    desc = "; ".join(groups) + ("; ..." if len(copied) > 3 else "")
    msg = (f"{extra} of the {stars.n} stars repeat another row exactly (same x, y, v; {len(copied)} distinct "
           f"star{'s' if len(copied) > 1 else ''} copied): {desc}")
    frac = extra / stars.n
    if frac >= DUPLICATE_REFUSE_FRAC:
        raise JeansValueError(f"{msg}; copies are {frac:.0%} of the table, at most {DUPLICATE_REFUSE_FRAC:.0%} "
                              f"are accepted: remove the duplicated rows")
    warnings.warn(JeansWarning(f"{msg}; each copy counts as another star"), stacklevel=3)


def check_outliers(stars: "StarTable") -> None:
    """Refuse gross velocity outliers (:func:`outlier_stars`), naming the worst star and its row."""
    idx = outlier_stars(stars)
    if not idx.size:
        return
    zw = _weighted_z(stars)
    i = int(idx[np.argmax(zw[idx])])
    _, s = robust_velocity_scale(stars.v, stars.weight)
    raise JeansValueError(
        f"{idx.size} star{'s are' if idx.size > 1 else ' is'} a gross velocity outlier ({star_label(stars, idx)}); "
        f"worst {star_label(stars, i)}: v = {stars.v[i] + stars.vsys:.6g} km/s, sqrt(w) z = {zw[i]:.3g} > "
        f"{OUTLIER_Z:g} robust dispersions (vsys {stars.vsys:.5g} km/s, dispersion {s:.3g} km/s); remove "
        f"{'them' if idx.size > 1 else 'it'} or use the free-form fit, whose contamination component models "
        f"outliers")


def check_fit_sample(stars: StarTable, *, min_stars: int = MIN_STARS, model_outliers: bool = False) -> None:
    """Refuse samples no fit can use: fewer than ``min_stars`` stars, mostly duplicated rows, no spatial or
    velocity spread, or (unless the fit has a contamination component, ``model_outliers``) gross velocity
    outliers (:func:`outlier_stars`). A few duplicated rows give a :class:`~gcsbi_jeans.errors.JeansWarning`.

    Raises :class:`~gcsbi_jeans.errors.JeansValueError`, naming the offending rows, before any model is built.
    Every route (free-form, parametric baseline, JFlow) runs it first.
    """
    if stars.n < min_stars:
        raise JeansValueError(f"need at least {min_stars} stars, got {stars.n}")
    check_duplicates(stars)
    sample_scales(stars)
    if not model_outliers:
        check_outliers(stars)


def sample_scales(stars: StarTable) -> tuple[float, float]:
    """(L, V): the half-number radius (kpc) and a robust velocity dispersion (km/s) of ``stars``, both > 0
    (else :class:`~gcsbi_jeans.errors.JeansValueError`)."""
    L = stars.half_light_radius()
    if not L > 0:
        raise JeansValueError(f"the half-number radius is 0: at least half of the {stars.n} stars are at R = 0 "
                              "(x = y = 0); positions must be offsets from the centre")
    V = math.sqrt(max(robust_dispersion2(stars), 0.0))
    if not V > 0:
        V = robust_velocity_scale(stars.v, stars.weight)[1]
    if not V > 0:
        raise JeansValueError(f"the {stars.n} stars have no velocity spread (all v equal after removing vsys)")
    return L, V


def _read_text(p: Path) -> str:
    if not p.is_file():
        raise JeansFileError(f"no such file: {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise JeansFileError(f"{p} is not a text table (byte 0x{exc.object[exc.start]:02x} at offset "
                             f"{exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise JeansFileError(f"cannot read {p}: {exc.strerror or exc}") from None


def _load(path: str | Path, *, min_cols: int) -> tuple[np.ndarray, list[str] | None]:
    """Numeric rows and the '# name ...' header (if any) of a text table; NaN/inf entries are refused."""
    p = Path(path)
    text = _read_text(p)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = None
    if lines and lines[0].lstrip().startswith("#"):
        header = lines[0].lstrip("# ").replace(",", " ").split()
    rows = [ln.replace(",", " ") for ln in lines if not ln.lstrip().startswith("#")]
    if not rows:
        raise JeansFileError(f"{p} holds no data rows")
    try:
        data = np.array([[float(t) for t in r.split()] for r in rows])
    except ValueError as exc:
        raise JeansFileError(f"{p} is corrupt: non-numeric entry ({exc})") from exc
    if data.ndim != 2:
        raise JeansFileError(f"{p} is corrupt: rows have different numbers of columns")
    if data.shape[1] < min_cols:
        raise JeansFileError(f"{p} has {data.shape[1]} columns, need at least {min_cols}")
    bad = ~np.isfinite(data)
    if bad.any():
        r, c = (int(i[0]) for i in np.nonzero(bad))
        name = repr(header[c]) if header is not None and len(header) == data.shape[1] else str(c + 1)
        raise JeansValueError(f"{p}: NaN or inf in data row {r + 1}, column {name} ({int(bad.sum())} such "
                              f"entries); fix or remove those rows")
    return data, header


def _default_verr(verr: float | None, n: int, what: str) -> np.ndarray:
    """One error for every star when the data have none: must be given explicitly (0 for exact velocities)."""
    if verr is None:
        raise JeansValueError(f"{what} has no velocity-error column; pass verr= (CLI: --verr KMS) with the "
                              f"error of every star in km/s (0 for exact velocities)")
    if not (math.isfinite(verr) and verr >= 0):
        raise JeansValueError(f"verr must be a finite velocity error >= 0 km/s, got {verr}")
    return np.full(n, float(verr))


def _finish(x, y, v, verr, w, meta, *, subtract_vsys: bool = True, rows: np.ndarray | None = None) -> StarTable:
    """Keep stars with weight > 0 and remove the systemic velocity (:func:`systemic_velocity`); ``rows``: their
    0-based data rows (recorded in ``meta['rows']`` so that later checks can name them)."""
    v = np.asarray(v, float)
    w = np.asarray(w, float)
    verr = np.asarray(verr, float)
    rows = np.arange(v.size) if rows is None else np.asarray(rows)
    _check_errors(verr, rows)
    good = w > 0
    if not good.any():
        raise JeansValueError("no star has membership weight > 0")
    vsys = systemic_velocity(v[good], verr[good], w[good]) if subtract_vsys else 0.0
    return StarTable(x=x[good], y=y[good], v=v[good] - vsys, verr=verr[good], weight=w[good], vsys=vsys,
                     meta={**meta, "rows": rows[good]})


def radec_to_projected_kpc(ra: np.ndarray, dec: np.ndarray, *, ra0: float, dec0: float, distance_kpc: float):
    """Gnomonic (tangent-plane) projection about (ra0, dec0) in degrees, scaled to kpc at the given distance."""
    if not (math.isfinite(distance_kpc) and distance_kpc > 0):
        raise JeansValueError(f"distance must be > 0 kpc, got {distance_kpc}")
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = math.radians(ra0), math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a - a0)
    if np.any(cosc <= 0):
        raise JeansValueError("some stars are more than 90 degrees from the centre")
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return xi * distance_kpc, eta * distance_kpc


def read_walker(path: str | Path, *, distance_kpc: float, centre: tuple[float, float] | None = None) -> StarTable:
    """Walker et al. MMFS tables as prepared for GravSphere (col 0 RA, 1 Dec, 2-3 x,y arcmin, 6 v, 7 err, 15 p).

    Positions: the tabulated offsets (cols 2, 3, arcmin) unless ``centre`` = (RA, Dec) in degrees is given,
    then a tangent-plane projection of cols 0, 1. Stars with v = 0 (no velocity) or p = 0 are dropped.
    """
    if not (distance_kpc is not None and math.isfinite(distance_kpc) and distance_kpc > 0):
        raise JeansValueError(f"distance must be > 0 kpc, got {distance_kpc}")
    data, _ = _load(path, min_cols=16)
    keep = data[:, 6] != 0
    rows = np.flatnonzero(keep)
    data = data[keep]
    if centre is None:
        x = data[:, 2] / ARCMIN_PER_RAD * distance_kpc
        y = data[:, 3] / ARCMIN_PER_RAD * distance_kpc
    else:
        x, y = radec_to_projected_kpc(data[:, 0], data[:, 1], ra0=centre[0], dec0=centre[1], distance_kpc=distance_kpc)
    meta = {"source": str(path), "format": "walker", "distance_kpc": distance_kpc}
    return _finish(x, y, data[:, 6], data[:, 7], np.clip(data[:, 15], 0, 1), meta, rows=rows)


def read_gaia_challenge(path: str | Path, *, verr: float | None = None, los: str = "z") -> StarTable:
    """Gaia Challenge mocks (x y z vx vy vz in kpc, km/s), projected along ``los``.

    The files hold no velocity errors, so ``verr`` (km/s, the same for every star; 0 for exact
    velocities) is required.
    """
    data, _ = _load(path, min_cols=6)
    axes = {"x": (1, 2, 3), "y": (2, 0, 4), "z": (0, 1, 5)}
    if los not in axes:
        raise JeansValueError(f"los must be 'x', 'y' or 'z', got {los!r}")
    i, j, k = axes[los]
    n = len(data)
    errors = _default_verr(verr, n, f"{path} (a Gaia Challenge table)")
    meta = {"source": str(path), "format": "gaia", "los": los}
    return _finish(data[:, i], data[:, j], data[:, k], errors, np.ones(n), meta)


def read_table(
    path: str | Path,
    *,
    distance_kpc: float | None = None,
    centre: tuple[float, float] | None = None,
    default_verr: float | None = None,
) -> StarTable:
    """Text table with a '# name name ...' header: (x, y) kpc or (ra, dec) degrees + centre + distance; v or vlos;
    verr/err and optional p/weight/membership columns.

    A table without a velocity-error column needs ``default_verr`` (km/s for every star, 0 for exact
    velocities); it is ignored when the table has one.
    """
    data, header = _load(path, min_cols=3)
    if header is None or len(header) != data.shape[1]:
        raise JeansFileError(f"{path}: need a '# col col ...' header naming all {data.shape[1]} columns")
    cols = {h.lower(): data[:, i] for i, h in enumerate(header)}

    def pick(*names: str) -> np.ndarray | None:
        for nm in names:
            if nm in cols:
                return cols[nm]
        return None

    v = pick("v", "vlos", "v_los", "vz")
    if v is None:
        raise JeansValueError(f"{path}: missing velocity column (v, vlos, v_los or vz); have {header}")
    x, y = pick("x", "x_kpc"), pick("y", "y_kpc")
    if x is None or y is None:
        ra, dec = pick("ra"), pick("dec")
        if ra is None or dec is None:
            raise JeansValueError(f"{path}: need x, y (kpc) or ra, dec (deg) columns; have {header}")
        if centre is None or distance_kpc is None:
            raise JeansValueError("ra/dec tables need centre=(ra0, dec0) and distance_kpc")
        x, y = radec_to_projected_kpc(ra, dec, ra0=centre[0], dec0=centre[1], distance_kpc=distance_kpc)
    verr = pick("verr", "err", "v_err", "error")
    w = pick("p", "weight", "membership", "pmem")
    n = len(v)
    w = np.ones(n) if w is None else w
    if np.any(w < 0) or np.any(w > 1):
        raise JeansValueError(f"{path}: membership weights must lie in [0, 1]")
    verr = _default_verr(default_verr, n, str(path)) if verr is None else verr
    return _finish(x, y, v, verr, w, {"source": str(path), "format": "table"})


def read_stars(
    path: str | Path,
    *,
    fmt: str = "auto",
    distance_kpc: float | None = None,
    centre: tuple[float, float] | None = None,
    verr: float | None = None,
) -> StarTable:
    """Dispatch on ``fmt`` in {'auto', 'table', 'walker', 'gaia'} ('auto': header -> table, >= 16 cols -> walker,
    6 cols -> gaia). ``verr`` (km/s) is the error of every star for data without a velocity-error column
    (Gaia Challenge mocks, tables without verr); such data are refused without it."""
    if fmt == "auto":
        p = Path(path)
        lines = _read_text(p).splitlines()
        first = next((ln for ln in lines if ln.strip()), "")
        ncol = len(first.replace(",", " ").split())
        fmt = "table" if first.lstrip().startswith("#") else "walker" if ncol >= 16 else "gaia" if ncol == 6 else ""
        if not fmt:
            raise JeansFileError(f"cannot guess the format of {p}; pass fmt='table', 'walker' or 'gaia'")
    if fmt == "walker":
        if distance_kpc is None:
            raise JeansValueError("Walker tables need distance_kpc")
        return read_walker(path, distance_kpc=distance_kpc, centre=centre)
    if fmt == "gaia":
        return read_gaia_challenge(path, verr=verr)
    if fmt == "table":
        return read_table(path, distance_kpc=distance_kpc, centre=centre, default_verr=verr)
    raise JeansValueError(f"unknown table format {fmt!r}")


def write_table(path: str | Path, stars: StarTable) -> None:
    """Write '# x y v verr p' (kpc, km/s; velocities include vsys)."""
    arr = np.column_stack([stars.x, stars.y, stars.v + stars.vsys, stars.verr, stars.weight])
    np.savetxt(path, arr, header="x y v verr p", fmt="%.8g")
