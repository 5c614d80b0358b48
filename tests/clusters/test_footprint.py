"""Detection-limit resolved stars drawn inside the stamp's footprint (gcsbi.clusters.footprint)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gcsbi.clusters.footprint import (
    Footprint,
    _sample_in_annulus,
    cylinder_fractions,
    detection_radii,
)
from gcsbi.clusters.models import ClusterParams, reference_grid
from gcsbi.clusters.smooth_light import sample_cluster_light
from gcsbi.errors import GcsbiValueError, SpecError
from gcsbi.stars import StellarPopulation


@pytest.fixture(scope="module")
def tables():
    return reference_grid().tables(7.0, 0.2)


def _projected_radii(t, j: int, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Reference: the model's own sampler (3D radius, isotropic direction) -> (r, projected R)."""
    r = t.sample_radius(np.full(n, j), rng.random(n))
    mu = rng.uniform(-1.0, 1.0, n)
    return r, r * np.sqrt(1.0 - mu * mu)


@pytest.mark.parametrize("rc", [0.05, 0.4, 2.0])
def test_cylinder_fractions_match_the_model_sampler(tables, rc):
    rng = np.random.default_rng(1)
    for j in (0, tables.radius_q.shape[0] - 1):
        _, big_r = _projected_radii(tables, j, 400_000, rng)
        want = np.mean(big_r < rc)
        got = cylinder_fractions(tables.radius_q, rc)[j].mean()
        assert got == pytest.approx(want, abs=4 * np.sqrt(want * (1 - want) / big_r.size) + 1e-3)
    assert np.all(cylinder_fractions(tables.radius_q, 0.0) == 0.0)
    assert np.allclose(cylinder_fractions(tables.radius_q, 1e6), 1.0)


@pytest.mark.parametrize("r_in, r_out", [(0.0, 0.3), (0.2, 1.5)])
def test_annulus_sampler_is_the_conditional_of_the_model(tables, r_in, r_out):
    """Stars drawn in a projected annulus have the model's conditional distribution of r and R."""
    rng = np.random.default_rng(2)
    j = 1
    r_ref, big_ref = _projected_radii(tables, j, 600_000, rng)
    sel = (big_ref >= r_in) & (big_ref < r_out)
    weight = cylinder_fractions(tables.radius_q[j:j + 1], r_out)[0] - cylinder_fractions(tables.radius_q[j:j + 1], r_in)[0]
    r, unit = _sample_in_annulus(np.asarray(tables.radius_q[j]), np.clip(weight, 0, None), r_in, r_out, 20_000, rng)
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0)
    big = r * np.hypot(unit[:, 0], unit[:, 1])
    assert big.min() >= r_in * (1 - 1e-9) and big.max() <= r_out * (1 + 1e-9)
    assert stats.ks_2samp(big, big_ref[sel]).pvalue > 1e-3
    assert stats.ks_2samp(r, r_ref[sel]).pvalue > 1e-3


def _footprint(**kw) -> Footprint:
    # about hst-mw at 10 kpc: 0.25" pixels, F814W-like counts, sky + read noise
    base = dict(radius_pc=1.6, pixel_area_pc2=1.5e-4, counts_per_flux=np.full(3, 5e6), noise_e2=np.full(3, 2400.0),
                psf_area=np.full(3, 10.0), detection_sigma=5.0)
    return Footprint(**{**base, **kw})


@pytest.fixture(scope="module")
def cluster():
    pop = StellarPopulation(age_gyr=11.0, feh=-1.5, filters=("F336W", "F475W", "F814W"))
    params = ClusterParams(mass=10**5, half_mass_radius=3.0, age_gyr=11.0, feh=-1.5, w0=7.0, segregation=0.2)
    return pop, params


def test_detection_radius_moves_out_with_the_noise(cluster):
    pop, params = cluster
    _, light = sample_cluster_light(params, rng=np.random.default_rng(0), population=pop)
    deep = detection_radii(light.stars, light.density, light.radius_pc, _footprint())
    shallow = detection_radii(light.stars, light.density, light.radius_pc, _footprint(noise_e2=np.full(3, 1e6)))
    assert np.all(deep <= shallow)  # a noisier image detects each group only farther out (or never)
    assert np.isfinite(deep).any() and (deep < shallow).any()
    wd = ~np.isfinite(light.stars.initial_mass_range[:, 0])
    assert wd.any() and np.all(np.isinf(deep[wd]))  # white dwarfs are never drawn one by one
    none = detection_radii(light.stars, light.density, light.radius_pc, _footprint(counts_per_flux=np.full(3, 1e-6)))
    assert np.all(np.isinf(none))


