"""Real N-body / Monte Carlo cluster snapshots as :class:`~gcsbi.clusters.snapshot.Snapshot`.

Public entry points::

    read_snapshot(path, format=None, ...)   one file -> Snapshot (pc, km/s, Msun, centred)
    detect_format(path)                     which reader a file needs
    attach_photometry(snapshot, ...)        magnitudes for snapshots without photometry
    kstar_to_phase(kstar)                   BSE/SSE stellar type -> gcsbi phase code
    SnapshotLibrary                         (in :mod:`gcsbi.clusters.library`) a folder of snapshots

Formats (``format=``; the per-format parsers and the references followed live in
:mod:`gcsbi.clusters.readers`):

========== ====================================================================
table      astropy ``Table.read``: FITS, ECSV, CSV, VOTable, HDF5 (``table_path=``)
clustertools whitespace columns ``m x y z vx vy vz [id]`` (webbjj/clustertools tests)
nbody6pp   NBODY6++GPU HDF5 ``snap.40_*.h5part`` (``Step#N`` groups, both layouts)
petar      PeTar ASCII snapshot ``data.N`` (header ``file_id n time [offsets]``)
cmc        CMC ``*.snapNNNN.dat[.gz]`` or ``*.snapshots.h5`` + ``*.conv.sh``
gcsbi      :meth:`Snapshot.save` ``.npz``
========== ====================================================================

Units: ``units="auto"`` uses each code's usual output units (NBODY6++GPU: pc, km/s,
Msun; PeTar: Msun, pc, pc/Myr; tables: astropy column units, else pc, km/s, Msun;
CMC: code units converted with ``conv.sh``). ``units="nbody"`` reads Hénon N-body
units (G = M_tot = 1, E = -1/4) and needs ``length_scale_pc`` and
``mass_scale_msun`` (NBODY6++GPU files carry them as RBAR/ZMBAR/VSTAR); the velocity
unit is ``velocity_scale_kms`` or ``sqrt(G M / R)``.

Stellar columns (BSE/SSE ``kstar``/``KW``/``startype``, luminosity, Teff, radius)
become ``phase`` (:data:`KSTAR_TO_PHASE`), ``log_l``, ``log_teff`` and ``log_g`` (Teff
from L and R, g from M and R when not given). Without them these are NaN /
``PHASE_UNKNOWN``. Readers never set ``abs_mag``: :func:`attach_photometry` adds
magnitudes from the stellar columns (bolometric corrections) where present, else
from the MIST isochrone of the snapshot's age and [Fe/H].
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiFileError, GcsbiValueError
from ..stars import Phase
from ..stars.bolometric import LOG_G_SUN, TEFF_SUN
from .readers import Z_SUN, RawParticles, UnitScales, as_float, check_finite
from .snapshot import PHASE_UNKNOWN, Snapshot

__all__ = [
    "FORMATS",
    "PHASE_CODES",
    "KSTAR_NAMES",
    "KSTAR_TO_PHASE",
    "kstar_to_phase",
    "detect_format",
    "read_snapshot",
    "attach_photometry",
    "to_snapshot",
    "shrinking_sphere_centre",
]

#: Formats :func:`read_snapshot` understands.
FORMATS: tuple[str, ...] = ("table", "clustertools", "nbody6pp", "petar", "cmc", "gcsbi")

#: gcsbi evolutionary phase codes (:class:`gcsbi.stars.Phase`) by name, plus UNKNOWN (-1).
PHASE_CODES: dict[str, int] = {**{p.name: int(p) for p in Phase}, "UNKNOWN": PHASE_UNKNOWN}

#: Hurley, Pols & Tout (2000) SSE/BSE stellar types (NBODY6++ ``KW``, CMC ``startype``,
#: PeTar ``star.type``).
KSTAR_NAMES: dict[int, str] = {
    0: "low-mass MS (M < 0.7, convective)",
    1: "MS",
    2: "Hertzsprung gap",
    3: "first giant branch",
    4: "core helium burning",
    5: "early AGB",
    6: "thermally pulsing AGB",
    7: "naked helium MS",
    8: "naked helium Hertzsprung gap",
    9: "naked helium giant branch",
    10: "helium white dwarf",
    11: "carbon/oxygen white dwarf",
    12: "oxygen/neon white dwarf",
    13: "neutron star",
    14: "black hole",
    15: "massless remnant",
}

#: BSE ``kstar`` -> gcsbi phase name (a :class:`gcsbi.stars.Phase` member name). The
#: Hertzsprung gap is the subgiant branch, which gcsbi counts in RGB (as MIST); naked
#: helium stars are Wolf-Rayet-like (WR); massless remnants (15) are dropped by the readers.
KSTAR_TO_PHASE: dict[int, str] = {
    0: "MS", 1: "MS", 2: "RGB", 3: "RGB", 4: "CHEB", 5: "EAGB", 6: "TPAGB",
    7: "WR", 8: "WR", 9: "WR", 10: "WD", 11: "WD", 12: "WD",
    13: "NS", 14: "BH", 15: "UNKNOWN",
}  # fmt: skip

_KSTAR_LUT = np.array([PHASE_CODES[KSTAR_TO_PHASE[k]] for k in range(16)], dtype=np.int8)


def kstar_to_phase(kstar: np.ndarray) -> np.ndarray:
    """Map BSE stellar types (0-15; anything else -> unknown) to gcsbi phase codes (int8)."""
    k = np.asarray(kstar)
    out = np.full(k.shape, PHASE_UNKNOWN, dtype=np.int8)
    if k.size:
        ki = np.where(np.isfinite(k), k, -1).astype(np.int64)
        ok = (ki >= 0) & (ki <= 15)
        out[ok] = _KSTAR_LUT[ki[ok]]
    return out


# --------------------------------------------------------------------- detection
_TABLE_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".ecsv", ".csv", ".vot", ".xml")
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5")
_CMC_TEXT = re.compile(r"\.snap\d+\.dat(\.gz)?$")
_PETAR_NAME = re.compile(r"^data\.\d+$")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".fits.gz", ".fit.gz", ".dat.gz", ".txt.gz"):
        if name.endswith(double):
            return double
    return path.suffix.lower()


def _first_lines(path: Path, n: int = 2) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    lines: list[str] = []
    try:
        with opener(path, "rt", errors="replace") as fh:  # type: ignore[operator]
            for line in fh:
                if line.strip():
                    lines.append(line)
                if len(lines) >= n:
                    break
    except (OSError, EOFError) as exc:
        raise GcsbiFileError(f"cannot read {path}: {exc}") from exc
    return lines


def _detect_hdf5(path: Path) -> str:
    import h5py

    try:
        with h5py.File(path, "r") as fh:
            keys = list(fh.keys())
    except OSError as exc:
        raise GcsbiFileError(f"{path} is not a readable HDF5 file: {exc}") from exc
    if any(k.startswith("Step#") for k in keys):
        return "nbody6pp"
    if any(re.match(r"^\d+\(t=", k) for k in keys) or ".snapshots." in path.name:
        return "cmc"
    return "table"


def detect_format(path: str | Path) -> str:
    """Guess the format of a snapshot file from its name and first bytes/keys.

    Raises ``GcsbiFileError`` (missing file, or no reader recognises it).
    """
    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"snapshot file not found: {path}")
    suffix = _suffix(path)
    if suffix == ".npz":
        return "gcsbi"
    if suffix == ".h5part":
        return "nbody6pp"
    if suffix in _HDF5_SUFFIXES:
        return _detect_hdf5(path)
    if suffix in _TABLE_SUFFIXES:
        return "table"
    if _CMC_TEXT.search(path.name.lower()):
        return "cmc"
    lines = _first_lines(path)
    if lines and lines[0].lstrip().startswith("# t="):
        return "cmc"
    if len(lines) == 2:
        head, row = lines[0].split(), lines[1].split()
        if len(head) in (3, 9) and len(row) >= 14 and _is_int(head[0]) and _is_int(head[1]):
            return "petar"
        if 7 <= len(row) <= 12 and not lines[0].lstrip().startswith("#") and len(head) == len(row):
            return "clustertools"
    if _PETAR_NAME.match(path.name):
        return "petar"
    raise GcsbiFileError(
        f"cannot tell the format of {path}; pass format= one of {', '.join(FORMATS)}"
    )


def _is_int(token: str) -> bool:
    try:
        int(token)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------- reading
def read_snapshot(
    path: str | Path,
    *,
    format: str | None = None,  # noqa: A002 - mirrors astropy's Table.read
    age_gyr: float | None = None,
    feh: float | None = None,
    units: str = "auto",
    length_scale_pc: float | None = None,
    mass_scale_msun: float | None = None,
    velocity_scale_kms: float | None = None,
    rng: np.random.Generator | None = None,
    step: int | str | None = None,
    conv: str | Path | dict[str, float] | None = None,
    table_path: str | None = None,
    recentre: bool = True,
    **column_map: str,
) -> Snapshot:
    """Read one snapshot file into a :class:`Snapshot` (pc, km/s, Msun).

    Args:
        path: the file.
        format: one of :data:`FORMATS`; guessed by :func:`detect_format` when None.
        age_gyr, feh: population age and [Fe/H]; override what the file says. The age
            defaults to the snapshot time when the file gives it in physical units, the
            metallicity to the file's Z (NBODY6++GPU scalars) as log10(Z / 0.0142);
            NaN when unknown.
        units: ``"auto"``, ``"physical"`` or ``"nbody"`` (see the module docstring).
        length_scale_pc, mass_scale_msun, velocity_scale_kms: N-body unit scales.
        rng: required for CMC files (random isotropic angles turn r, vr, vt into 3D).
        step: NBODY6++GPU ``Step#`` index (default 0, the file's nominal time, as in
            clustertools) or CMC HDF5 snapshot (index into time-sorted keys or key
            name; default the last).
        conv: CMC unit file (``*.conv.sh`` path or dict); default the ``conv.sh``
            next to the snapshot with the same prefix.
        table_path: dataset path inside an HDF5 table file.
        recentre: shift positions to the shrinking-sphere centre and velocities to
            the mean velocity inside the half-mass radius (CMC models are centred
            by construction and never shifted).
        **column_map: table column overrides, e.g. ``x="X_pc", mass="Mass"``; keys:
            ``x y z vx vy vz mass initial_mass kstar luminosity log_l teff log_teff
            radius log_g``.

    Raises:
        GcsbiFileError: missing, truncated, corrupt or unrecognised file.
        GcsbiValueError: missing columns, NaNs, bad shapes or bad arguments.
    """
    from . import readers

    path = Path(path)
    if not path.is_file():
        raise GcsbiFileError(f"snapshot file not found: {path}")
    fmt = detect_format(path) if format is None else str(format).lower()
    if fmt not in FORMATS:
        raise GcsbiValueError(f"unknown snapshot format {format!r}; expected one of {FORMATS}")
    if units not in ("auto", "physical", "nbody"):
        raise GcsbiValueError(f"units must be 'auto', 'physical' or 'nbody', got {units!r}")
    if column_map and fmt != "table":
        raise GcsbiValueError(f"column overrides {sorted(column_map)} only apply to format='table'")
    if fmt == "gcsbi":
        snap = Snapshot.load(path)
        changes: dict[str, Any] = {}
        if age_gyr is not None:
            changes["age_gyr"] = float(age_gyr)
        if feh is not None:
            changes["feh"] = float(feh)
        return snap.replace(**changes) if changes else snap
    scales = UnitScales(
        units=units,
        length_pc=length_scale_pc,
        mass_msun=mass_scale_msun,
        velocity_kms=velocity_scale_kms,
    )
    if fmt == "table":
        raw = readers.read_table(path, scales=scales, table_path=table_path, column_map=column_map)
    elif fmt == "clustertools":
        raw = readers.read_clustertools(path, scales=scales)
    elif fmt == "nbody6pp":
        raw = readers.read_nbody6pp(path, scales=scales, step=step)
    elif fmt == "petar":
        raw = readers.read_petar(path, scales=scales)
    else:
        raw = readers.read_cmc(path, rng=rng, step=step, conv=conv, units=units)
    raw.meta.setdefault("format", fmt)
    return to_snapshot(raw, path=path, age_gyr=age_gyr, feh=feh, recentre=recentre)


# ------------------------------------------------------------------ to Snapshot

def shrinking_sphere_centre(positions: np.ndarray, mass: np.ndarray, *, shrink: float = 0.9) -> np.ndarray:
    """Centre of mass of ever smaller spheres (Power et al. 2003), robust to escapers."""
    pos, m = np.asarray(positions, dtype=np.float64), np.asarray(mass, dtype=np.float64)
    w = m if m.sum() > 0 else np.ones_like(m)
    centre = np.average(pos, axis=0, weights=w)
    inside = np.ones(len(pos), dtype=bool)
    radius = float(np.sqrt(((pos - centre) ** 2).sum(axis=1)).max()) if len(pos) else 0.0
    n_min = min(len(pos), max(10, len(pos) // 100))
    while radius > 0:
        radius *= shrink
        sel = inside & (((pos - centre) ** 2).sum(axis=1) < radius**2)
        if sel.sum() < n_min or w[sel].sum() <= 0:
            break
        inside = sel
        centre = np.average(pos[sel], axis=0, weights=w[sel])
    return centre


def _log10_pos(a: np.ndarray) -> np.ndarray:
    """log10 where positive, NaN elsewhere (no warnings)."""
    a = np.asarray(a, dtype=np.float64)
    ok = a > 0
    return np.where(ok, np.log10(np.where(ok, a, 1.0)), np.nan)


def _stellar(raw: RawParticles, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log_teff, log_g, log_l); Teff from L and R and g from M and R when not given."""
    nan = np.full(mass.size, np.nan)
    lum = raw.luminosity if raw.luminosity is not None else nan
    rad = raw.radius if raw.radius is not None else nan
    log_l, log_r = _log10_pos(lum), _log10_pos(rad)
    log_teff = _log10_pos(raw.teff) if raw.teff is not None else np.log10(TEFF_SUN) + 0.25 * log_l - 0.5 * log_r
    log_g = raw.log_g if raw.log_g is not None else LOG_G_SUN + _log10_pos(mass) - 2.0 * log_r
    return log_teff, np.asarray(log_g, dtype=np.float64), log_l


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer, int, bool, np.bool_)):
        return value.item() if hasattr(value, "item") else value
    return value if isinstance(value, str) or value is None else str(value)


