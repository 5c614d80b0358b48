"""sbi-style use: ``sample((n,), x=x)``, ``set_default_x``, and posteriors trained with sbi's own NPE."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from gcsbi.inference.sbi_compat import MemoryTracker
from gcsbi.errors import GcsbiValueError
from gcsbi.inference import TrainedPosterior, calibrate, infer, load_posterior, simulate
from gcsbi.testing import ToyImageSimulator


def test_sample_like_sbi_global_rng_unless_seeded(toy_posterior, toy_sim):
    _, x = simulate(toy_sim, 2, seed=21, stream="inference")
    a, b = toy_posterior.sample((5,), x=x[0]), toy_posterior.sample((5,), x=x[0])
    assert a.shape == (5, 3) and not torch.equal(a, b)             # successive calls: fresh draws
    before = torch.get_rng_state()
    s1, s2 = toy_posterior.sample((5,), x=x[0], seed=4), toy_posterior.sample((5,), x=x[0], seed=4)
    assert torch.equal(s1, s2) and s1.numpy().tobytes() == s2.numpy().tobytes()
    assert torch.equal(before, torch.get_rng_state())              # a seeded call leaves the RNG alone
    assert not torch.equal(s1, toy_posterior.sample((5,), x=x[0], seed=5))
    torch.manual_seed(0)
    g1 = toy_posterior.sample((5,), x=x[0])
    torch.manual_seed(0)
    assert torch.equal(g1, toy_posterior.sample((5,), x=x[0]))     # the global RNG decides, as in sbi
    assert toy_posterior.sample((2, 3), x=x[0], seed=1).shape == (2, 3, 3)
    assert torch.equal(toy_posterior.sample(5, x[0], seed=4), s1)  # int shape, x positional
    assert torch.equal(toy_posterior.sample((5,), x=x[:1], seed=4), s1)  # a batch of one


def test_set_default_x(toy_posterior, toy_sim):
    _, x = simulate(toy_sim, 2, seed=22, stream="inference")
    post = TrainedPosterior(estimator=toy_posterior.estimator, prior=toy_posterior.prior, spec=toy_posterior.spec,
                            config=toy_posterior.config, history=toy_posterior.history, x_shape=toy_posterior.x_shape,
                            embedding_recipe=toy_posterior.embedding_recipe,
                            reference_embeddings=toy_posterior.reference_embeddings)
    with pytest.raises(GcsbiValueError, match="set_default_x"):
        post.sample((3,))
    assert post.set_default_x(x[1]) is post
    assert torch.equal(post.sample((4,), seed=2), post.sample((4,), x=x[1], seed=2))
    with torch.random.fork_rng():
        torch.manual_seed(3)
        lp = post.log_prob(post.prior.sample((2,)))
    assert lp.shape == (2,) and torch.isfinite(lp).all()
    with pytest.raises(GcsbiValueError, match="one observation"):
        post.sample((3,), x=x)
    with pytest.raises(GcsbiValueError, match="one observation"):
        post.set_default_x(torch.zeros(3, 8, 8))


def _sbi_npe(sim, n: int, seed: int, estimator):
    """Train sbi's own NPE (seeded, warnings of tiny runs silenced) on ``n`` toy simulations."""
    from sbi.inference import NPE

    theta, x = simulate(sim, n, seed=seed)
    with torch.random.fork_rng(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        npe = NPE(prior=sim.prior, density_estimator=estimator(), show_progress_bars=False,
                  tracker=MemoryTracker())  # no sbi-logs/ folder in the working directory
        npe.append_simulations(theta, x).train(max_num_epochs=3 if n > 100 else 1, training_batch_size=64 if n > 100 else 32,
                                               show_train_summary=False)
    return npe, x


@pytest.fixture(scope="module")
def sbi_npe():
    """A posterior trained with sbi's own NPE and a small PiDocEmbedding, nothing from gcsbi.train."""
    from sbi.neural_nets import posterior_nn

    from gcsbi.nets import PiDocEmbedding

    sim = ToyImageSimulator(size=16)

    def estimator():
        net = PiDocEmbedding(in_channels=3, groups={"flux": [1], "colour": [0, 2]}, width=4, features=8,
                             hidden=(16,))
        return posterior_nn("nsf", embedding_net=net, hidden_features=16, num_transforms=2)

    npe, _ = _sbi_npe(sim, 300, 5, estimator)
    return sim, npe, npe.build_posterior()


def test_from_sbi_calibrates_infers_and_round_trips(sbi_npe, tmp_path):
    from gcsbi.inference import TrainConfig

    sim, npe, posterior = sbi_npe
    ref_theta, ref_x = simulate(sim, 40, seed=6, stream="calibration")
    arch = TrainConfig(hidden_features=16, num_transforms=2)
    post = TrainedPosterior.from_sbi(posterior, simulator=sim, reference_x=ref_x, config=arch, inference=npe)
    assert post.config.z_score_x == "independent" and post.config.density_estimator == "nsf"
    assert post.x_shape == (3, 16, 16) and post.param_names == sim.param_names
    assert post.reference_embeddings.shape == (40, 8)
    assert post.embedding_recipe["class"] == "gcsbi.nets.pidoc:PiDocEmbedding"
    assert post.history["epochs_trained"] == npe.summary["epochs_trained"][-1]
    assert post.history["n_simulations"] == 300
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = calibrate(post, sim, n_held_out=30, num_posterior_samples=30, seed=3, c2st=False)
    for key in ("max_expected_coverage_deviation", "verdict", "tarp_atc", "parameters",
                "max_deviation_if_calibrated"):
        assert key in report
    assert set(report["parameters"]) == set(sim.param_names)
    numbers = [report["max_expected_coverage_deviation"], report["tarp_atc"]] + [
        p[k] for p in report["parameters"].values() for k in ("median_abs_error", "rms_error", "bias")]
    assert all(math.isfinite(v) for v in numbers)
    # infer: the OOD test runs on the reference embeddings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = infer(post, ref_x[0], num_samples=20, seed=1)
    assert dt.attrs["ood_test"].startswith("embedding MMD")
    # a checkpoint reloads the same posterior (the embedding has a config)
    loaded = load_posterior(post.save(tmp_path / "sbi.pt"), expected_spec=sim.spec)
    assert loaded.config == post.config
    assert torch.equal(loaded.sample((20,), x=ref_x[1], seed=7), post.sample((20,), x=ref_x[1], seed=7))
    torch.testing.assert_close(loaded.embed(ref_x[:4]), post.embed(ref_x[:4]))


def test_from_sbi_finds_the_kind_and_without_reference_skips_ood(sbi_npe, tmp_path):
    sim, npe, posterior = sbi_npe
    # the NPE object itself; the architecture differs from posterior_nn's defaults: config= is needed
    with pytest.raises(GcsbiValueError, match="config=TrainConfig"):
        TrainedPosterior.from_sbi(npe, simulator=sim)
    from gcsbi.inference import TrainConfig

    post = TrainedPosterior.from_sbi(npe, prior=sim.prior, spec=sim.spec,
                                     config=TrainConfig(hidden_features=16, num_transforms=2))
    assert post.reference_embeddings.shape == (0, 8) and post.history["epochs_trained"] >= 1
    _, x = simulate(sim, 1, seed=8, stream="inference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = infer(post, x[0], num_samples=10, seed=0)
    assert dt.attrs["ood_test"].startswith("not run") and dt.attrs["ood_flag"] == -1  # undetermined
    assert load_posterior(post.save(tmp_path / "noref.pt")).reference_embeddings.shape == (0, 8)
    # options that do not apply raise
    with pytest.raises(GcsbiValueError, match="not both"):
        TrainedPosterior.from_sbi(posterior, simulator=sim, prior=sim.prior)
    with pytest.raises(GcsbiValueError, match="spec"):
        TrainedPosterior.from_sbi(posterior)
    with pytest.raises(GcsbiValueError, match="x_pool"):
        TrainedPosterior.from_sbi(posterior, simulator=sim, config=TrainConfig(x_pool=2))
    with pytest.raises(GcsbiValueError, match="z_score_x"):
        TrainedPosterior.from_sbi(posterior, simulator=sim, config=TrainConfig(z_score_x="structured"))
    with pytest.raises(GcsbiValueError, match="condition shape"):
        TrainedPosterior.from_sbi(posterior, simulator=sim, x_shape=(3, 8, 8))
    with pytest.raises(GcsbiValueError, match="DirectPosterior"):
        TrainedPosterior.from_sbi(object(), simulator=sim)


def test_from_sbi_with_posterior_nn_defaults_needs_no_config():
    """sbi's posterior_nn defaults are TrainConfig's: the kind is found without a config (here maf)."""
    from sbi.neural_nets import posterior_nn

    from gcsbi.nets import SmallCNN

    sim = ToyImageSimulator(size=8)
    npe, x = _sbi_npe(sim, 60, 9, lambda: posterior_nn("maf", embedding_net=SmallCNN(3, features=4, channels=2)))
    post = TrainedPosterior.from_sbi(npe, simulator=sim, reference_x=x, n_reference=25)
    assert post.config.density_estimator == "maf" and post.config.n_reference == 25
    assert post.reference_embeddings.shape == (25, 4)
