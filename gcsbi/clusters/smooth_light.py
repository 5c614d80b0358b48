"""Clusters whose faint stars are smooth light: resolved stars as particles, the rest as projected profiles.

:func:`sample_cluster_light` is :func:`~gcsbi.clusters.models.sample_cluster` for massive
clusters: the brightest stars (:func:`gcsbi.stars.light_groups.sample_resolved`) get positions
and velocities from the multi-mass LIMEPY model as before; every other star is described by
:class:`UnresolvedLight`, the *expected* surface density of each luminosity group on the sky
(stars per pc^2 vs projected radius), taken from the projected mass profile of the model
component its stars belong to (so mass segregation is kept), with the same length scale as
the particles. A renderer draws Poisson star counts per pixel from it
(:mod:`gcsbi.observe.star_counts`), which is what sampling every star and binning it in
pixels would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import GcsbiValueError
from ..stars.light_groups import UnresolvedStars
from .footprint import interval_fractions, resolve_in_footprint
from .limepy_grid import LimepyGrid, ModelTables
from .models import ClusterParams, _checked_population, _place, reference_grid
from .snapshot import Snapshot

__all__ = ["UnresolvedLight", "sample_cluster_light", "projected_profiles"]

_N_R = 256  # projected-radius grid of the profiles (log-spaced, model units)
_R_MIN = 1e-3  # innermost radius in units of the model's r_h (= 1)


@dataclass(frozen=True, eq=False)
class UnresolvedLight:
    """Expected sky density of the unresolved stars of one cluster, by luminosity group.

    Attributes:
        radius_pc: (R,) projected radii, log-spaced; ``density`` is constant inside the first and
            zero beyond the last.
        density: (R, G) expected stars per pc^2 of each group at those radii (circular, before
            any projected ellipticity the observation applies).
        stars: the groups (:class:`gcsbi.stars.light_groups.UnresolvedStars`: expected numbers, the
            integrals of ``density``; mean masses; flux moments per band); their attributes are
            also reachable here (``light.flux`` is ``light.stars.flux``).
    """

    radius_pc: np.ndarray
    density: np.ndarray
    stars: UnresolvedStars

    def __getattr__(self, name: str):
        if name in ("n", "mean_mass", "flux", "flux2", "filters", "resolved_above", "total_mass"):
            return getattr(self.stars, name)
        raise AttributeError(name)


def _projected(tables: ModelTables) -> tuple[np.ndarray, np.ndarray]:
    """(R (nR,), Sigma (J, nR)): projected number density per unit area of each component, normalised to 1.

    Mirrors the particle sampler exactly: :meth:`ModelTables.sample_radius` puts equal mass in each
    interval between the quantile radii ``radius_q``, uniformly in r. A thin shell of radius r has a
    fraction 1 - sqrt(1 - R^2/r^2) of its mass within projected radius R < r; averaged over an
    interval [a, b] that is (G(b) - G(a)) / (b - a) (:func:`gcsbi.clusters.footprint.interval_fractions`).
    """
    rq = np.asarray(tables.radius_q, dtype=float)  # (J, Q)
    rt = float(rq[:, -1].max())
    edges = np.concatenate([[0.0], np.geomspace(_R_MIN, rt, _N_R)])
    frac = interval_fractions(rq, edges[:, None, None])  # (nR+1, J, Q-1)
    cum = frac.mean(axis=2).T  # (J, nR+1): equal mass per interval
    cum[:, -1] = 1.0
    area = np.pi * np.diff(edges**2)
    sigma = np.diff(cum, axis=1) / area  # (J, nR) mean density in each annulus
    radius = np.sqrt(edges[1:] * np.maximum(edges[:-1], edges[1] * edges[1] / edges[2]))
    return radius, np.maximum(sigma, 0.0)


@lru_cache(maxsize=512)
def _node_projection(grid: LimepyGrid, w0: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_projected` of one grid node, memory- and disk-cached next to the node's tables."""
    import os

    from .limepy_grid import _cache_dir

    folder = _cache_dir()
    path = folder / f"{grid.key}_w{w0:.3f}_d{delta:.3f}_projected{_N_R}.npz" if folder else None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return data["radius"], data["sigma"]
        except Exception:  # corrupt cache entry: compute again and overwrite
            pass
    radius, sigma = _projected(grid.tables(w0, delta))
    if path is not None:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, radius=radius, sigma=sigma)
            tmp.replace(path)
        except OSError:
            pass
    return radius, sigma


