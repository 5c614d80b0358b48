"""Solve multi-mass LIMEPY models once and sample positions/velocities fast from cached tables."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.special import gammainc

from ..errors import GcsbiDependencyError, GcsbiRuntimeError, GcsbiValueError
from .snapshot import G_PC_KMS2_MSUN

__all__ = ["ModelTables", "LimepyGrid", "W0_NODES", "DELTA_NODES"]

#: Grid nodes in central potential W0 and mass-segregation index delta (GZ15 eq. 24).
W0_NODES = tuple(float(w) for w in np.arange(2.0, 12.01, 1.0))
DELTA_NODES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)

_N_PHI = 48  # dimensionless-potential grid of the velocity tables
_N_Q = 129  # quantile grid of the inverse CDFs
_N_X = 400  # fine grid to integrate the speed distribution


def _cache_dir() -> Path | None:
    """Folder for solved-model tables (``$GCSBI_CACHE`` or ``~/.cache/gcsbi``), ``None`` if unwritable."""
    base = os.environ.get("GCSBI_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gcsbi")
    path = Path(base) / "limepy"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


def _truncated_exp(y: np.ndarray, g: float) -> np.ndarray:
    """E_g(y) = exp(y) P(g, y) of Gieles & Zocchi (2015), 0 for y <= 0."""
    y = np.maximum(y, 0.0)
    return np.exp(y) * gammainc(g, y) if g > 0 else np.where(y > 0, np.exp(y), 0.0)


@dataclass(frozen=True, eq=False)
class ModelTables:
    """Sampling tables of one solved multi-mass model, scaled to M = 1 Msun, r_h = 1 pc.

    ``radius_q[j, k]``: radius of quantile ``q[k]`` of component j's mass profile.
    ``phi_r``/``phi_of_r``: dimensionless potential (in units of s^2) vs radius.
    ``u_table[j, i, k]``: quantile k of x/x_max, x = k^{3/2}, at potential ``phi_grid[i]``.
    """

    w0: float
    delta: float
    g: float
    s2: float  # velocity scale squared, (km/s)^2 at M = 1 Msun, r_h = 1 pc
    radius_q: np.ndarray
    mass_cdf_r: np.ndarray  # radii on which mass_cdf is tabulated
    mass_cdf: np.ndarray  # (J, R) normalised enclosed mass of each component
    phi_r: np.ndarray
    phi_of_r: np.ndarray
    phi_grid: np.ndarray
    u_table: np.ndarray
    r_t: float

    def sample_radius(self, j: np.ndarray, u: np.ndarray) -> np.ndarray:
        q = u * (_N_Q - 1)
        k = np.minimum(q.astype(np.int64), _N_Q - 2)
        f = q - k
        return (1 - f) * self.radius_q[j, k] + f * self.radius_q[j, k + 1]

    def sample_speed(self, j: np.ndarray, r: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Speed (km/s at M = 1, r_h = 1) of component ``j`` stars at radius ``r`` for uniforms ``u``."""
        phi = np.interp(r, self.phi_r, self.phi_of_r)
        a = np.clip(phi / self.phi_grid[-1] * (_N_PHI - 1), 0, _N_PHI - 1 - 1e-9)
        i = a.astype(np.int64)
        fa = a - i
        q = u * (_N_Q - 1)
        k = np.minimum(q.astype(np.int64), _N_Q - 2)
        fq = q - k
        t = self.u_table
        frac = (
            (1 - fa) * ((1 - fq) * t[j, i, k] + fq * t[j, i, k + 1])
            + fa * ((1 - fq) * t[j, i + 1, k] + fq * t[j, i + 1, k + 1])
        )
        x = frac * np.maximum(phi, 0.0) ** 1.5
        return np.sqrt(2.0 * x ** (2.0 / 3.0) * self.s2)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(getattr(self, k)) for k in self.__dataclass_fields__}


def _solve(w0: float, delta: float, g: float, mj: np.ndarray, mfrac: np.ndarray) -> ModelTables:
    try:
        import limepy
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise GcsbiDependencyError("astro-limepy is required for embedded cluster models") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = limepy.limepy(
                w0, g, mj=mj, Mj=mfrac, delta=delta, M=1.0, rh=1.0, G=G_PC_KMS2_MSUN
            )
    except Exception as exc:
        raise GcsbiRuntimeError(f"LIMEPY failed for W0={w0}, delta={delta}, g={g}: {exc}") from exc
    if not mod.converged:
        raise GcsbiRuntimeError(f"LIMEPY did not converge for W0={w0}, delta={delta}")
    r = np.asarray(mod.r, dtype=float)
    mcj = np.atleast_2d(np.asarray(mod.mcj, dtype=float))
    cdf = mcj / mcj[:, -1:]
    cdf[:, 0] = 0.0
    qs = np.linspace(0.0, 1.0, _N_Q)
    radius_q = np.empty((len(mj), _N_Q))
    for j in range(len(mj)):
        c = np.maximum.accumulate(cdf[j])
        keep = np.r_[True, np.diff(c) > 0]
        radius_q[j] = np.interp(qs, c[keep], r[keep])
    phi_hat = np.maximum(np.asarray(mod.interp_phi(r), dtype=float) / mod.s2, 0.0)
    phi_grid = np.linspace(0.0, float(phi_hat.max()), _N_PHI)
    x_unit = np.linspace(0.0, 1.0, _N_X)
    u_table = np.empty((len(mj), _N_PHI, _N_Q))
    for j in range(len(mj)):
        sig2fac = mod.s2 / mod.s2j[j]
        for i, ph in enumerate(phi_grid):
            if ph <= 0:
                u_table[j, i] = qs
                continue
            x = x_unit * ph**1.5
            pdf = _truncated_exp((ph - x ** (2.0 / 3.0)) * sig2fac, g)
            cum = np.r_[0.0, np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(x_unit))]
            if cum[-1] <= 0:
                u_table[j, i] = qs
                continue
            cum /= cum[-1]
            keep = np.r_[True, np.diff(cum) > 0]
            u_table[j, i] = np.interp(qs, cum[keep], x_unit[keep])
    return ModelTables(
        w0=float(w0),
        delta=float(delta),
        g=float(g),
        s2=float(mod.s2),
        radius_q=radius_q,
        mass_cdf_r=r,
        mass_cdf=cdf,
        phi_r=r,
        phi_of_r=phi_hat,
        phi_grid=phi_grid,
        u_table=u_table,
        r_t=float(mod.rt),
    )


