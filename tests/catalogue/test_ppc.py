"""Posterior-predictive checks of catalogue magnitudes: a cluster the model makes passes, a changed one fails."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi.catalogue.model import CatalogueModel
from gcsbi.catalogue.ppc import posterior_predictive_check, ppc_simulator
from gcsbi.catalogue.simulator import CatalogueSimulator
from gcsbi.errors import GcsbiValueError


@pytest.fixture(scope="module")
def sim():
    return CatalogueSimulator("hst-phat6", "m31-clusters", stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))


@pytest.fixture(scope="module")
def case(sim):
    names = sim.param_names
    theta = torch.tensor([[780.0, 5.3, 9.9, -1.2, 0.45, 7.0, 0.2, 0.1, 30.0, 0.15, 22.0]])
    assert len(names) == theta.shape[1]
    prof = sim.profiles(theta, seed=11).numpy()
    v = sim.measure(prof, np.random.default_rng(2), offsets=sim.near_uv_offsets(theta, seed=11))
    values = {"mag": v["mag"][0], "upper_limit": v["upper_limit"][0], "rap": float(v["rap"][0]),
              "bands": list(sim.profiles.filters)}
    draws = theta.repeat(24, 1).numpy()
    draws[:, names.index("log10_mass")] += np.random.default_rng(0).normal(0, 0.02, 24)
    return values, draws


def test_a_cluster_the_model_makes_passes(sim, case):
    values, draws = case
    out = posterior_predictive_check(values, draws, sim, seed=5)
    assert out["pvalue"] > 0.05, out
    assert set(out["bands"]) <= set(sim.profiles.filters) and len(out["bands"]) >= 4
    assert all(abs(r) < 0.5 for r in out["residual"].values())


def test_a_cluster_with_a_wrong_band_fails(sim, case):
    values, draws = case
    bad = dict(values, mag=np.array(values["mag"], float).copy())
    bad["mag"][sim.profiles.filters.index("F336W")] += 0.8  # a near-UV the model cannot make
    out = posterior_predictive_check(bad, draws, sim, seed=5)
    assert out["pvalue"] <= 2 / 25, out
    assert out["residual"]["F336W"] > 0.5


def test_bad_inputs(sim, case):
    values, draws = case
    with pytest.raises(GcsbiValueError, match="shape"):
        posterior_predictive_check(values, draws[:4], sim, seed=0)
    few = dict(values, mag=np.full(6, np.nan))
    with pytest.raises(GcsbiValueError, match="two detected bands"):
        posterior_predictive_check(few, draws, sim, seed=0)


def test_rebuilds_the_posterior_simulator():
    from gcsbi.catalogue.inference import _ppc_draws, load_catalogue_posterior

    post = load_catalogue_posterior()
    s = ppc_simulator(post)
    assert s.profiles.stamp == post.spec["simulator"]["stamp"] and s.prior.name == post.prior.name
    assert s is ppc_simulator(post)  # cached
    for bad in (-1, 3, 5000, 2.5, True):
        with pytest.raises(GcsbiValueError, match="ppc_draws"):
            _ppc_draws(bad)


def test_only_registered_specs_are_rebuilt():
    from types import SimpleNamespace

    fake = SimpleNamespace(spec={"simulator": {"kind": "catalogue", "name": "/tmp/evil.toml", "stamp": 96}},
                           prior=SimpleNamespace(name="m31-clusters"))
    with pytest.raises(GcsbiValueError, match="registered"):
        ppc_simulator(fake)
    fake.spec["simulator"]["name"] = "hst-phat6"
    fake.prior.name = "../priors/m31-clusters"
    with pytest.raises(GcsbiValueError, match="registered"):
        ppc_simulator(fake)