def projected_profiles(grid: LimepyGrid, w0: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Node-mixed projected densities (R (nR,), Sigma (J, nR)) at (w0, delta), model units (r_h = 1).

    Nodes differ in tidal radius: all are put on the grid of the most extended one (zero beyond
    each node's own edge).
    """
    nodes = [(weight, *_node_projection(grid, float(wn), float(dn))) for wn, dn, weight in grid.node_weights(w0, delta)]
    radius = max((rad for _, rad, _ in nodes), key=lambda r: r[-1])
    out = np.zeros((nodes[0][2].shape[0], radius.size))
    for weight, rad, sig in nodes:
        if np.array_equal(rad, radius):
            out += weight * sig
        else:
            out += weight * np.stack([np.interp(radius, rad, s, right=0.0) for s in sig])
    return radius, out


def sample_cluster_light(
    params: ClusterParams,
    *,
    rng: np.random.Generator,
    population=None,
    grid: LimepyGrid | None = None,
    max_resolved: int = 2000,
    footprint=None,
) -> tuple[Snapshot, UnresolvedLight]:
    """Resolved stars as a :class:`Snapshot` and the rest as :class:`UnresolvedLight` (module docstring).

    The snapshot holds only the individually sampled stars (and NS/BH); its ``meta`` records
    the unresolved mass. Speeds follow the model's scale for the whole cluster's mass without
    the virial rescaling of :func:`sample_cluster` (a sample of the brightest stars alone would
    give the wrong potential). Intrinsic flattening (``params.ellipticity``) is not supported here:
    apply projected ellipticity in the observation instead.

    ``footprint`` (a :class:`gcsbi.clusters.footprint.Footprint`): also draw one by one, inside the
    line-of-sight cylinder it gives, every star of the unresolved groups that the observation
    detects; those groups leave the unresolved light (:func:`gcsbi.clusters.footprint.resolve_in_footprint`).
    """
    from ..stars.light_groups import sample_resolved

    population = _checked_population(params, population, rng)
    if params.ellipticity != 0.0:
        raise GcsbiValueError("sample_cluster_light: intrinsic ellipticity is not supported; "
                              "use the observation's projected ellipticity")
    grid = grid or reference_grid(params.g)
    bins = np.asarray(grid.mass_bins)
    stars, faint = sample_resolved(population, params.mass, rng, max_resolved=max_resolved,
                                   mass_edges=tuple(np.sqrt(bins[1:] * bins[:-1])))
    comp = grid.component_of(faint.mean_mass)
    extra = np.bincount(comp, weights=faint.n * faint.mean_mass, minlength=len(grid.mass_bins))
    snap = _place(stars, params, grid, rng, virialize=False, extra_comp_mass=extra)
    length = float(snap.meta["length_scale_pc"])
    radius, sigma = projected_profiles(grid, params.w0, params.segregation)
    radius_pc = radius * length
    density = sigma[comp].T * (faint.n / length**2)[None, :]  # (nR, G) stars per pc^2
    if footprint is not None:
        total = float(np.sum(stars.current_mass * stars.weight)) + float(extra.sum())
        snap, r_cut, kept = resolve_in_footprint(
            snap, faint, comp, density, radius_pc, population=population, grid=grid, w0=params.w0,
            delta=params.segregation, velocity_scale=float(np.sqrt(total / length)), footprint=footprint, rng=rng)
        density = np.where(radius_pc[:, None] < r_cut[None, :], density, 0.0)
        if np.any(kept < 1):
            faint = UnresolvedStars(n=faint.n * kept, mean_mass=faint.mean_mass, flux=faint.flux, flux2=faint.flux2,
                                    filters=faint.filters, resolved_above=faint.resolved_above,
                                    initial_mass_range=faint.initial_mass_range)
    snap.meta["unresolved_mass"] = faint.total_mass
    light = UnresolvedLight(radius_pc=radius_pc, density=density, stars=faint)
    return snap, light