@dataclass(frozen=True, eq=False)
class LimepyGrid:
    """Multi-mass LIMEPY models on a (W0, delta) grid for fixed mass bins, solved lazily and cached.

    Parameters:
        mass_bins: mean stellar mass of each component (Msun), increasing.
        mass_fractions: mass fraction of each component (normalised here).
        g: truncation parameter (1 = King, 2 = Wilson).
    """

    mass_bins: tuple[float, ...]
    mass_fractions: tuple[float, ...]
    g: float = 1.0

    def __post_init__(self) -> None:
        mj = np.asarray(self.mass_bins, dtype=float)
        mf = np.asarray(self.mass_fractions, dtype=float)
        if mj.ndim != 1 or mj.shape != mf.shape or len(mj) < 1:
            raise GcsbiValueError("mass_bins and mass_fractions must be 1D of equal length")
        if not (np.all(mj > 0) and np.all(mf > 0) and np.all(np.diff(mj) > 0)):
            raise GcsbiValueError("mass bins must be positive and increasing, fractions positive")
        if not 0.0 <= self.g < 3.5:
            raise GcsbiValueError(f"truncation g must be in [0, 3.5), got {self.g}")
        object.__setattr__(self, "mass_bins", tuple(float(m) for m in mj))
        object.__setattr__(self, "mass_fractions", tuple(float(f) for f in mf / mf.sum()))

    def __hash__(self) -> int:
        return hash((self.mass_bins, self.mass_fractions, self.g))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LimepyGrid) and hash(self) == hash(other)

    @property
    def key(self) -> str:
        blob = json.dumps([self.mass_bins, self.mass_fractions, self.g, _N_PHI, _N_Q, _N_X])
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def tables(self, w0: float, delta: float) -> ModelTables:
        """Tables of the node (w0, delta); solved once, then memory- and disk-cached."""
        return _node_tables(self, float(w0), float(delta))

    def component_of(self, mass: np.ndarray) -> np.ndarray:
        """Index of the component for each stellar mass: nearest bin in log mass (heavier -> top bin)."""
        edges = np.sqrt(np.asarray(self.mass_bins[1:]) * np.asarray(self.mass_bins[:-1]))
        return np.searchsorted(edges, np.asarray(mass, dtype=float))

    def node_weights(self, w0: float, delta: float) -> list[tuple[float, float, float]]:
        """Bilinear weights over the 4 grid nodes surrounding (w0, delta): [(w0_node, delta_node, weight)]."""
        if not W0_NODES[0] <= w0 <= W0_NODES[-1]:
            raise GcsbiValueError(f"W0 must be in [{W0_NODES[0]}, {W0_NODES[-1]}], got {w0}")
        if not DELTA_NODES[0] <= delta <= DELTA_NODES[-1]:
            raise GcsbiValueError(
                f"segregation delta must be in [{DELTA_NODES[0]}, {DELTA_NODES[-1]}], got {delta}"
            )
        out = []
        for nodes, v in ((W0_NODES, w0), (DELTA_NODES, delta)):
            i = min(int(np.searchsorted(nodes, v, side="right")) - 1, len(nodes) - 2)
            f = (v - nodes[i]) / (nodes[i + 1] - nodes[i])
            out.append(((nodes[i], 1.0 - f), (nodes[i + 1], f)))
        return [
            (wa, da, fw * fd)
            for wa, fw in out[0]
            for da, fd in out[1]
            if fw * fd > 1e-12
        ]


@lru_cache(maxsize=256)
def _node_tables(grid: LimepyGrid, w0: float, delta: float) -> ModelTables:
    folder = _cache_dir()
    path = folder / f"{grid.key}_w{w0:.3f}_d{delta:.3f}.npz" if folder else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            scalars = {k: float(arrays.pop(k)) for k in ("w0", "delta", "g", "s2", "r_t")}
            return ModelTables(**scalars, **arrays)
        except Exception:  # corrupt cache entry: solve again and overwrite
            pass
    tables = _solve(
        w0, delta, grid.g, np.asarray(grid.mass_bins), np.asarray(grid.mass_fractions)
    )
    if path is not None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **tables.to_arrays())
            tmp.replace(path)
        except OSError:
            pass
    return tables
