"""Population-level inference (gcsbi.catalogue.population, .geometry): known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gcsbi.catalogue.geometry import M31_CENTRE_DEG, M31_DISTANCE_KPC, M31_INCLINATION_DEG, M31_PA_DEG, \
    m31_disc_radius_kpc
from gcsbi.catalogue.population import PopulationModel, bin_fractions, bootstrap_weights, fit_weights, \
    load_population, save_population
from gcsbi.errors import GcsbiFileError, GcsbiValueError

LOW, HIGH = np.array([7.0, 2.5, -2.5, 0.055]), np.array([10.15, 6.7, 0.3, 1.0])
EDGES = tuple(np.linspace(lo, hi, 3) for lo, hi in zip(LOW, HIGH))  # 2 bins per parameter: 16 bins


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


def _population(n_boot: int = 3, seed: int = 4) -> PopulationModel:
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(16), size=(n_boot + 1, 2))
    return PopulationModel("test-pop", EDGES, np.array([0.0, 10.0, 1000.0]), w,
                           {"n_clusters": 10, "training_box": [[7.0, 2.5, -2.5, 0.0], HIGH.tolist()]})


def test_histogram_density_bins_and_normalisation():
    pop = _population()
    assert pop.bin_index(np.array([HIGH])) == 15 and pop.bin_index(np.array([LOW])) == 0  # edges: closed box
    assert pop.bin_index(np.array([[7.5, 3.0, -1.0, 0.02]]))[0] == -1  # below the E(B-V) floor
    rng = np.random.default_rng(5)
    theta = LOW + (HIGH - LOW) * rng.random((200_000, 4))
    vol = np.prod(HIGH - LOW)
    for r in (3.0, 12.0):
        assert np.mean(np.exp(pop.log_density(theta, r))) * vol == pytest.approx(1.0, abs=0.02)
    w = pop.weights[1:].mean(0)
    b = pop.bin_index(theta[:5])
    np.testing.assert_allclose(pop.log_density(theta[:5], 12.0), np.log(w[1, b] / pop.volumes[b]))
    s = pop.sample(np.full(4000, 3.0), rng)
    assert np.all((s >= LOW) & (s <= HIGH))
    frac = np.bincount(pop.bin_index(s), minlength=16) / len(s)
    np.testing.assert_allclose(frac, w[0], atol=0.03)


def test_em_deconvolves_a_known_population():
    """Clusters from a known histogram population, each seen with noise as wide as a bin: the EM
    weights approach the truth, much closer than the histogram of the clusters' posterior medians."""
    rng = np.random.default_rng(3)
    truth = np.zeros(16)
    truth[[0, 5, 10, 15]] = [0.4, 0.3, 0.2, 0.1]
    pop = PopulationModel("truth", EDGES, np.array([0.0, 1000.0]), truth[None, None], {})
    n, k = 3000, 400
    theta = pop.sample(np.ones(n), rng)
    noise = 0.5 * (HIGH - LOW) / 2  # half a bin
    obs = theta + rng.normal(0, 1, (n, 4)) * noise
    draws = obs[:, None, :] + rng.normal(0, 1, (n, k, 4)) * noise  # flat-prior posterior, truncated below
    draws = np.clip(draws, LOW, HIGH)  # the box: draws piled on the edges stand for the mass beyond them
    f, usable = bin_fractions(pop, draws)
    assert usable.all()
    w, ll = fit_weights(f, alpha=0.01)
    naive = np.bincount(pop.bin_index(np.clip(np.median(draws, 1), LOW, HIGH)), minlength=16) / n
    tv_em, tv_naive = 0.5 * np.abs(w - truth).sum(), 0.5 * np.abs(naive - truth).sum()
    assert tv_em < 0.1 and tv_em < 0.5 * tv_naive, (tv_em, tv_naive)
    boots = bootstrap_weights(f, w, alpha=0.01, n_boot=5, rng=rng)
    assert boots.shape == (5, 16) and np.allclose(boots.sum(1), 1)


