"""The catalogue-mode simulator keeps the sbi / gcsbi.bank simulator contract."""

from __future__ import annotations

import pytest
import torch

from gcsbi.catalogue.model import CatalogueModel
from gcsbi.catalogue.simulator import CatalogueSimulator, ProfileSimulator, split_profiles
from gcsbi.errors import GcsbiValueError


@pytest.fixture(scope="module")
def small():
    # a 96-pixel stamp (4.8") holds apertures up to 1.4" with their 1.7x background annulus
    return CatalogueSimulator(stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))


def test_contract(small):
    assert small.output_shape == (8,)
    assert small.param_names == small.prior.names
    spec = small.spec
    assert spec["simulator"]["kind"] == "catalogue" and spec["simulator"]["output_shape"] == [8]
    assert CatalogueModel.from_dict(spec["simulator"]["catalogue_model"]) == small.model
    theta = small.prior.sample((2,))
    theta[:, 1] = torch.tensor([4.3, 4.6])  # light clusters: fast
    x = small(theta, seed=3)
    assert x.shape == (2, 8) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, small(theta, seed=3))
    assert not torch.equal(x, small(theta, seed=4))
    prof = small.profiles(theta[:1], seed=3)
    parts = split_profiles(prof.numpy())
    assert parts["noisy"].shape == (1, 3, len(small.profiles.radii))
    assert torch.equal(small.from_profiles(prof, seed=3), x[:1])  # banked profiles -> same features


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
    assert bank.output_shape == (8,)