def to_snapshot(
    raw: RawParticles, *, path: Path, age_gyr: float | None, feh: float | None, recentre: bool
) -> Snapshot:
    """Validate, drop massless remnants, centre, derive stellar fields -> :class:`Snapshot`."""
    pos = as_float(raw.positions, "positions", path)
    vel = as_float(raw.velocities, "velocities", path)
    mass = as_float(raw.mass, "mass", path).reshape(-1)
    n = mass.size
    if n == 0:
        raise GcsbiFileError(f"{path}: no particles")
    if pos.shape != (n, 3) or vel.shape != (n, 3):
        raise GcsbiValueError(f"{path.name}: positions {pos.shape} / velocities {vel.shape} do not match {n} masses")
    check_finite(path, positions=pos, velocities=vel, mass=mass)
    if (mass < 0).any():
        raise GcsbiValueError(f"{path.name}: negative masses")
    keep = np.ones(n, dtype=bool)
    if raw.kstar is not None:
        keep &= np.asarray(raw.kstar) != 15  # massless remnants
    init = mass if raw.initial_mass is None else np.where(np.isfinite(raw.initial_mass), raw.initial_mass, mass)
    log_teff, log_g, log_l = _stellar(raw, mass)
    phase = kstar_to_phase(raw.kstar) if raw.kstar is not None else np.full(n, PHASE_UNKNOWN, np.int8)
    if not keep.any():
        raise GcsbiFileError(f"{path}: only massless remnants (kstar 15)")
    pos, vel, mass, init = pos[keep], vel[keep], mass[keep], np.asarray(init, dtype=np.float64)[keep]
    if recentre and not raw.centred:
        centre = shrinking_sphere_centre(pos, mass)
        pos = pos - centre
        r = np.sqrt((pos**2).sum(axis=1))
        order = np.argsort(r)
        cum = np.cumsum(mass[order])
        inner = order[: max(1, int(np.searchsorted(cum, 0.5 * cum[-1])) + 1)]
        w = mass[inner] if mass[inner].sum() > 0 else None
        vel = vel - np.average(vel[inner], axis=0, weights=w)
    if age_gyr is not None:
        age = float(age_gyr)
    else:
        age = raw.time_myr / 1000.0 if raw.time_myr is not None else np.nan
    if feh is not None:
        metal = float(feh)
    else:
        metal = float(np.log10(raw.z_metal / Z_SUN)) if raw.z_metal else np.nan
    meta = dict(raw.meta)
    meta.update(
        {"file": str(path), "time_myr": raw.time_myr, "n_dropped_massless": int((~keep).sum()),
         "stellar_columns": raw.kstar is not None or raw.luminosity is not None}
    )  # fmt: skip
    return Snapshot(
        positions=pos,
        velocities=vel,
        initial_mass=init,
        current_mass=mass,
        weight=np.ones(pos.shape[0]),
        phase=phase[keep],
        log_teff=log_teff[keep],
        log_g=log_g[keep],
        log_l=log_l[keep],
        abs_mag=None,
        filters=(),
        age_gyr=age,
        feh=metal,
        source=path.name,
        meta=_jsonable(meta),
    )


