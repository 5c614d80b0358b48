"""Population-level inference (gcsbi.catalogue.population, .geometry): known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcsbi.catalogue.geometry import M31_CENTRE_DEG, M31_DISTANCE_KPC, M31_INCLINATION_DEG, M31_PA_DEG, \
    m31_disc_radius_kpc
from gcsbi.catalogue.population import Mixture, PopulationModel, cluster_summaries, fit_mixture, load_population, \
    save_population
from gcsbi.errors import GcsbiFileError, GcsbiValueError

LOW, HIGH = np.array([7.0, 2.5, -2.5, 0.05]), np.array([10.15, 6.7, 0.3, 1.0])


def test_disc_radius_known_answers():
    ra0, de0 = M31_CENTRE_DEG
    assert m31_disc_radius_kpc(ra0, de0) == pytest.approx(0.0, abs=1e-9)
    # 0.5 deg along the major axis (PA 38 deg east of north): no deprojection
    pa = np.radians(M31_PA_DEG)
    d = 0.5
    ra = ra0 + d * np.sin(pa) / np.cos(np.radians(de0))
    de = de0 + d * np.cos(pa)
    assert m31_disc_radius_kpc(ra, de) == pytest.approx(M31_DISTANCE_KPC * np.radians(d), rel=5e-3)
    # 0.1 deg along the minor axis: stretched by 1 / cos(i)
    ra = ra0 - 0.1 * np.cos(pa) / np.cos(np.radians(de0))
    de = de0 + 0.1 * np.sin(pa)
    want = M31_DISTANCE_KPC * np.radians(0.1) / np.cos(np.radians(M31_INCLINATION_DEG))
    assert m31_disc_radius_kpc(ra, de) == pytest.approx(want, rel=5e-3)
    with pytest.raises(GcsbiValueError, match="finite"):
        m31_disc_radius_kpc([10.0, np.nan], [41.0, 41.0])


def test_cluster_summaries_divide_out_the_box():
    """A parameter the data constrain keeps its width; one they do not (draws fill the box) becomes uninformative."""
    rng = np.random.default_rng(6)
    k = 20000
    draws = np.stack([rng.normal(8.5, 0.05, k), rng.uniform(LOW[1], HIGH[1], k), rng.normal(-1.0, 0.1, k),
                      rng.uniform(0.0, 1.0, k)], axis=-1)[None]
    m, c = cluster_summaries(draws, np.array([7.0, 2.5, -2.5, 0.0]), HIGH)
    sd = np.sqrt(np.diag(c[0]))
    np.testing.assert_allclose(sd[[0, 2]], [0.05, 0.1], rtol=0.05)
    np.testing.assert_allclose(m[0, [0, 2]], [8.5, -1.0], atol=0.01)
    assert sd[1] > 5 * (HIGH[1] - LOW[1]) and sd[3] > 5  # the posterior sd was width / sqrt(12)


def _one_component(mean, cov) -> Mixture:
    return Mixture(np.array([1.0]), np.asarray(mean, float)[None], np.asarray(cov, float)[None])


def test_conditional_density_is_the_gaussian_conditional():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + 5 * np.eye(5)
    mean = rng.normal(size=5)
    mix = _one_component(mean, cov)
    lr = 0.7
    gain = cov[:4, 4] / cov[4, 4]
    cm = mean[:4] + gain * (lr - mean[4])
    cc = cov[:4, :4] - np.outer(gain, cov[4, :4])
    z = rng.normal(size=(7, 4))
    from scipy.stats import multivariate_normal

    np.testing.assert_allclose(mix.log_conditional(z, lr), multivariate_normal(cm, cc).logpdf(z), rtol=1e-10)
    s = mix.sample(np.full(20000, lr), np.random.default_rng(2))
    np.testing.assert_allclose(s.mean(0), cm, atol=0.05 * np.sqrt(np.diag(cc)).max() + 0.02)
    np.testing.assert_allclose(np.cov(s.T), cc, rtol=0, atol=0.04 * np.diag(cc).max())


def test_deconvolution_recovers_a_known_population():
    """Clusters from a two-component population, each measured with noise 2x wider than a component:
    the fit recovers the components' means and their narrow widths, which the measurements do not show."""
    rng = np.random.default_rng(3)
    n, k = 4000, 200
    means = np.array([[8.0, 3.5, -1.0, 0.3, 0.9], [9.5, 4.5, -1.8, 0.15, 1.2]])
    comp = (rng.random(n) < 0.4).astype(int)
    log_r = means[comp, 4] + rng.normal(0, 0.05, n)
    sd_true = 0.1
    theta = means[comp, :4] + rng.normal(0, sd_true, (n, 4))
    noise = 2 * sd_true
    obs = theta + rng.normal(0, noise, (n, 4))
    draws = obs[:, None, :] + rng.normal(0, noise, (n, k, 4))  # flat-prior posterior draws
    m, c = cluster_summaries(draws, np.full(4, -1e3), np.full(4, 1e3))  # a box far wider than the data
    np.testing.assert_allclose(np.sqrt(np.median(np.diagonal(c, axis1=1, axis2=2), 0)), noise, rtol=0.05)
    mix, info = fit_mixture(m, c, log_r, n_components=2, rng=rng)
    order = np.argsort(mix.means[:, 0])
    np.testing.assert_allclose(mix.means[order], means, atol=0.03)
    np.testing.assert_allclose(mix.weights[order], [0.6, 0.4], atol=0.03)
    sd = np.sqrt(np.diagonal(mix.covs[order][:, :4, :4], axis1=1, axis2=2))
    np.testing.assert_allclose(sd, sd_true, atol=0.025)  # deconvolved: 0.1, where the measurements scatter by 0.22
    assert info["loglik"] > fit_mixture(m, c, log_r, n_components=1, rng=rng)[1]["loglik"]


