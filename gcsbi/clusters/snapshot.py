"""Snapshot: an immutable set of star particles with stellar and phase-space data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GcsbiFileError, GcsbiValueError
from ..stars.population import StarSample

__all__ = ["Snapshot", "PHASE_UNKNOWN", "random_rotation", "virial_ratio", "G_PC_KMS2_MSUN"]

#: Gravitational constant in pc (km/s)^2 / Msun.
G_PC_KMS2_MSUN = 4.300917270e-3
#: Phase code used when a reader has no stellar evolutionary information.
PHASE_UNKNOWN = -1

_FORMAT_VERSION = 1
#: Per-star columns, as a :class:`~gcsbi.stars.population.StarSample` defines them.
_ARRAYS_1D = tuple(f.name for f in fields(StarSample) if f.name not in ("abs_mag", "filters"))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix (Haar measure), drawn from ``rng``."""
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def virial_ratio(positions: np.ndarray, velocities: np.ndarray, mass: np.ndarray) -> float:
    """Virial ratio K/|W| (0.5 in equilibrium), masses in Msun, pc, km/s.

    W = -G sum_i m_i M(<r_i) / r_i from the spherically averaged mass profile: exact for a
    spherical system, a good approximation for mildly flattened ones, and O(n log n)
    instead of the O(n^2) pair sum.
    """
    r = np.sqrt((positions**2).sum(axis=1))
    order = np.argsort(r)
    m, rs = mass[order], np.maximum(r[order], 1e-12)
    w = G_PC_KMS2_MSUN * np.sum(m * (np.cumsum(m) - 0.5 * m) / rs)
    return float(0.5 * np.sum(mass * (velocities**2).sum(axis=1)) / w)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """Star particles of a cluster at one time.

    A particle stands for ``weight`` identical stars (1 for individually sampled
    stars; more for the faint remainder of a fast population sample). Masses
    are per star in Msun; ``particle_mass = current_mass * weight``.

    Attributes:
        positions: (n, 3) pc, cluster centre at the origin.
        velocities: (n, 3) km/s, centre-of-mass frame.
        initial_mass, current_mass: (n,) Msun per star.
        weight: (n,) number of stars the particle represents.
        phase: (n,) int8 evolutionary phase code (see ``gcsbi.stars``), -1 unknown.
        log_teff, log_g, log_l: (n,) stellar parameters (NaN where unknown).
        abs_mag: (n, F) absolute Vega magnitude of each particle (all its stars) in ``filters``,
            ``inf`` for dark particles; ``None`` if no photometry attached.
        filters: names of the ``abs_mag`` columns.
        age_gyr, feh: population age and metallicity.
        source: where it came from (``"limepy"``, a file name, ...).
        meta: extra JSON-serialisable metadata (model parameters, ...).
    """

    positions: np.ndarray
    velocities: np.ndarray
    initial_mass: np.ndarray
    current_mass: np.ndarray
    weight: np.ndarray
    phase: np.ndarray
    log_teff: np.ndarray
    log_g: np.ndarray
    log_l: np.ndarray
    abs_mag: np.ndarray | None
    filters: tuple[str, ...]
    age_gyr: float
    feh: float
    source: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        vel = np.asarray(self.velocities, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise GcsbiValueError(f"positions must have shape (n, 3), got {pos.shape}")
        n = pos.shape[0]
        if vel.shape != (n, 3):
            raise GcsbiValueError(f"velocities must have shape ({n}, 3), got {vel.shape}")
        if not (np.isfinite(pos).all() and np.isfinite(vel).all()):
            raise GcsbiValueError("positions and velocities must be finite (found NaN/inf)")
        object.__setattr__(self, "positions", _readonly(pos))
        object.__setattr__(self, "velocities", _readonly(vel))
        for name in _ARRAYS_1D:
            dtype = np.int8 if name == "phase" else np.float64
            a = np.asarray(getattr(self, name), dtype=dtype)
            if a.shape == ():
                a = np.full(n, a, dtype=dtype)
            if a.shape != (n,):
                raise GcsbiValueError(f"{name} must have shape ({n},), got {a.shape}")
            object.__setattr__(self, name, _readonly(a))
        for name in ("initial_mass", "current_mass", "weight"):
            a = getattr(self, name)
            if not (np.isfinite(a).all() and (a >= 0).all()):
                raise GcsbiValueError(f"{name} must be finite and non-negative")
        if self.abs_mag is not None:
            mags = np.asarray(self.abs_mag, dtype=np.float64)
            if mags.shape != (n, len(self.filters)):
                raise GcsbiValueError(
                    f"abs_mag must have shape ({n}, {len(self.filters)}) for filters "
                    f"{self.filters}, got {mags.shape}"
                )
            if np.isnan(mags).any():
                raise GcsbiValueError("abs_mag contains NaN (use +inf for dark particles)")
            object.__setattr__(self, "abs_mag", _readonly(mags))
        object.__setattr__(self, "filters", tuple(str(f) for f in self.filters))
        object.__setattr__(self, "age_gyr", float(self.age_gyr))
        object.__setattr__(self, "feh", float(self.feh))
        object.__setattr__(self, "meta", dict(self.meta))

    @classmethod
    def from_stars(cls, stars: StarSample, *, positions: np.ndarray, velocities: np.ndarray, age_gyr: float,
                   feh: float, source: str = "unknown", meta: dict[str, Any] | None = None) -> Snapshot:
        """A snapshot of a population sample's particles placed at ``positions`` with ``velocities``."""
        columns = {f.name: getattr(stars, f.name) for f in fields(StarSample)}
        return cls(positions=positions, velocities=velocities, age_gyr=age_gyr, feh=feh, source=source,
                   meta=dict(meta or {}), **columns)

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return self.positions.shape[0]

    def __repr__(self) -> str:
        return (
            f"Snapshot(n={len(self)}, mass={self.total_mass:.4g} Msun, age={self.age_gyr} Gyr, "
            f"feh={self.feh}, source={self.source!r})"
        )

    @property
    def particle_mass(self) -> np.ndarray:
        """Mass of each particle (all the stars it stands for), Msun."""
        return self.current_mass * self.weight

    @property
    def total_mass(self) -> float:
        return float(self.particle_mass.sum())

    @property
    def n_stars(self) -> float:
        return float(self.weight.sum())

    def replace(self, **changes: Any) -> "Snapshot":
        """A copy with some attributes changed (validated again)."""
        return replace(self, **changes)

    # ------------------------------------------------------------- geometry
    def rotated(self, rotation: np.ndarray) -> "Snapshot":
        """The snapshot seen after applying a 3x3 rotation matrix to positions and velocities."""
        rot = np.asarray(rotation, dtype=np.float64)
        if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-8):
            raise GcsbiValueError("rotation must be a 3x3 orthogonal matrix")
        return self.replace(positions=self.positions @ rot.T, velocities=self.velocities @ rot.T)

    def random_view(self, rng: np.random.Generator) -> "Snapshot":
        """The snapshot under a uniformly random viewing angle."""
        return self.rotated(random_rotation(rng))

    def half_mass_radius(self, *, projected: bool = False) -> float:
        """Radius (pc) enclosing half the current mass, 3D or projected on the x-y plane."""
        pos = self.positions[:, :2] if projected else self.positions
        r = np.sqrt((pos**2).sum(axis=1))
        order = np.argsort(r)
        cum = np.cumsum(self.particle_mass[order])
        return float(np.interp(0.5 * cum[-1], cum, r[order]))

    def virial_ratio(self) -> float:
        """Virial ratio Q = K/|W| of the particles (see :func:`virial_ratio`)."""
        return virial_ratio(self.positions, self.velocities, self.particle_mass)

    # ----------------------------------------------------------- photometry
    def integrated_abs_mag(self) -> dict[str, float]:
        """Integrated absolute Vega magnitude in each attached filter."""
        if self.abs_mag is None:
            raise GcsbiValueError("this snapshot has no photometry attached")
        flux = np.power(10.0, -0.4 * self.abs_mag).sum(axis=0)
        with np.errstate(divide="ignore"):
            return {f: float(-2.5 * np.log10(x)) for f, x in zip(self.filters, flux)}

    # -------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Save to a compressed ``.npz`` file (no pickles); returns the path."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        header = {
            "format": "gcsbi.Snapshot",
            "version": _FORMAT_VERSION,
            "filters": list(self.filters),
            "age_gyr": self.age_gyr,
            "feh": self.feh,
            "source": self.source,
            "meta": self.meta,
        }
        arrays = {name: getattr(self, name) for name in ("positions", "velocities", *_ARRAYS_1D)}
        if self.abs_mag is not None:
            arrays["abs_mag"] = self.abs_mag
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, header=np.array(json.dumps(header)), **arrays)
        tmp.replace(path)  # atomic: an interrupted save never leaves a half-written file
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Snapshot":
        """Load a snapshot written by :meth:`save`; corrupt files raise ``GcsbiFileError``."""
        path = Path(path)
        if not path.is_file():
            raise GcsbiFileError(f"snapshot file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                arrays = {k: data[k] for k in data.files if k != "header"}
        except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError, EOFError...
            raise GcsbiFileError(f"cannot read snapshot {path}: {exc}") from exc
        if header.get("format") != "gcsbi.Snapshot":
            raise GcsbiFileError(f"{path} is not a gcsbi snapshot file")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in arrays.items() if k in known}
        kwargs.setdefault("abs_mag", None)
        return cls(
            **kwargs,
            filters=tuple(header["filters"]),
            age_gyr=header["age_gyr"],
            feh=header["feh"],
            source=header["source"],
            meta=header["meta"],
        )
