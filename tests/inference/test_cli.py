from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from gcsbi.cli import main
from gcsbi.inference import simulate
from gcsbi.testing import ToyImageSimulator

TOY = "gcsbi.testing.toy:ToyImageSimulator"


@pytest.fixture(scope="module")
def cli_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "toy.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["train", "--simulations", "300", "--spec", TOY, "--embedding", "small-cnn", "--features", "8",
                   "--max-epochs", "2", "--stop-after-epochs", "2", "--batch-size", "64", "--x-pool", "2",
                   "--refine-lr", "1e-4", "--num-bins", "6", "--hidden-features", "12", "--num-transforms", "2",
                   "--out", str(out)])
    assert rc == 0
    from gcsbi.inference import load_posterior

    config = load_posterior(out).config
    assert config.x_pool == 2 and config.refine_learning_rates == (1e-4,)
    assert (config.num_bins, config.hidden_features, config.num_transforms) == (6, 12, 2)
    return out


def test_train_then_calibrate_json(cli_ckpt, capsys):
    assert cli_ckpt.is_file()
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["calibrate", str(cli_ckpt), "--spec", TOY, "--n-held-out", "40", "--num-posterior-samples", "40",
                   "--no-c2st", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.0 <= report["max_expected_coverage_deviation"] <= 1.0
    assert set(report["parameters"]) == {"log10_flux", "width", "colour"}


def test_infer_npy(cli_ckpt, tmp_path, capsys):
    _, x = simulate(ToyImageSimulator(size=16), 1, seed=9, stream="inference")
    np.save(tmp_path / "obs.npy", x[0].numpy())
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["infer", str(cli_ckpt), str(tmp_path / "obs.npy"), "--num-samples", "50", "--json",
                   "--out", str(tmp_path / "post.zarr")])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["summary"]) == {"log10_flux", "width", "colour"}
    assert "ood_pvalue" in out["attrs"]
    import xarray as xr

    saved = xr.open_datatree(tmp_path / "post.zarr", engine="zarr", consolidated=False)
    assert saved["posterior"]["width"].shape == (1, 50)


def test_cli_errors(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "a.pt")]) == 1
    assert "either a bank path" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "no-such-bank.zarr"), "--out", str(tmp_path / "a.pt")]) == 1
    assert main(["infer", str(tmp_path / "missing.pt"), "x.npy"]) == 1
    assert "not found" in capsys.readouterr().err


def test_train_init_from_with_dropout(cli_ckpt, tmp_path):
    from gcsbi.inference import load_posterior

    out = tmp_path / "fine.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["train", "--simulations", "100", "--spec", TOY, "--seed", "5", "--max-epochs", "1",
                   "--batch-size", "64", "--init-from", str(cli_ckpt), "--dropout", "0", "--out", str(out)])
    assert rc == 0
    fine = load_posterior(out)
    assert fine.config.dropout == 0.0 and fine.config.x_pool == 2  # architecture from the parent
    assert fine.history["init_from"]["n_simulations"] == 300


def test_train_flow_only(cli_ckpt, tmp_path):
    from gcsbi.inference import load_posterior

    out = tmp_path / "head.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(["train", "--simulations", "100", "--spec", TOY, "--seed", "6", "--max-epochs", "1",
                   "--batch-size", "64", "--init-from", str(cli_ckpt), "--flow-only", "--out", str(out)])
    assert rc == 0
    head, parent = load_posterior(out), load_posterior(cli_ckpt)
    assert head.config.train_embedding is False and parent.config.train_embedding is True
    emb = {k: v for k, v in parent.estimator.state_dict().items() if "_embedding_net" in k}
    for k, v in head.estimator.state_dict().items():
        if k in emb:
            assert v.equal(emb[k]), k