@pytest.mark.parametrize("kind", ["population", "near_uv"])
def test_model_files_round_trip_and_integrity(kind, tmp_path):
    """Population and near-UV discrepancy files: round trip, tampering, foreign files, size cap."""
    from gcsbi.catalogue.discrepancy import load_near_uv, save_near_uv

    save, load, model, key, leaf = {
        "population": (save_population, load_population, _population(), "population", ("weights", 0, 0, 0)),
        "near_uv": (save_near_uv, load_near_uv, load_near_uv(), "near_uv", ("coef", 0))}[kind]
    path = save(model, tmp_path / "m.json")
    back = load(path)
    if kind == "population":
        theta = (LOW + HIGH) / 2 + np.zeros((3, 4))
        np.testing.assert_allclose(back.log_density(theta, 5.0), model.log_density(theta, 5.0), rtol=1e-5)
    else:
        assert back.to_dict() == model.to_dict()
    doc = json.loads(path.read_text())
    node = doc[key]
    for k in leaf[:-1]:
        node = node[k]
    node[leaf[-1]] += 0.1
    path.write_text(json.dumps(doc))
    with pytest.raises(GcsbiFileError, match="SHA-256"):
        load(path)
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    with pytest.raises(GcsbiFileError, match="not overwriting"):
        save(model, other)
    assert other.read_text() == '{"mine": 1}'
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 4_000_001)
    with pytest.raises(GcsbiFileError, match="more than"):
        load(big)


def test_population_prior_reweights_at_the_cluster_radius(tmp_path):
    from gcsbi.catalogue.priors import PriorChoice, reweight

    pop = _population()
    path = save_population(pop, tmp_path / "pop.json")
    choice = PriorChoice(name="population", population=str(path))
    names = ("distance_kpc", "log10_mass", "log10_age_yr", "feh", "ebv")
    rng = np.random.default_rng(7)
    lo = np.array([700.0, LOW[1], LOW[0], LOW[2], 0.0])
    hi = np.array([850.0, HIGH[1], HIGH[0], HIGH[2], HIGH[3]])
    draws = lo + (hi - lo) * rng.random((4000, 5))
    ours = draws[:, [2, 1, 3, 4]]
    assert (ours[:, 3] < LOW[3]).any()
    np.testing.assert_allclose(choice.log_weights(draws, names, 3.0), pop.log_density(ours, 3.0), rtol=1e-5)
    assert not np.allclose(choice.log_weights(draws, names, 3.0), choice.log_weights(draws, names, 15.0))
    kept, info = reweight(draws, names, choice, 500, rng, radius_kpc=3.0)
    assert kept.shape == (500, 5) and kept[:, 4].min() >= LOW[3] and 0 < info["ess"] < 4000
    assert "population test-pop" in choice.describe()
    with pytest.raises(GcsbiValueError, match="needs parameters"):
        choice.log_weights(draws[:, :4], names[:4], 3.0)


def test_default_prior_is_the_box_with_the_floor_and_a_population_applies_only_where_learnt(tmp_path):
    import dataclasses
    import types

    import torch

    from gcsbi.catalogue.inference import default_choice, effective_choice, load_catalogue_posterior
    from gcsbi.catalogue.priors import PRESETS, PriorChoice

    post = load_catalogue_posterior()
    assert default_choice(post) == PRESETS["box"] and PRESETS["box"].ebv_min == pytest.approx(0.055)
    assert effective_choice(post, PRESETS["population"]) == PRESETS["population"]  # learnt for this posterior
    assert PRESETS["population"].population_model().low[3] == pytest.approx(0.055)
    assert "E(B-V) >= 0.055 (Milky Way foreground)" in PRESETS["box"].describe(post.prior)
    idx = [post.param_names.index(n) for n in ("log10_age_yr", "log10_mass", "feh", "ebv")]
    box = [post.prior.low.numpy()[idx].tolist(), post.prior.high.numpy()[idx].tolist()]
    pop = dataclasses.replace(_population(), meta={"training_box": box, "n_clusters": 10})
    choice = PriorChoice(name="population", population=str(save_population(pop, tmp_path / "pop.json")))
    assert effective_choice(post, choice) == choice
    wider = types.SimpleNamespace(param_names=post.param_names,
                                  prior=types.SimpleNamespace(low=post.prior.low - 1, high=post.prior.high))
    with pytest.raises(GcsbiValueError, match="was learnt for"):
        effective_choice(wider, choice)  # learnt inside a smaller box: it says nothing outside it
    other = types.SimpleNamespace(param_names=("log10_mass", "age_gyr", "feh", "ebv"),
                                  prior=types.SimpleNamespace(low=torch.tensor([2.5, 1.0, -2.5, 0.0]),
                                                              high=torch.tensor([6.7, 14.0, 0.3, 0.5])))
    assert default_choice(other) == PRESETS["box"]
