"""Embedded multi-mass LIMEPY cluster models: equilibrium, size, segregation, flattening."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcsbi.cli import main as cli_main
from gcsbi.clusters.models import ClusterParams, flatten, reference_grid, sample_cluster
from gcsbi.errors import GcsbiValueError
from gcsbi.stars import StellarPopulation


@pytest.fixture(scope="module")
def old_population():
    return StellarPopulation(age_gyr=12.0, feh=-1.5)


def _sample(pop, seed=0, **kw):
    params = ClusterParams(**{"mass": 5e4, "half_mass_radius": 3.0, "age_gyr": pop.age_gyr,
                              "feh": pop.feh, **kw})
    return sample_cluster(params, rng=np.random.default_rng(seed), population=pop)


@pytest.mark.parametrize("w0, delta", [(7.0, 0.0), (5.0, 0.5), (8.5, 0.25)])
def test_equilibrium_and_size(old_population, w0, delta):
    """Unforced virial ratio of the sampled reference-population model is 0.5, r_h matches."""
    params = ClusterParams(mass=5e4, half_mass_radius=3.0, w0=w0, segregation=delta)
    snap = sample_cluster(params, rng=np.random.default_rng(1), population=old_population,
                          virialize=False)
    assert snap.virial_ratio() == pytest.approx(0.5, abs=0.03)
    assert snap.half_mass_radius() == pytest.approx(3.0, rel=0.05)
    assert snap.total_mass == pytest.approx(5e4, rel=0.01)


def test_mass_segregation_makes_mean_mass_fall_with_radius(old_population):
    def mean_mass_by_radius(snap):
        r = np.linalg.norm(snap.positions, axis=1)
        edges = np.quantile(r, [0, 0.25, 0.5, 0.75, 1.0])
        idx = np.clip(np.searchsorted(edges, r) - 1, 0, 3)
        mass = np.bincount(idx, snap.particle_mass, 4)
        return mass / np.bincount(idx, snap.weight, 4)

    seg = mean_mass_by_radius(_sample(old_population, segregation=0.5))
    flat = mean_mass_by_radius(_sample(old_population, segregation=0.0))
    assert np.all(np.diff(seg) < 0), seg  # falls monotonically outwards
    assert seg[0] / seg[-1] > 1.3
    assert abs(flat[0] / flat[-1] - 1.0) < 0.1, flat


def test_flattening_axis_ratio_and_position_angle(old_population):
    snap = _sample(old_population, ellipticity=0.3, position_angle=40.0)
    x, y = snap.positions[:, 0], snap.positions[:, 1]
    pa = np.deg2rad(40.0)
    major = x * np.sin(pa) + y * np.cos(pa)
    minor = x * np.cos(pa) - y * np.sin(pa)
    assert np.std(minor) / np.std(major) == pytest.approx(0.7, abs=0.03)
    pts = np.random.default_rng(0).normal(size=(100, 3))
    assert flatten(pts, 0.0, 10.0) is pts


def test_virialize_factor_is_small_for_other_populations():
    young = StellarPopulation(age_gyr=2.0, feh=0.0)
    snap = _sample(young)
    assert snap.virial_ratio() == pytest.approx(0.5, abs=1e-6)
    assert abs(snap.meta["velocity_rescale"] - 1.0) < 0.15


def test_same_seed_same_bytes(old_population):
    a, b = _sample(old_population, seed=3), _sample(old_population, seed=3)
    c = _sample(old_population, seed=4)
    assert a.positions.tobytes() == b.positions.tobytes()
    assert a.abs_mag.tobytes() == b.abs_mag.tobytes()
    assert a.positions.tobytes() != c.positions.tobytes()


@pytest.mark.parametrize(
    "kw", [{"w0": 1.0}, {"w0": 13.0}, {"segregation": 0.7}, {"mass": -1.0},
           {"half_mass_radius": float("nan")}, {"ellipticity": 0.95}]
)
def test_bad_parameters(kw):
    base = {"mass": 1e4, "half_mass_radius": 3.0}
    with pytest.raises(GcsbiValueError):
        ClusterParams(**{**base, **kw})


def test_population_mismatch_and_rng_type(old_population):
    params = ClusterParams(mass=1e4, half_mass_radius=3.0, age_gyr=5.0)
    with pytest.raises(GcsbiValueError, match="does not match"):
        sample_cluster(params, rng=np.random.default_rng(0), population=old_population)
    with pytest.raises(GcsbiValueError, match="Generator"):
        sample_cluster(params, rng=0)


def test_reference_grid_components_cover_remnants():
    grid = reference_grid()
    comp = grid.component_of(np.array([0.09, 0.6, 1.4, 12.0]))
    assert comp[0] == 0 and comp[-1] == len(grid.mass_bins) - 1


def test_cli_snapshot(tmp_path, capsys):
    out = tmp_path / "snap.npz"
    code = cli_main(["snapshot", "--mass", "2e4", "--seed", "1", "--out", str(out), "--json"])
    assert code == 0 and out.is_file()
    summary = json.loads(capsys.readouterr().out)
    assert summary["virial_ratio"] == pytest.approx(0.5, abs=1e-6)
    assert set(summary["integrated_abs_mag"]) >= {"F336W", "F475W", "F814W", "V"}
    assert cli_main(["snapshot", "--mass", "2e4", "--w0", "20"]) == 1
