from __future__ import annotations

import warnings

import pytest
import torch

from gcsbi.errors import GcsbiValueError, SpecError
from gcsbi.inference import SmallCNN, TrainConfig, simulate, train
from gcsbi.testing import ToyImageSimulator


def _tiny(sim, theta, x, seed, emb=None, *, init_from=None, pooled_from=None, out=None, **kw):
    if emb is None and init_from is None:
        emb = SmallCNN(3, features=4, channels=2)
    config = TrainConfig(**{"hidden_features": 8, "num_transforms": 1, "max_num_epochs": 2, "stop_after_epochs": 2,
                            "batch_size": 32, "seed": seed, **kw})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(theta, x, simulator=sim, embedding_net=emb, config=config, init_from=init_from,
                     pooled_from=pooled_from, out=out)


@pytest.fixture(scope="module")
def tiny_data():
    sim = ToyImageSimulator(size=16)
    theta, x = simulate(sim, 120, seed=3)
    return sim, theta, x


def test_no_files_in_cwd_and_rng_untouched(tiny_data, tmp_path, monkeypatch):
    sim, theta, x = tiny_data
    monkeypatch.chdir(tmp_path)
    emb = SmallCNN(3, features=4, channels=2)
    before = torch.get_rng_state()
    post = _tiny(sim, theta, x, seed=0, emb=emb)
    assert list(tmp_path.iterdir()) == []  # no ./sbi-logs TensorBoard folder
    assert torch.equal(before, torch.get_rng_state())
    assert post.history["epochs_trained"] >= 1
    assert len(post.history["validation_loss"]) == post.history["epochs_trained"]