# -------------------------------------------------------------------- photometry
def attach_photometry(
    snapshot: Snapshot,
    *,
    age_gyr: float | None = None,
    feh: float | None = None,
    rng: np.random.Generator,
    filters: tuple[str, ...] | list[str] | None = None,
) -> Snapshot:
    """Absolute magnitudes (and missing stellar parameters) for every particle.

    * Particles with stellar columns (finite ``log_l``, ``log_teff``, ``log_g``): MIST/C3K
      bolometric corrections, ``M = 4.74 - 2.5 log L - BC`` (``gcsbi.stars.bolometric``).
    * NS and BH (phase from ``kstar``): dark, ``abs_mag = inf``.
    * Particles without stellar columns: the N-body mass is taken as the *initial* mass
      on the MIST isochrone of ``age_gyr``/``feh`` (default: the snapshot's), evolved with
      :meth:`gcsbi.stars.StellarPopulation.evolve`. Exact for main-sequence stars
      (which keep their initial mass) and close up to the turn-off; more massive
      particles become white dwarfs (Cummings 2018 IFMR + Mestel cooling, as in
      ``gcsbi.stars``) or dark NS/BH. Masses below the isochrone's lowest mass take
      its faintest star. The dynamical masses (``current_mass``) are left unchanged;
      ``initial_mass`` is set to the N-body mass for these particles.

    Particles standing for ``weight`` stars get ``-2.5 log10(weight)`` brighter
    magnitudes. The result is deterministic; ``rng`` is accepted for API symmetry with
    the samplers and is not consumed.
    """
    from ..stars import StellarPopulation
    from ..stars.bolometric import MBOL_SUN, bolometric_corrections

    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator")
    age = snapshot.age_gyr if age_gyr is None else float(age_gyr)
    metal = snapshot.feh if feh is None else float(feh)
    if not (np.isfinite(age) and np.isfinite(metal)):
        raise GcsbiValueError(f"attach_photometry needs a finite age and [Fe/H], got age_gyr={age}, feh={metal}")
    pop = StellarPopulation(age_gyr=age, feh=metal, **({} if filters is None else {"filters": tuple(filters)}))
    nf = len(pop.filters)
    n = len(snapshot)
    phase = snapshot.phase.copy()
    lt, lg, ll = snapshot.log_teff.copy(), snapshot.log_g.copy(), snapshot.log_l.copy()
    mi = snapshot.initial_mass.copy()
    mags = np.full((n, nf), np.inf)
    dark = np.isin(phase, [int(Phase.NS), int(Phase.BH)])
    known = ~dark & np.isfinite(lt) & np.isfinite(lg) & np.isfinite(ll)
    iso = ~dark & ~known
    if iso.any():  # N-body mass taken as the initial mass on the isochrone
        ev = pop.evolve(snapshot.current_mass[iso])
        mi[iso], phase[iso], mags[iso] = ev.initial_mass, ev.phase, ev.abs_mag
        lt[iso], lg[iso], ll[iso] = ev.log_teff, ev.log_g, ev.log_l
    if known.any():
        bc = bolometric_corrections(lt[known], lg[known], metal, pop.filters)
        mags[known] = MBOL_SUN - 2.5 * ll[known][:, None] - bc
    with np.errstate(divide="ignore"):
        mags = mags - 2.5 * np.log10(snapshot.weight)[:, None]
    mags[~np.isfinite(mags)] = np.inf
    meta = dict(snapshot.meta, photometry="isochrone" if not known.any() else "stellar columns + isochrone")
    return snapshot.replace(
        initial_mass=mi, phase=phase, log_teff=lt, log_g=lg, log_l=ll, abs_mag=mags,
        filters=tuple(pop.filters), age_gyr=age, feh=metal, meta=meta,
    )  # fmt: skip
