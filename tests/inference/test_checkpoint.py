from __future__ import annotations

import pytest
import torch
from gcsbi.errors import GcsbiFileError, GcsbiValueError, SpecError
from gcsbi.inference import SmallCNN, load_posterior, simulate
from gcsbi.inference.checkpoint import spec_differences
from gcsbi.nets.recipe import build_embedding


@pytest.fixture(scope="module")
def ckpt(toy_posterior, tmp_path_factory):
    return toy_posterior.save(tmp_path_factory.mktemp("ckpt") / "post.pt")


def test_roundtrip_same_draws_and_metadata(toy_posterior, toy_sim, ckpt):
    assert ckpt.stat().st_size < 10 * 2**20
    loaded = load_posterior(ckpt, expected_spec=toy_sim.spec)
    _, x = simulate(toy_sim, 2, seed=11, stream="inference")
    assert torch.equal(toy_posterior.sample(50, x[0], seed=3), loaded.sample(50, x[0], seed=3))
    assert loaded.param_names == toy_sim.param_names
    assert loaded.units == toy_sim.prior.units
    assert set(loaded.versions) == {"gcsbi", "torch", "sbi", "numpy"}
    assert loaded.history["epochs_trained"] == toy_posterior.history["epochs_trained"]
    assert loaded.config == toy_posterior.config
    assert torch.equal(loaded.reference_embeddings, toy_posterior.reference_embeddings)


def test_mismatched_spec_names_keys(toy_sim, ckpt):
    other = {**toy_sim.spec, "simulator": {**toy_sim.spec["simulator"], "noise": 0.5}}
    with pytest.raises(SpecError, match=r"simulator\.noise"):
        load_posterior(ckpt, expected_spec=other)
    assert spec_differences({"a": {"b": 1}}, {"a": {"b": 1}, "c": 2}) == ["c"]


def test_corrupt_truncated_missing(ckpt, tmp_path):
    data = ckpt.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all" * 10)
    torch.save({"hello": torch.zeros(2)}, tmp_path / "other.pt")
    for name in ("trunc.pt", "junk.pt", "other.pt", "missing.pt"):
        with pytest.raises(GcsbiFileError):
            load_posterior(tmp_path / name)


def test_embedding_recipe_safety(toy_posterior, tmp_path):
    with pytest.raises(GcsbiValueError, match="refusing"):
        build_embedding({"class": "os:system", "kwargs": {"command": "true"}})
    with pytest.raises(GcsbiValueError, match="no 'config'"):
        build_embedding({"class": "torch.nn:Sequential", "kwargs": None})
    with pytest.raises(GcsbiValueError, match="weights do not fit"):
        load_posterior(toy_posterior.save(tmp_path / "p.pt"), embedding_net=SmallCNN(3, features=5, channels=4))


def test_shipped_posterior_by_name():
    import gcsbi

    names = gcsbi.shipped_posteriors()
    assert "hst-phat_m31-gc" in names
    post = gcsbi.load_posterior("hst-phat_m31-gc")
    assert post.spec["prior"]["name"] == "m31-gc"
    with pytest.raises(GcsbiFileError, match="shipped posterior"):
        load_posterior("no-such-posterior")