def test_same_seed_same_weights(tiny_data):
    sim, theta, x = tiny_data
    a, b, c = (_tiny(sim, theta, x, seed=s).estimator.state_dict() for s in (7, 7, 8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_invalid_rows_dropped_and_bad_inputs(tiny_data):
    sim, theta, x = tiny_data
    x = x.clone()
    x[:5, 0, 0, 0] = float("nan")
    post = _tiny(sim, theta, x, seed=0)
    assert post.history["n_invalid_dropped"] == 5
    assert post.history["n_simulations"] == len(x) - 5
    with pytest.raises(GcsbiValueError, match="outside the prior"):
        _tiny(sim, theta + 10, x, seed=0)
    with pytest.raises(GcsbiValueError, match="differ in length"):
        _tiny(sim, theta[:-1], x, seed=0)
    with pytest.raises(GcsbiValueError, match="density_estimator"):
        TrainConfig(density_estimator="nope")
    with pytest.raises(GcsbiValueError, match="embedding_net"):
        train(theta, x, prior=sim.prior, embedding_net="cnn", spec=sim.spec)


def test_seed_streams_distinct_and_reproducible():
    sim = ToyImageSimulator(size=16)
    t1, x1 = simulate(sim, 20, seed=0, stream="train")
    t2, x2 = simulate(sim, 20, seed=0, stream="train")
    t3, _ = simulate(sim, 20, seed=0, stream="calibration")
    assert torch.equal(t1, t2) and torch.equal(x1, x2)
    assert not torch.allclose(t1, t3)


def test_x_pool_pools_before_the_estimator_and_survives_a_checkpoint(tiny_data, tmp_path):
    from gcsbi.inference import load_posterior
    from gcsbi.inference.posterior import pool_images
    from gcsbi.inference.seeding import seeded

    sim, theta, x = tiny_data
    post = _tiny(sim, theta, x, seed=0, x_pool=2, out=tmp_path / "p.pt")
    assert post.x_shape == tuple(x.shape[1:])                      # users still give full-size images
    assert torch.equal(post.condition(x[:3]), torch.nn.functional.avg_pool2d(x[:3], 2))
    again = load_posterior(tmp_path / "p.pt")
    assert again.config.x_pool == 2
    lp = []
    for p in (again, post):
        with seeded(4):  # sbi's leakage correction of log_prob draws from the global RNG
            lp.append(p.log_prob(theta[:5], x[:1]))
    torch.testing.assert_close(*lp)
    torch.testing.assert_close(post.embed(x[:4]), post.estimator.embedding_net(pool_images(x[:4], 2)))
    torch.testing.assert_close(again.sample(50, x[0], seed=1), post.sample(50, x[0], seed=1))
    with pytest.raises(GcsbiValueError, match="x_pool"):
        TrainConfig(x_pool=0)
    with pytest.raises(GcsbiValueError, match="x_pool"):
        pool_images(torch.zeros(2, 3, 1, 1), 2)


def test_refine_learning_rates_resume_on_the_same_split(tiny_data):
    sim, theta, x = tiny_data
    plain = _tiny(sim, theta, x, seed=0)
    staged = _tiny(sim, theta, x, seed=0, refine_learning_rates=[1e-4, 3e-5])
    h = staged.history
    assert len(h["stage_end_epochs"]) == 3 and h["stage_end_epochs"] == sorted(h["stage_end_epochs"])
    assert h["stage_end_epochs"][0] == plain.history["epochs_trained"]        # same first stage
    assert h["epochs_trained"] > plain.history["epochs_trained"]              # then more epochs
    assert len(h["validation_loss"]) == h["epochs_trained"]
    assert h["best_validation_loss"] <= plain.history["best_validation_loss"] + 1e-6
    assert staged.config.refine_learning_rates == (1e-4, 3e-5)
    with pytest.raises(GcsbiValueError, match="learning rates"):
        TrainConfig(refine_learning_rates=(1e-4, -1.0))


def test_init_from_fine_tunes_the_parent_and_dropout_is_overridden(tiny_data):
    sim, theta, x = tiny_data
    parent = _tiny(sim, theta, x, seed=0, x_pool=2, num_bins=4)
    before = {k: v.clone() for k, v in parent.estimator.state_dict().items()}
    # a vanishing learning rate keeps the parent's weights: proof that training starts from them
    child = _tiny(sim, theta, x, seed=1, init_from=parent, learning_rate=1e-12, x_pool=1)
    assert child.config.num_transforms == parent.config.num_transforms and child.config.x_pool == 2
    assert child.config.num_bins == 4
    # architecture options that differ from both the default and the parent's do not apply: they raise
    with pytest.raises(GcsbiValueError, match=r"num_transforms=3.*num_bins=9.*come from init_from"):
        _tiny(sim, theta, x, seed=1, init_from=parent, num_transforms=3, x_pool=1, num_bins=9)
    assert child.history["init_from"]["epochs_trained"] == parent.history["epochs_trained"]
    for k, v in child.estimator.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=1e-6, rtol=0)
        torch.testing.assert_close(parent.estimator.state_dict()[k], before[k], atol=0, rtol=0)  # parent untouched
    with pytest.raises(SpecError, match="different simulator"):
        train(theta, x, prior=sim.prior, spec={**sim.spec, "size": 99}, init_from=parent)
    # a refit on a new version of the simulator says so; the prior must still be the parent's
    assert "simulator" in sim.spec and "prior" in sim.spec
    newer = {**sim.spec, "simulator": {**sim.spec["simulator"], "sha256": "0" * 16}}
    with pytest.raises(SpecError, match="different simulator"):
        train(theta, x, prior=sim.prior, spec=newer, init_from=parent)
    with warnings.catch_warnings():  # one epoch: sbi warns that it has not converged
        warnings.simplefilter("ignore", UserWarning)
        refit = train(theta, x, prior=sim.prior, spec=newer, init_from=parent, new_simulator=True,
                      config=TrainConfig(max_num_epochs=1, learning_rate=1e-12, x_pool=1))
    assert refit.spec == newer and refit.history["init_from"]["simulator"] == sim.spec["simulator"]
    other_prior = {**newer, "prior": {**sim.spec["prior"], "name": "elsewhere"}}
    with pytest.raises(SpecError, match="prior"):
        train(theta, x, prior=sim.prior, spec=other_prior, init_from=parent, new_simulator=True)
    with pytest.raises(GcsbiValueError, match="this very simulator"):
        train(theta, x, prior=sim.prior, spec=sim.spec, init_from=parent, new_simulator=True)
    emb = torch.nn.Sequential(SmallCNN(3, features=4, channels=2), torch.nn.Dropout(0.5))
    nodrop = _tiny(sim, theta, x, seed=0, emb=emb, dropout=0.0)
    drops = [m for m in nodrop.estimator.modules() if isinstance(m, torch.nn.Dropout)]
    assert drops and all(m.p == 0.0 for m in drops) and nodrop.config.dropout == 0.0
    with pytest.raises(GcsbiValueError, match="dropout"):
        TrainConfig(dropout=1.5)


def test_pooled_from_equals_pooling_inside_train(tiny_data):
    from gcsbi.inference.posterior import pool_images
    from gcsbi.inference.seeding import seeded

    sim, theta, x = tiny_data
    inside = _tiny(sim, theta, x, seed=0, x_pool=2)
    outside = _tiny(sim, theta, pool_images(x, 2), seed=0, x_pool=2, pooled_from=tuple(x.shape[1:]))
    assert outside.x_shape == inside.x_shape == tuple(x.shape[1:])
    torch.testing.assert_close(outside.reference_embeddings, inside.reference_embeddings)
    lp = []
    for p in (inside, outside):
        with seeded(4):
            lp.append(p.log_prob(theta[:5], x[:1]))
    torch.testing.assert_close(*lp)
    with pytest.raises(GcsbiValueError, match="pooled by"):
        _tiny(sim, theta, x, seed=0, x_pool=2, pooled_from=tuple(x.shape[1:]))


def test_channel_standardize_is_per_channel_and_bounded_on_sparse_channels():
    from gcsbi.nets.standardize import ChannelStandardize

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, 8, 8, generator=gen) * torch.tensor([3.0, 1.0])[None, :, None, None] + 5.0
    x[:, 1] = 0.0
    x[0, 1, 0, 0] = 1.0                      # one rare count in an otherwise empty histogram bin
    x[:, 1, 4, 4] = 2.0                      # a constant pixel
    z = ChannelStandardize.from_data(x)(x)
    torch.testing.assert_close(z[:, 0].mean(), torch.tensor(0.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(z[:, 0].std(), torch.tensor(1.0), atol=1e-3, rtol=0)
    assert z[:, 1].abs().max() < 200         # per-pixel z-scoring would give (1 - 1/400) / std ~ 20
    per_pixel = (x - x.mean(0)) / x.std(0).clamp_min(1e-14)
    assert per_pixel[0, 1, 0, 0] > 19 and z[0, 1, 0, 0] < per_pixel[0, 1, 0, 0]
    assert torch.isfinite(ChannelStandardize.from_data(torch.ones(5, 3))(torch.ones(5, 3))).all()
    with pytest.raises(GcsbiValueError, match="z_score_x"):
        TrainConfig(z_score_x="pixel")


@pytest.mark.parametrize("density_estimator", ["nsf", "zuko_nsf"])
def test_train_embedding_false_trains_the_flow_only(tiny_data, tmp_path, density_estimator):
    from gcsbi.inference import load_posterior
    from gcsbi.inference.seeding import seeded

    sim, theta, x = tiny_data
    parent = _tiny(sim, theta, x, seed=0, x_pool=2, density_estimator=density_estimator)
    before = {k: v.clone() for k, v in parent.estimator.state_dict().items()}
    child = _tiny(sim, theta[:80], x[:80], seed=1, init_from=parent, train_embedding=False, learning_rate=1e-2)
    assert child.config.train_embedding is False and child.config.density_estimator == density_estimator
    after = child.estimator.state_dict()
    assert set(after) == set(before)
    emb = [k for k in before if "_embedding_net" in k]
    flow = [k for k in before if k not in emb and before[k].is_floating_point()]
    assert emb and flow
    for k in emb:  # the embedding (input standardisation, weights, batch-norm statistics) is kept exactly
        torch.testing.assert_close(after[k], before[k], atol=0, rtol=0)
    assert any(not torch.equal(after[k], before[k]) for k in flow)  # the flow was trained
    for k, v in parent.estimator.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)  # parent untouched
    feats = parent.embed(x[:80])
    torch.testing.assert_close(child.embed(x[:80]), feats, atol=0, rtol=0)
    assert len(child.reference_embeddings) == 80  # rows of the (fixed) embedded training x
    assert (child.reference_embeddings[:, None] - feats[None]).abs().amax(-1).min(1).values.max() < 1e-6
    # the result is an ordinary posterior on images, and survives a checkpoint
    loaded = load_posterior(child.save(tmp_path / "child.pt"))
    assert loaded.config.train_embedding is False
    lp = []
    for p in (child, loaded):
        with seeded(2):
            lp.append(p.log_prob(theta[:4], x[:1]))
    torch.testing.assert_close(*lp)
    assert torch.isfinite(lp[0]).all()
    with pytest.raises(GcsbiValueError, match="init_from"):
        _tiny(sim, theta, x, seed=0, train_embedding=False)
