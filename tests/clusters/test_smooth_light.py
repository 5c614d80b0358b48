"""Unresolved light: faint stars as luminosity groups, projected profiles and Poisson pixel counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gcsbi.clusters.models import ClusterParams, reference_grid, sample_cluster
from gcsbi.clusters.smooth_light import UnresolvedLight, projected_profiles, sample_cluster_light
from gcsbi.errors import GcsbiValueError, SpecError
from gcsbi.observe.star_counts import unresolved_pixels
from gcsbi.stars import StellarPopulation
from gcsbi.stars.light_groups import UnresolvedStars, sample_resolved


@pytest.fixture(scope="module")
def pop():
    return StellarPopulation(age_gyr=11.0, feh=-1.0)


@pytest.mark.parametrize("mass", [3e3, 1e5, 3e6])
def test_sample_resolved_keeps_mass_and_expected_light(pop, mass):
    fluxes, counts = [], []
    for seed in range(20):
        bright, faint = sample_resolved(pop, mass, np.random.default_rng(seed), max_resolved=2000)
        assert bright.total_mass + faint.total_mass == pytest.approx(mass, rel=1e-9)
        assert np.all(faint.flux2 >= faint.flux**2 * (1 - 1e-9))
        counts.append(len(bright))
        fb = np.where(np.isfinite(bright.abs_mag), 10 ** (-0.4 * np.where(np.isfinite(bright.abs_mag),
                                                                            bright.abs_mag, 0.0)), 0.0)
        fluxes.append(fb.sum(0) + faint.integrated_flux())
    expected = pop.expected_integrated_magnitudes(mass)
    mag = -2.5 * np.log10(np.mean(fluxes, axis=0))
    for j, f in enumerate(pop.filters[:3]):
        assert mag[j] == pytest.approx(expected[f], abs=0.03 if mass > 1e4 else 0.15), f
    old = len(pop.sample(mass, np.random.default_rng(0)))
    if mass >= 1e6:  # a massive cluster: far fewer stars sampled one by one than particles today
        assert np.mean(counts) < 0.3 * old


def test_sample_resolved_bad_input(pop):
    with pytest.raises(GcsbiValueError):
        sample_resolved(pop, 1e4, 0)
    with pytest.raises(GcsbiValueError):
        sample_resolved(pop, -1.0, np.random.default_rng(0))
    with pytest.raises(GcsbiValueError):
        sample_resolved(pop, 1e4, np.random.default_rng(0), max_resolved=0)


@pytest.mark.parametrize(("w0", "delta"), [(6.5, 0.25), (11.5, 0.45), (3.3, 0.05)])
def test_projected_profiles_are_normalised(w0, delta):
    grid = reference_grid()
    radius, sigma = projected_profiles(grid, w0, delta)  # a mixture of four nodes of different extent
    edges = np.concatenate([[0.0], np.sqrt(radius[1:] * radius[:-1]), [radius[-1] * np.sqrt(radius[1] / radius[0])]])
    total = (sigma * np.pi * np.diff(edges**2)).sum(axis=1)
    np.testing.assert_allclose(total, 1.0, atol=0.002)
    # mass segregation: heavier components are more concentrated
    central = sigma[:, 0]
    assert central[-2] > central[0]


def test_unresolved_profile_matches_particles(pop):
    """The projected mass of the unresolved light agrees with the particles the old path places."""
    params = ClusterParams(mass=10**5.5, half_mass_radius=3.0, age_gyr=11.0, feh=-1.0, w0=7.0, segregation=0.25)
    edges = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    old = np.zeros(len(edges) - 1)
    for seed in range(6):
        snap = sample_cluster(params, rng=np.random.default_rng(seed), population=pop, max_faint_particles=20000)
        old += np.histogram(np.hypot(*snap.positions[:, :2].T), edges, weights=snap.particle_mass)[0] / 6
    snap, light = sample_cluster_light(params, rng=np.random.default_rng(0), population=pop)
    assert isinstance(light, UnresolvedLight)
    new = np.histogram(np.hypot(*snap.positions[:, :2].T), edges, weights=snap.particle_mass)[0]
    rr = np.geomspace(light.radius_pc[0] / 10, light.radius_pc[-1], 20001)
    dens = np.interp(np.log(rr), np.log(light.radius_pc), light.density @ light.mean_mass, right=0.0)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * np.diff(rr) * 2 * np.pi * (dens[1:] * rr[1:] + dens[:-1] * rr[:-1]))])
    new = new + np.diff(np.interp(edges, rr, cum))
    np.testing.assert_allclose(new / old, 1.0, atol=0.03)
    old_length = sample_cluster(params, rng=np.random.default_rng(0), population=pop).meta["length_scale_pc"]
    assert snap.meta["length_scale_pc"] == pytest.approx(old_length, rel=0.005)


def _toy_light() -> UnresolvedLight:
    radius = np.geomspace(0.01, 50.0, 64)
    profile = 1.0 / (1.0 + (radius / 2.0) ** 2) ** 2
    n = np.array([2e4, 3e3, 50.0])
    profile = profile / np.sum(profile * 2 * np.pi * radius * np.gradient(radius))
    flux = np.array([[1.0, 2.0], [10.0, 15.0], [200.0, 400.0]])
    stars = UnresolvedStars(n=n, mean_mass=np.array([0.2, 0.6, 0.8]), flux=flux, flux2=flux**2 * 1.1, filters=("a", "b"))
    return UnresolvedLight(radius_pc=radius, density=profile[:, None] * n[None, :], stars=stars)


def test_unresolved_pixels_mean_and_variance():
    light = _toy_light()
    kw = dict(shape=(24, 24), pad=4, pixel_scale_arcsec=0.05, distance_kpc=20.0, counts_per_flux=np.ones(2))
    draws = [unresolved_pixels(light, rng=np.random.default_rng(s), **kw) for s in range(400)]
    assert light.flux is light.stars.flux and light.total_mass == pytest.approx(light.stars.total_mass)
    flux = np.stack([d.flux for d in draws])
    base = draws[0]
    assert flux.shape == (400, 2, 32, 32) and np.all(flux >= 0)
    area = (0.05 * 20.0 / 206.264806) ** 2
    r = np.hypot(*np.meshgrid(np.arange(-4, 28) - 11.5, np.arange(-4, 28) - 11.5)) * np.sqrt(area)
    lam = np.stack([np.interp(np.log(r), np.log(light.radius_pc), light.density[:, g]) for g in range(3)], -1) * area
    mean = lam @ light.flux
    var = lam @ light.flux2
    ring = (r > 0.6) & (r < 3.0)  # outside the sub-sampled centre
    np.testing.assert_allclose(flux.mean(0).transpose(1, 2, 0)[ring].sum(0), mean[ring].sum(0), rtol=0.01)
    np.testing.assert_allclose(flux.var(0).transpose(1, 2, 0)[ring].sum(0), var[ring].sum(0), rtol=0.08)
    np.testing.assert_allclose(np.stack([d.mass for d in draws]).mean(0).sum(), (lam @ light.mean_mass).sum(),
                               rtol=0.01)
    assert base.phase.shape == (32, 32) and base.phase.max() < 64**2
    assert np.array_equal(draws[3].flux, unresolved_pixels(light, rng=np.random.default_rng(3), **kw).flux)
    with pytest.raises(GcsbiValueError):
        unresolved_pixels(light, rng=np.random.default_rng(0), **{**kw, "counts_per_flux": np.ones(3)})


def test_grid_rendering_matches_stars_at_random_phases():
    from gcsbi.observe.observe import get_observation_model
    from gcsbi.observe.star_counts import UnresolvedPixels

    r = get_observation_model("hst-phat").renderer
    h, w = r.shape
    rng = np.random.default_rng(0)
    xs, ys = 40 + rng.uniform(-0.5, 0.5, 4000), 50 + rng.uniform(-0.5, 0.5, 4000)
    stars = r.render(xs, ys, np.full((3, xs.size), 1.0 / xs.size))
    flux = np.zeros((3, h + 2 * r.pad, w + 2 * r.pad))
    flux[:, 50 + r.pad, 40 + r.pad] = 1.0
    zero = np.zeros_like(flux)
    grid = UnresolvedPixels(flux=flux, amplitude=zero, mass=zero[0], phase=np.zeros(zero.shape[1:], int), pad=r.pad)
    smooth = r.render(np.zeros(0), np.zeros(0), np.zeros((3, 0)), grid=grid)
    np.testing.assert_allclose(smooth, stars, atol=5e-3 * stars.max())
    with pytest.raises(GcsbiValueError):
        r.render(np.zeros(0), np.zeros(0), np.zeros((3, 0)), grid=dataclasses.replace(grid, pad=r.pad + 1))


def test_smooth_spec_options(tmp_path):
    from gcsbi.simulator.core import SnapshotSource

    assert SnapshotSource.from_mapping({"faint_light": "smooth"}).faint_light == "smooth"
    with pytest.raises(SpecError):
        SnapshotSource.from_mapping({"faint_light": "blurry"})
    with pytest.raises(SpecError):
        SnapshotSource.from_mapping({"faint_light": "smooth", "source": "library", "library": "x"})
    with pytest.raises(SpecError):
        SnapshotSource.from_mapping({"faint_light": "smooth", "max_resolved_stars": 0})


def test_smooth_simulator_massive_cluster_light_and_mass():
    """A 10^6.5 Msun cluster in smooth mode: its light and mass where the model puts them."""
    from simulator.test_simulator import load_variant  # tests/ is on sys.path

    sim = load_variant("hst-phat+smooth")
    vals = {n: (s.low + s.high) / 2 for n, s in zip(sim.prior.names, sim.prior.specs)}
    theta = sim.prior.from_dict({**vals, "log10_mass": 6.5, "ebv": 0.0, "distance_kpc": 780.0})
    out = sim.simulate(theta, seed=0, return_truth=True)
    frac = out["mass_map"].sum().item() / 10**6.5
    assert 0.8 < frac <= 1.001
    assert torch.equal(out["x"], sim(theta, seed=0))
    pop = StellarPopulation(age_gyr=vals["age_gyr"], feh=vals["feh"])
    model = sim.model
    expected = pop.expected_integrated_magnitudes(10**6.5)
    mu = 5 * np.log10(780.0 * 100)
    counts = out["clean"][0].double().sum(dim=(1, 2)).numpy()
    for j, f in enumerate(model.filters):
        mag = model.zeropoints[j] - 2.5 * np.log10(counts[j] / model.exposure_s[j]) - mu
        assert mag == pytest.approx(expected[f], abs=0.1), f  # PSF truncation and the stamp edge lose a little


def test_with_snapshot_switches_modes_and_checks_options():
    from gcsbi.simulator.core import SnapshotSource, spec_digest, with_snapshot
    from gcsbi.spec.simulator_spec import load_simulator_spec

    spec = with_snapshot("hst-phat", faint_light="particles")
    shipped = load_simulator_spec("hst-phat")
    assert spec_digest(spec) != spec_digest(shipped)  # a posterior of the shipped spec refuses the variant
    assert spec_digest(with_snapshot("hst-phat", faint_light="smooth")) == spec_digest(shipped)
    src = SnapshotSource.from_mapping(spec.snapshot)
    assert src.faint_light == "particles" and "max_resolved_stars" not in spec.snapshot
    back = with_snapshot(spec, faint_light="smooth", max_resolved_stars=500)
    assert SnapshotSource.from_mapping(back.snapshot).max_resolved_stars == 500
    with pytest.raises(SpecError):  # an option of the other mode does not apply
        with_snapshot("hst-phat", max_faint_particles=100)
