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
become ``phase``, ``log_l``, ``log_teff`` and ``log_g`` (Teff from L and R, g from M
and R when not given). Without them these are NaN / ``PHASE_UNKNOWN`` and
``abs_mag`` is None; :func:`attach_photometry` then assigns isochrone magnitudes.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiDependencyError, GcsbiFileError, GcsbiValueError
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
]

#: Formats :func:`read_snapshot` understands.
FORMATS: tuple[str, ...] = ("table", "clustertools", "nbody6pp", "petar", "cmc", "gcsbi")

#: gcsbi evolutionary phase codes used for N-body stellar types. The luminous phases
#: follow the MIST EEP phase numbers (0 MS, 2 RGB incl. subgiants, 3 CHeB, 4 EAGB,
#: 5 TPAGB, 9 Wolf-Rayet/naked He star); remnants get 10-12. Provisional: to be
#: replaced by the constants of ``gcsbi.stars`` once that module defines them.
PHASE_CODES: dict[str, int] = {
    "MS": 0,
    "RGB": 2,
    "CHEB": 3,
    "EAGB": 4,
    "TPAGB": 5,
    "HE_STAR": 9,
    "WD": 10,
    "NS": 11,
    "BH": 12,
    "UNKNOWN": PHASE_UNKNOWN,
}

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

#: BSE ``kstar`` -> gcsbi phase name (key of :data:`PHASE_CODES`). The Hertzsprung gap
#: is a subgiant, which MIST counts in its RGB phase; naked helium stars map to the
#: MIST Wolf-Rayet phase. Massless remnants (15) are dropped by the readers.
KSTAR_TO_PHASE: dict[int, str] = {
    0: "MS", 1: "MS", 2: "RGB", 3: "RGB", 4: "CHEB", 5: "EAGB", 6: "TPAGB",
    7: "HE_STAR", 8: "HE_STAR", 9: "HE_STAR", 10: "WD", 11: "WD", 12: "WD",
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
    scales = readers.UnitScales(
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
    return readers.to_snapshot(raw, path=path, age_gyr=age_gyr, feh=feh, recentre=recentre)


# -------------------------------------------------------------------- photometry
def attach_photometry(
    snapshot: Snapshot,
    *,
    age_gyr: float | None = None,
    feh: float | None = None,
    rng: np.random.Generator,
    filters: tuple[str, ...] | list[str] | None = None,
) -> Snapshot:
    """Give a snapshot without stellar columns isochrone stellar parameters and magnitudes.

    N-body codes without stellar evolution carry only dynamical masses. They are taken
    as *initial* masses on the isochrone of ``age_gyr``/``feh`` (default: the
    snapshot's): exact for main-sequence stars, which keep their initial mass, and a
    good approximation up to the turn-off; particles above the isochrone's maximum
    initial mass become dark remnants (``abs_mag = inf``). ``rng`` is passed to the
    population model for any stochastic choice (reproducible with a seeded generator).

    Uses the ``gcsbi.stars`` population API; raises ``GcsbiDependencyError`` while that
    is not available.
    """
    age = snapshot.age_gyr if age_gyr is None else float(age_gyr)
    metal = snapshot.feh if feh is None else float(feh)
    if not (np.isfinite(age) and np.isfinite(metal)):
        raise GcsbiValueError(
            f"attach_photometry needs a finite age and [Fe/H], got age_gyr={age}, feh={metal}"
        )
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator")
    try:
        from ..stars import StellarPopulation  # type: ignore[attr-defined]
    except ImportError as exc:
        raise GcsbiDependencyError(
            "attach_photometry needs gcsbi.stars.StellarPopulation, which is not available yet"
        ) from exc
    per_star = getattr(StellarPopulation, "evolve_masses", None)
    if per_star is None:  # pragma: no cover - depends on the stars API
        raise GcsbiDependencyError(
            "gcsbi.stars.StellarPopulation has no per-star evolution method (evolve_masses)"
        )
    kwargs: dict[str, Any] = {"age_gyr": age, "feh": metal}
    if filters is not None:
        kwargs["filters"] = tuple(filters)
    pop = StellarPopulation(**kwargs)
    stars = pop.evolve_masses(snapshot.current_mass, rng=rng)  # pragma: no cover
    return snapshot.replace(  # pragma: no cover
        phase=stars["phase"],
        log_teff=stars["log_teff"],
        log_g=stars["log_g"],
        log_l=stars["log_l"],
        abs_mag=stars["abs_mag"] + 0.0 * snapshot.weight[:, None],
        filters=tuple(pop.filters),
        age_gyr=age,
        feh=metal,
    )
