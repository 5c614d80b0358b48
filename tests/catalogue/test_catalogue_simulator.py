"""The catalogue-mode simulator keeps the sbi / gcsbi.bank simulator contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gcsbi.catalogue.model import CatalogueModel, features
from gcsbi.catalogue.simulator import CatalogueSimulator, ProfileSimulator, split_profiles
from gcsbi.errors import GcsbiValueError


@pytest.fixture(scope="module", params=[("hst-phat6", 6), ("hst-phat", 3)], ids=["six-bands", "three-bands"])
def small(request):
    # a 96-pixel stamp (4.8") holds apertures up to 1.4" with their 1.7x background annulus
    spec, n_bands = request.param
    return CatalogueSimulator(spec, stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4))), n_bands


def test_contract(small):
    small, n_bands = small
    n_x = 2 * n_bands + 2
    assert small.output_shape == (n_x,) and len(small.feature_names) == n_x
    assert small.param_names == small.prior.names
    spec = small.spec
    assert spec["simulator"]["kind"] == "catalogue" and spec["simulator"]["output_shape"] == [n_x]
    assert CatalogueModel.from_dict(spec["simulator"]["catalogue_model"]) == small.model
    theta = small.prior.sample((2,))
    theta[:, 1] = torch.tensor([4.3, 4.6])  # light clusters: fast
    x = small(theta, seed=3)
    assert x.shape == (2, n_x) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, small(theta, seed=3))
    assert not torch.equal(x, small(theta, seed=4))
    prof = small.profiles(theta[:1], seed=3)
    parts = split_profiles(prof.numpy(), n_bands)
    assert parts["noisy"].shape == (1, n_bands, len(small.profiles.radii))
    assert torch.equal(small.from_profiles(prof, seed=3, theta=theta[:1]), x[:1])  # banked profiles -> same features


def test_limits_and_missing_bands_follow_the_catalogue():
    """Faint bands become 3-sigma upper limits (error 1.0); bands go missing at the catalogue's rate."""
    from gcsbi.catalogue.model import LIMIT_ERROR, MISSING_ERROR, catalogue_values_from_features, drop_bands

    model = CatalogueModel()
    rng = np.random.default_rng(0)
    bands = model.missing_fraction.keys()
    values = {"mag": np.full((20000, 6), 20.0), "err": np.full((20000, 6), 0.1), "upper_limit": np.zeros((20000, 6), bool)}
    out = drop_bands(values, tuple(bands), model, rng)
    rate = np.isnan(out["mag"]).mean(0)
    expected = np.array(list(model.missing_fraction.values()))
    assert np.all(np.abs(rate - expected) < 4 * np.sqrt(expected / 20000) + 1e-3), (rate, expected)
    assert np.isfinite(out["mag"]).any(1).all()  # never every band
    x = features(out["mag"][:3], out["err"][:3], np.full(3, 0.5), np.full(3, 1.5))
    back = catalogue_values_from_features(x)
    np.testing.assert_array_equal(np.isnan(back["mag"]), np.isnan(out["mag"][:3]))
    assert MISSING_ERROR > LIMIT_ERROR


def test_faint_bands_are_upper_limits():
    sim = CatalogueSimulator("hst-phat6", "m31-clusters", stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))
    theta = sim.prior.sample((4,))
    theta[:, sim.param_names.index("log10_mass")] = 2.6  # faint: most bands below 3 sigma
    theta[:, sim.param_names.index("ebv")] = 0.9
    v = sim.measure(sim.profiles(theta, seed=0).numpy(), np.random.default_rng(0))
    assert v["upper_limit"].any()
    assert np.all(v["err"][v["upper_limit"]] == 1.0)


def test_features_reject_bad_values():
    with pytest.raises(GcsbiValueError, match="finite error"):
        features(np.array([[18.0, 19.0]]), np.array([[0.1, np.nan]]), np.array([0.5]), np.array([1.0]))
    with pytest.raises(GcsbiValueError, match="Rap"):
        features(np.array([[18.0, 19.0]]), np.array([[0.1, 0.1]]), np.array([0.5]), np.array([0.0]))


def test_stamp_too_small_for_apertures():
    with pytest.raises(GcsbiValueError, match="stamp"):
        CatalogueSimulator(stamp=64)
    with pytest.raises(GcsbiValueError, match="stamp"):
        ProfileSimulator(stamp=16)


def test_bank_factory(tmp_path):
    from gcsbi.bank.store import SimulationBank

    bank = SimulationBank.create(tmp_path / "b.zarr", simulator_factory="gcsbi.catalogue.simulator:catalogue_simulator",
                                 factory_kwargs={"stamp": 96, "model": {"rap_range": [0.5, 1.4]}}, n=2, chunk_size=2,
                                 seed=1)
    assert bank.output_shape == (14,)
