"""One TrainConfig: its command-line options are generated from its fields; options that do not apply raise."""

from __future__ import annotations

import argparse
import dataclasses
import warnings

import pytest

from gcsbi.errors import GcsbiValueError
from gcsbi.inference import SmallCNN, TrainConfig, simulate, train
from gcsbi.inference.cli import add_config_arguments, config_from_args
from gcsbi.testing import ToyImageSimulator


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_config_arguments(p, **kw)
    return p


def test_every_field_is_an_option_with_help():
    p = _parser()
    options = {o for a in p._actions for o in a.option_strings}
    helps = {o: a.help for a in p._actions for o in a.option_strings}
    for f in dataclasses.fields(TrainConfig):
        option = f"--{f.name.replace('_', '-')}"
        assert option in options
        assert f.metadata["help"] and helps[option].startswith(f.metadata["help"][:20])
    assert {"--no-train-embedding", "--flow-only", "--max-epochs", "--refine-lr"} <= options


def test_only_given_options_override_the_defaults():
    p = _parser()
    assert config_from_args(p.parse_args([])) == TrainConfig()
    args = p.parse_args(["--max-epochs", "3", "--refine-lr", "1e-4", "3e-5", "--dropout", "0", "--flow-only",
                         "--clip-max-norm", "none", "--density-estimator", "maf", "--no-init-embedding",
                         "--x-pool", "2"])
    c = config_from_args(args)
    assert (c.max_num_epochs, c.refine_learning_rates, c.dropout, c.train_embedding) == (3, (1e-4, 3e-5), 0.0, False)
    assert (c.clip_max_norm, c.density_estimator, c.init_embedding, c.x_pool) == (None, "maf", False, 2)
    assert c.learning_rate == TrainConfig().learning_rate
    assert config_from_args(p.parse_args(["--train-embedding"])).train_embedding is True
    assert config_from_args(p.parse_args(["--refine-learning-rates"])).refine_learning_rates == ()
    with pytest.raises(SystemExit):
        p.parse_args(["--density-estimator", "nope"])
    with pytest.raises(GcsbiValueError, match="batch_size"):
        config_from_args(p.parse_args(["--batch-size", "0"]))
    # a script's own defaults, short names, and fields it sets itself
    q = _parser(defaults={"x_pool": 2, "refine_learning_rates": (3e-4,)}, aliases={"learning_rate": ("--lr",)},
                exclude=("seed",))
    c = config_from_args(q.parse_args(["--lr", "1e-3"]), seed=7)
    assert (c.x_pool, c.refine_learning_rates, c.learning_rate, c.seed) == (2, (3e-4,), 1e-3, 7)
    with pytest.raises(SystemExit):
        q.parse_args(["--seed", "1"])


def test_config_fields_that_do_not_apply_to_the_estimator():
    with pytest.raises(GcsbiValueError, match="num_bins=4: not used by density_estimator='maf'"):
        TrainConfig(density_estimator="maf", num_bins=4)
    with pytest.raises(GcsbiValueError, match="num_transforms=2"):
        TrainConfig(density_estimator="mdn", num_transforms=2)
    assert TrainConfig(density_estimator="maf_rqs", num_bins=4).num_bins == 4
    # a checkpoint's config: missing fields take their defaults, unused values are dropped
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "init_embedding"}
    assert TrainConfig.from_dict(old) == TrainConfig()
    assert TrainConfig.from_dict({**old, "density_estimator": "maf", "num_bins": 4}).num_bins == 10
    assert TrainConfig.from_dict(old, device="meta").device == "meta"


@pytest.fixture(scope="module")
def toy():
    sim = ToyImageSimulator(size=16)
    theta, x = simulate(sim, 100, seed=1)
    return sim, theta, x


def test_train_refuses_options_that_do_not_apply(toy):
    sim, theta, x = toy
    fast = TrainConfig(hidden_features=8, num_transforms=1, max_num_epochs=1, batch_size=32)
    emb = SmallCNN(3, features=4, channels=2)
    with pytest.raises(GcsbiValueError, match="not both"):
        train(theta, x, simulator=sim, prior=sim.prior, embedding_net=emb, config=fast)
    with pytest.raises(GcsbiValueError, match="not both"):
        train(theta, x, simulator=sim, spec=sim.spec, embedding_net=emb, config=fast)
    with pytest.raises(GcsbiValueError, match="simulator="):
        train(theta, x, prior=sim.prior, embedding_net=emb, config=fast)
    with pytest.raises(GcsbiValueError, match="TrainConfig"):
        train(theta, x, simulator=sim, embedding_net=emb, config={"max_num_epochs": 1})
    with pytest.raises(GcsbiValueError, match="pooled_from does not apply with x_pool=1"):
        train(theta, x, simulator=sim, embedding_net=emb, config=fast, pooled_from=(3, 16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parent = train(theta, x, simulator=sim, embedding_net=emb, config=fast)
    with pytest.raises(GcsbiValueError, match="embedding_net does not apply with train_embedding=False"):
        train(theta, x, simulator=sim, embedding_net=SmallCNN(3, features=4, channels=2), init_from=parent,
              config=dataclasses.replace(fast, train_embedding=False))
    with pytest.raises(GcsbiValueError, match=r"density_estimator='maf' \(init_from has 'nsf'\).*leave them"):
        train(theta, x, simulator=sim, init_from=parent, config=dataclasses.replace(fast, density_estimator="maf"))
    with pytest.raises(GcsbiValueError, match="z_score_x"):
        train(theta, x, simulator=sim, init_from=parent, config=dataclasses.replace(fast, z_score_x="none"))
    # equal to the parent's, or left at the default: fine; the child records the parent's architecture
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        child = train(theta, x, simulator=sim, init_from=parent, config=dataclasses.replace(fast, hidden_features=8))
    assert child.config.hidden_features == 8 and child.config.num_transforms == 1
    assert child.config.init_embedding is False


def test_cli_refuses_options_that_do_not_apply(tmp_path, capsys):
    from gcsbi.cli import main

    toy = "gcsbi.testing.toy:ToyImageSimulator"
    out = str(tmp_path / "p.pt")
    assert main(["train", "--simulations", "50", "--spec", toy, "--init-from", "hst-phat_m31-gc",
                 "--embedding", "small-cnn", "--out", out]) == 1
    assert "do not apply with --init-from" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "bank.zarr"), "--spec", toy, "--out", out]) == 1
    assert "not used with a bank" in capsys.readouterr().err
    assert main(["train", "--simulations", "50", "--spec", toy, "--batch-size", "0", "--out", out]) == 1
    assert "batch_size must be >= 1" in capsys.readouterr().err
    assert main(["train", "--simulations", "50", "--spec", "toy", "--out", out]) == 1  # no special-cased toy