def _population(n_mix: int = 3) -> PopulationModel:
    rng = np.random.default_rng(4)
    mixes = []
    for _ in range(n_mix):
        a = rng.normal(size=(2, 5, 5)) * 0.3
        centre = np.append((LOW + HIGH) / 2, 0.9)
        scale = np.append((HIGH - LOW) / 4, 0.2)
        mixes.append(Mixture(np.array([0.5, 0.5]), centre + scale * rng.normal(size=(2, 5)),
                             (a @ a.transpose(0, 2, 1) + np.eye(5)) * np.outer(scale, scale)))
    return PopulationModel("test-pop", ("log10_age_yr", "log10_mass", "feh", "ebv"), LOW, HIGH, tuple(mixes),
                           {"n_clusters": 10, "components": 2})


def test_population_density_is_the_bootstrap_average_inside_the_box():
    pop = _population()
    rng = np.random.default_rng(5)
    theta = LOW + (HIGH - LOW) * rng.random((50, 4))
    want = np.log(np.mean([np.exp(m.log_conditional(theta, np.log10(8.0))) for m in pop.mixtures[1:]], axis=0))
    np.testing.assert_allclose(pop.log_density(theta, 8.0), want, rtol=1e-10)
    outside = np.array([[7.5, 3.0, -1.0, 0.02]])  # E(B-V) below the floor
    assert pop.log_density(outside, 5.0)[0] == -np.inf
    s = pop.sample(np.full(1000, 8.0), rng)
    assert np.all((s >= LOW) & (s <= HIGH))


def test_population_file_round_trip_and_integrity(tmp_path):
    pop = _population()
    path = save_population(pop, tmp_path / "pop.json")
    back = load_population(path)
    theta = (LOW + HIGH) / 2 + np.zeros((3, 4))
    np.testing.assert_allclose(back.log_density(theta, 5.0), pop.log_density(theta, 5.0))
    doc = json.loads(path.read_text())
    doc["population"]["mixtures"][0]["weights"] = [0.9, 0.1]
    path.write_text(json.dumps(doc))
    with pytest.raises(GcsbiFileError, match="SHA-256"):
        load_population(path)
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    with pytest.raises(GcsbiFileError, match="not overwriting"):
        save_population(pop, other)
    assert other.read_text() == '{"mine": 1}'
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2_000_001)
    with pytest.raises(GcsbiFileError, match="more than"):
        load_population(big)