def test_footprint_keeps_the_expected_light_in_the_stamp(cluster):
    """Drawn stars + unresolved light inside the footprint carry the light the groups had there."""
    pop, params = cluster
    fp = _footprint()
    rc = fp.radius_pc
    ref_flux, new_flux, n_drawn = 0.0, [], []
    for seed in range(8):
        snap0, light0 = sample_cluster_light(params, rng=np.random.default_rng(seed), population=pop)
        snap, light = sample_cluster_light(params, rng=np.random.default_rng(seed), population=pop, footprint=fp)
        assert snap.meta["footprint_stars"] > 0 and len(snap) == len(snap0) + snap.meta["footprint_stars"]
        n_drawn.append(snap.meta["footprint_stars"])

        def inside(lt):
            rr = np.geomspace(lt.radius_pc[0], rc, 4000)
            dens = np.array([np.interp(rr, lt.radius_pc, lt.density[:, g], right=0.0) for g in range(lt.n.size)])
            return np.trapezoid(2 * np.pi * rr * (lt.flux[:, 1] @ dens), rr)

        extra = snap.abs_mag[len(snap0):, 1]
        r_extra = np.hypot(*snap.positions[len(snap0):, :2].T)
        assert r_extra.max() <= rc * (1 + 1e-9)
        ref_flux += inside(light0) / 8
        new_flux.append(inside(light) + np.sum(10 ** (-0.4 * extra)))
    # Poisson scatter of the drawn stars' light: a few per cent here
    assert np.mean(new_flux) == pytest.approx(ref_flux, rel=0.05)


def test_footprint_checks_its_values():
    with pytest.raises(GcsbiValueError, match="radius_pc"):
        _footprint(radius_pc=0.0)
    with pytest.raises(GcsbiValueError, match="one per band"):
        _footprint(noise_e2=np.ones(2))
    with pytest.raises(GcsbiValueError):
        _footprint(psf_area=np.zeros(3))


def test_detection_sigma_spec_option():
    from gcsbi.simulator.core import SnapshotSource, with_snapshot

    src = SnapshotSource.from_mapping({"faint_light": "smooth", "detection_sigma": 5})
    assert src.detection_sigma == 5.0
    for bad in ({"faint_light": "particles", "detection_sigma": 5}, {"faint_light": "smooth", "detection_sigma": 0},
                {"faint_light": "smooth", "detection_sigma": "deep"}):
        with pytest.raises(SpecError):
            SnapshotSource.from_mapping(bad)
    spec = with_snapshot("hst-mw", faint_light="smooth", detection_sigma=5.0)
    assert "detection_sigma" not in with_snapshot(spec, faint_light="particles").snapshot


def test_simulator_with_detection_cut_is_reproducible():
    import torch

    from gcsbi.simulator.core import ClusterSimulator, with_snapshot

    sim = ClusterSimulator(with_snapshot("hst-mw", faint_light="smooth", detection_sigma=5.0), "milky-way-gc")
    gen = torch.Generator().manual_seed(0)
    theta = sim.prior.low + (sim.prior.high - sim.prior.low) * torch.rand((3, len(sim.param_names)), generator=gen)
    a = sim.simulate(theta, seed=4, return_truth=True)
    assert torch.equal(a["x"], sim(theta, seed=4)) and torch.isfinite(a["x"]).all()
    assert (a["mass_map"].sum((1, 2)) > 0).all()


def test_a_footprint_wider_than_the_cluster_never_resolves_white_dwarfs(cluster):
    """The profile grid ends at the tidal radius; groups never detected stay unresolved (inf), not 0."""
    pop, params = cluster
    _, light = sample_cluster_light(params, rng=np.random.default_rng(0), population=pop)
    wide = _footprint(radius_pc=10 * light.radius_pc[-1])
    r_cut = detection_radii(light.stars, light.density, light.radius_pc, wide)
    wd = ~np.isfinite(light.stars.initial_mass_range[:, 0])
    assert np.all(np.isinf(r_cut[wd]))
    snap, _ = sample_cluster_light(params, rng=np.random.default_rng(1), population=pop, footprint=wide)
    n_fp = snap.meta["footprint_stars"]
    assert n_fp > 0 and np.all(np.isfinite(snap.abs_mag[-n_fp:]))  # living stars only (remnants are dark: +inf)
