"""Embedded snapshot source: multi-mass, mass-segregated LIMEPY cluster models with stellar light."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ..errors import GcsbiValueError
from .limepy_grid import DELTA_NODES, W0_NODES, LimepyGrid
from .snapshot import Snapshot, virial_ratio

__all__ = [
    "ClusterParams",
    "sample_cluster",
    "reference_grid",
    "flatten",
    "REFERENCE_EDGES",
]

#: Current-mass bin edges (Msun) of the model components; everything above the last edge
#: (neutron stars, black holes) joins the top component (LIMEPY does not converge with
#: 10 Msun black holes in a fully segregated model).
REFERENCE_EDGES = (0.08, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.6)
#: Population whose present-day mass function sets the model components.
REFERENCE_POPULATION = {"age_gyr": 12.0, "feh": -1.5}


@dataclass(frozen=True)
class ClusterParams:
    """Physical parameters of an embedded cluster model.

    Attributes:
        mass: present-day total mass (stars + retained remnants), Msun.
        half_mass_radius: 3D half-mass radius r_h, pc.
        age_gyr, feh: age (Gyr) and metallicity [Fe/H] of the single stellar population.
        w0: central dimensionless potential W0 (concentration), in [2, 12].
        segregation: mass-segregation index delta of Gieles & Zocchi (2015), in [0, 0.5]:
            0 = no segregation, 0.5 = equipartition-like (s_j ~ m_j^-1/2).
        ellipticity: intrinsic oblate flattening 1 - b/a seen edge-on (the line of sight is z).
        position_angle: position angle of the projected major axis, degrees from North (+y)
            towards East (+x).
        g: LIMEPY truncation (1 = King 1966, 2 = Wilson 1975).
    """

    mass: float
    half_mass_radius: float
    age_gyr: float = 12.0
    feh: float = -1.5
    w0: float = 7.0
    segregation: float = 0.0
    ellipticity: float = 0.0
    position_angle: float = 0.0
    g: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "mass": (self.mass, 1.0, 1e8),
            "half_mass_radius": (self.half_mass_radius, 0.01, 1000.0),
            "w0": (self.w0, W0_NODES[0], W0_NODES[-1]),
            "segregation": (self.segregation, DELTA_NODES[0], DELTA_NODES[-1]),
            "ellipticity": (self.ellipticity, 0.0, 0.9),
            "position_angle": (self.position_angle, -360.0, 360.0),
        }
        for name, (value, lo, hi) in checks.items():
            if not (np.isfinite(value) and lo <= value <= hi):
                raise GcsbiValueError(f"{name} must be in [{lo}, {hi}], got {value}")


@lru_cache(maxsize=8)
def reference_grid(g: float = 1.0) -> LimepyGrid:
    """The model grid whose components follow the reference present-day mass function."""
    from ..stars import StellarPopulation

    pop = StellarPopulation(**REFERENCE_POPULATION)
    edges = np.r_[REFERENCE_EDGES, 300.0]
    mean_mass, fraction = pop.present_day_mass_function(edges)
    mean_mass, fraction = np.asarray(mean_mass, float), np.asarray(fraction, float)
    ok = fraction > 0
    # The top component (NS/BH and anything above 1.6 Msun) keeps its mass but is given the
    # mean mass of the bin below's upper edge so that LIMEPY converges.
    mean_mass = np.minimum(mean_mass, 1.4)
    return LimepyGrid(tuple(mean_mass[ok]), tuple(fraction[ok]), g=g)


def flatten(positions: np.ndarray, ellipticity: float, position_angle: float) -> np.ndarray:
    """Volume-preserving oblate flattening with its symmetry axis in the sky plane.

    The minor axis lies at ``position_angle + 90`` degrees (from +y towards +x); positions
    along it are scaled by q^(2/3) and the two other axes by q^(-1/3), q = 1 - ellipticity,
    so the projected (x, y) axis ratio is q. Velocities are left unchanged: for the mild
    flattening of globular clusters (e <~ 0.3) the virial ratio changes at order e^2.
    """
    if ellipticity == 0.0:
        return positions
    q = 1.0 - ellipticity
    pa = np.deg2rad(position_angle)
    minor = np.array([np.cos(pa), -np.sin(pa), 0.0])
    along = positions @ minor
    out = positions * q ** (-1.0 / 3.0)
    return out + np.outer(along * (q ** (2.0 / 3.0) - q ** (-1.0 / 3.0)), minor)


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    mu = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    s = np.sqrt(1.0 - mu * mu)
    return np.column_stack((s * np.cos(phi), s * np.sin(phi), mu))


def _expected_half_mass_radius(grid: LimepyGrid, nodes, comp_mass: np.ndarray) -> float:
    """r_h (in model units) of the expected mass profile for the given component masses."""
    r = np.geomspace(1e-4, 1e3, 2000)
    enclosed = np.zeros_like(r)
    for w0, delta, weight in nodes:
        t = grid.tables(w0, delta)
        for j, mj in enumerate(comp_mass):
            if mj > 0:
                enclosed += weight * mj * np.interp(r, t.mass_cdf_r, t.mass_cdf[j], right=1.0)
    return float(np.interp(0.5 * enclosed[-1], enclosed, r))


def sample_cluster(
    params: ClusterParams,
    *,
    rng: np.random.Generator,
    population=None,
    grid: LimepyGrid | None = None,
    max_faint_particles: int = 2000,
    virialize: bool = True,
) -> Snapshot:
    """Sample a cluster snapshot (stars, remnants, light) from the embedded multi-mass model.

    Each particle of the stellar population sample is placed with the phase-space
    distribution of its mass component; models at non-grid (W0, delta) are bilinear
    mixtures of the four neighbouring solved models (each in virial equilibrium). Lengths
    and velocities are rescaled so the *expected* 3D half-mass radius of the sampled mass
    function equals ``params.half_mass_radius`` and velocities are consistent with G M / r_h.

    Args:
        params: the model parameters.
        rng: the random generator (all draws go through it).
        population: a ``gcsbi.stars.StellarPopulation`` for (age, [Fe/H]); built if omitted.
        grid: model grid (default: :func:`reference_grid`).
        max_faint_particles: how many particles stand for the faint, non-stochastic stars.
        virialize: rescale all speeds by one factor so the sample's virial ratio is 0.5.
            The grid models are self-consistent for the reference mass function only; for
            other ages/metallicities the potential differs slightly and so does Q. The factor
            applied is stored in ``snapshot.meta["velocity_rescale"]`` (typically within a few
            per cent of 1; see tests/clusters).
    """
    population = _checked_population(params, population, rng)
    grid = grid or reference_grid(params.g)
    stars = population.sample(
        current_mass=params.mass, rng=rng, max_faint_particles=max_faint_particles
    )
    return _place(stars, params, grid, rng, virialize=virialize)


def _checked_population(params: ClusterParams, population, rng: np.random.Generator):
    """``population`` (built from ``params`` if None) after checking it and ``rng`` against ``params``."""
    if not isinstance(rng, np.random.Generator):
        raise GcsbiValueError("rng must be a numpy.random.Generator")
    if population is None:
        from ..stars import StellarPopulation

        return StellarPopulation(age_gyr=params.age_gyr, feh=params.feh)
    if abs(population.age_gyr - params.age_gyr) > 1e-9 or abs(population.feh - params.feh) > 1e-9:
        raise GcsbiValueError(
            f"population (age {population.age_gyr}, feh {population.feh}) does not match "
            f"params (age {params.age_gyr}, feh {params.feh})"
        )
    return population


def _place(stars, params: ClusterParams, grid: LimepyGrid, rng: np.random.Generator, *, virialize: bool = True,
           extra_comp_mass: np.ndarray | None = None) -> Snapshot:
    """Phase-space coordinates for a star sample (see :func:`sample_cluster`).

    ``extra_comp_mass`` (per model component) is mass that is not in ``stars`` but counts for the
    expected half-mass radius (the unresolved stars of :func:`gcsbi.clusters.smooth_light.sample_cluster_light`).
    """
    n = len(stars.current_mass)
    comp = grid.component_of(stars.current_mass)
    nodes = grid.node_weights(params.w0, params.segregation)
    which = rng.choice(len(nodes), size=n, p=[w for *_, w in nodes])
    u_r, u_v = rng.random(n), rng.random(n)
    radius, speed = np.empty(n), np.empty(n)
    for k, (w0, delta, _) in enumerate(nodes):
        sel = which == k
        t = grid.tables(w0, delta)
        radius[sel] = t.sample_radius(comp[sel], u_r[sel])
        speed[sel] = t.sample_speed(comp[sel], radius[sel], u_v[sel])
    pmass = stars.current_mass * stars.weight
    comp_mass = np.bincount(comp, weights=pmass, minlength=len(grid.mass_bins))
    if extra_comp_mass is not None:
        comp_mass = comp_mass + extra_comp_mass
    rh_model = _expected_half_mass_radius(grid, nodes, comp_mass)
    length = params.half_mass_radius / rh_model
    total = float(pmass.sum()) + (0.0 if extra_comp_mass is None else float(np.sum(extra_comp_mass)))
    positions = radius[:, None] * _unit_vectors(rng, n) * length
    velocities = speed[:, None] * _unit_vectors(rng, n) * np.sqrt(total / length)
    rescale = 1.0
    if virialize and n > 1:
        q = virial_ratio(positions, velocities, pmass)
        rescale = float(np.sqrt(0.5 / q)) if q > 0 else 1.0
        velocities = velocities * rescale
    positions = flatten(positions, params.ellipticity, params.position_angle)
    return Snapshot.from_stars(
        stars,
        positions=positions,
        velocities=velocities,
        age_gyr=params.age_gyr,
        feh=params.feh,
        source="limepy",
        meta={"model": "limepy", **asdict(params), "velocity_rescale": rescale, "length_scale_pc": length},
    )
