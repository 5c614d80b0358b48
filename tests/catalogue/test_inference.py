"""Catalogue mode end to end on a toy posterior: the gcsbi.infer hook, range flags, batch mode, CLI."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import gcsbi
from gcsbi.nets.mlp import CatalogueMLP
from gcsbi.catalogue.model import CatalogueModel, feature_names, features
from gcsbi.errors import GcsbiValueError, OutOfDistributionWarning, PriorEdgeWarning
from gcsbi.spec.priors import load_prior


THREE = ("F336W", "F475W", "F814W")
FEATURES = feature_names(THREE)


@pytest.fixture(scope="module")
def toy_posterior(tmp_path_factory):
    """NPE on a made-up linear 'catalogue' (mags from mass and E(B-V)); a few epochs: fast, not accurate."""
    from gcsbi.inference import TrainConfig, load_posterior, train

    prior = load_prior("m31-gc")
    g = torch.Generator().manual_seed(0)
    n = 600
    theta = prior.low + (prior.high - prior.low) * torch.rand((n, len(prior.names)), generator=g)
    lm, ebv = theta[:, 1:2], theta[:, 9:10]
    mags = 17.0 - 2.5 * (lm - 5.6) + torch.tensor([[0.5, 0.0, -1.4]]) + torch.tensor([[4.0, 3.6, 1.9]]) * ebv
    mags = mags + 0.05 * torch.randn(mags.shape, generator=g)
    err = 10 ** (-1.3 + 0.18 * (mags - 20))
    reff = 0.3 + 0.5 * torch.rand(n, generator=g)
    rap = 1.0 + 2.0 * torch.rand(n, generator=g)
    x = torch.from_numpy(features(mags.numpy(), err.numpy(), reff.numpy(), rap.numpy()))
    spec = {"simulator": {"name": "toy", "kind": "catalogue", "features": list(FEATURES), "filters": list(THREE),
                          "catalogue_model": CatalogueModel().to_dict()},
            "prior": {"name": prior.name}}
    post = train(theta, x, prior=prior, embedding_net=CatalogueMLP(hidden=16, features=8), spec=spec,
                 config=TrainConfig(max_num_epochs=3, hidden_features=16, num_transforms=2, seed=0))
    lo, hi = np.percentile(x.numpy(), [0, 100], axis=0)
    post.history["x_range"] = {"names": list(FEATURES), "low": lo.tolist(), "high": hi.tolist()}
    path = tmp_path_factory.mktemp("post") / "toy_catalogue.pt"
    post.save(path)
    return load_posterior(path)


def test_infer_by_name_and_row(toy_posterior, shared_data, monkeypatch):
    from gcsbi.catalogue.catalogues import read_phat_catalogue, resolve_cluster

    monkeypatch.setenv("GCSBI_SHARED_DATA", str(shared_data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDistributionWarning)
        warnings.simplefilter("ignore", PriorEdgeWarning)
        dt = gcsbi.infer(toy_posterior, "B165", num_samples=200, seed=1)
        row = resolve_cluster(166, read_phat_catalogue())
        dt2 = gcsbi.infer(toy_posterior, row, num_samples=200, seed=1)
    assert json.loads(dt.attrs["cluster"]) == {"APID": 166, "AltID": "B165-G218",  # JSON text: NetCDF-safe
                                               "RAdeg": 10.825944, "DEdeg": 41.18187}
    assert json.loads(dt.attrs["catalogue_values"])["mag"] == [17.23, 17.02, 15.64]
    assert "range_flag" in dt.attrs and "ood_flag" in dt.attrs
    np.testing.assert_array_equal(dt["posterior"]["log10_mass"].values, dt2["posterior"]["log10_mass"].values)
    assert dt["posterior"]["log10_mass"].shape == (1, 200)
    with pytest.raises(GcsbiValueError, match="unknown cluster"):
        gcsbi.infer(toy_posterior, "NOSUCHCLUSTER", num_samples=10)


def test_infer_array_range_flag(toy_posterior):
    x = features(np.array([[17.0, 16.8, 15.5]]), np.array([[0.01, 0.01, 0.02]]), np.array([0.5]), np.array([2.0]))[0]
    dt = gcsbi.infer(toy_posterior, x, num_samples=50, check_ood=False)
    assert dt.attrs["range_flag"] == 0 and dt.attrs["features_out_of_range"] == []
    far = x.copy()
    far[0] = 30.0  # F336W 48 mag
    with pytest.warns(OutOfDistributionWarning, match="outside the range"):
        dt = gcsbi.infer(toy_posterior, far, num_samples=50, check_ood=False)
    assert dt.attrs["range_flag"] == 1 and dt.attrs["features_out_of_range"] == ["F336W"]
    with pytest.raises(GcsbiValueError, match="NaN"):
        gcsbi.infer(toy_posterior, np.full(8, np.nan, np.float32), num_samples=10)
    with pytest.raises(GcsbiValueError, match="shape"):
        gcsbi.infer(toy_posterior, np.zeros(7, np.float32), num_samples=10)


def test_batch_mode(toy_posterior, shared_data, tmp_path):
    from astropy.table import Table

    from gcsbi.catalogue.catalogues import caldwell_matched
    from gcsbi.catalogue.compare import compare_with_caldwell, plot_comparison
    from gcsbi.catalogue.inference import infer_catalogue

    m = shared_data / "m31"
    t = caldwell_matched(m / "phat_ap_clusters_johnson2015.fits", m / "caldwell2011_m31_old_clusters.dat")
    sub = t[:6]
    res = infer_catalogue(sub, toy_posterior, num_samples=100, batch_size=4, progress=False, out=tmp_path / "r.ecsv")
    assert len(res) == 6
    for c in ("APID", "status", "log10_mass_p50", "feh_p2.5", "ood_flag", "range_flag", "any_ood",
              "caldwell_log_mass"):
        assert c in res.colnames
    used = np.char.startswith(np.asarray(res["status"]).astype(str), "ok")
    assert used.sum() >= 4  # two of the first rows have no PHAT photometry -> skipped with the reason
    assert all("no magnitude in any" in s for s in np.asarray(res["status"])[~used])
    assert "PRIOR" in res.meta and res.meta["BANDS"] == "F336W,F475W,F814W"
    assert np.all(np.isfinite(np.asarray(res["log10_mass_p50"])[used]))
    back = Table.read(tmp_path / "r.ecsv")
    assert len(back) == 6
    infer_catalogue(sub[:2], toy_posterior, num_samples=20, progress=False, out=tmp_path / "r.fits")
    stats = compare_with_caldwell(res)
    assert stats["n_used"] == int(used.sum()) and 0 <= stats["ood_fraction"] <= 1
    assert set(stats["all"]["log10_mass"]) >= {"median_offset", "scatter_mad", "coverage_68", "coverage_95"}
    plot_comparison(res, tmp_path / "c.png", stats=stats)
    assert (tmp_path / "c.png").stat().st_size > 1000
    with pytest.raises(GcsbiValueError, match="fits or .ecsv"):
        infer_catalogue(sub[:1], toy_posterior, num_samples=10, progress=False, out=tmp_path / "r.csv")


def test_cli(toy_posterior, shared_data, tmp_path, monkeypatch, capsys):
    from gcsbi.cli import main

    monkeypatch.setenv("GCSBI_SHARED_DATA", str(shared_data))
    ckpt = tmp_path / "p.pt"
    toy_posterior.save(ckpt)
    assert main(["m31", "infer", "B165", "--posterior", str(ckpt), "--num-samples", "100", "--out",
                 str(tmp_path / "b165")]) == 0
    out = capsys.readouterr().out
    assert "log10_mass" in out and "prior: m31-gc restricted to E(B-V) >= 0.055 (Milky Way foreground) (box)" in out
    assert "effective draws" in out
    assert (tmp_path / "b165" / "posterior.png").is_file()
    assert main(["m31", "infer", "B165", "--posterior", str(ckpt), "--num-samples", "100", "--ebv-range", "0,0.2"]) == 0
    assert "prior: m31-gc restricted to E(B-V) 0-0.2, E(B-V) >= 0.055" in capsys.readouterr().out
    assert main(["m31", "infer", "B165", "--posterior", str(ckpt), "--num-samples", "100", "--prior", "training"]) == 0
    assert "prior: m31-gc (kept 100% of the posterior" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["m31", "infer", "B165", "--posterior", str(ckpt), "--ebv-prior", "0.1"])
    assert "expected two numbers" in capsys.readouterr().err
    assert main(["m31", "infer", "NOPE", "--posterior", str(ckpt)]) == 1
    assert "unknown cluster" in capsys.readouterr().err


def test_cluster_picture_is_a_named_corner_with_literature(toy_posterior):
    """posterior.png: a corner plot (n x n axes) titled with the cluster's name and the prior, Caldwell+2011
    values marked where the catalogue has them, axes spanning the posterior rather than the prior box."""
    import matplotlib.pyplot as plt

    from gcsbi.catalogue.catalogues import resolve_cluster
    from gcsbi.catalogue.compare import literature_values
    from gcsbi.catalogue.inference import infer_cluster
    from gcsbi.catalogue.plots import cluster_title, plot_cluster_posterior
    from gcsbi.inference.arviz import posterior_datatree

    row = resolve_cluster("B165")
    lit = literature_values(row)
    assert lit["name"] == "B165-G218" and lit["log10_mass"] == pytest.approx(5.61) and lit["feh"] == -2.04
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = infer_cluster(row, toy_posterior, num_samples=200)
    fig = plot_cluster_posterior(dt, lit, title=cluster_title(row))
    try:
        n = 4
        assert len(fig.axes) >= n * n
        head = fig._suptitle.get_text()
        assert "B165-G218 (PHAT APID 166)" in head and "prior: m31-gc" in head
        mass_ax = fig.axes[n * (n - 1)]  # bottom-left: log10 M on x
        assert "M☉" in mass_ax.get_xlabel()
        marks = [ln.get_xdata()[0] for ln in mass_ax.get_lines() if ln.get_linestyle() == "--"]
        assert any(np.isclose(m, 5.61) for m in marks)
        assert any(t.get_text() == "Caldwell+2011" for t in fig.legends[0].get_texts())
    finally:
        plt.close(fig)
    # a cluster without Caldwell values says so; axes span the posterior, not the prior box
    rng = np.random.default_rng(0)
    names = ("log10_mass", "age_gyr", "feh", "ebv")
    narrow = posterior_datatree(rng.normal([5.0, 10.0, -1.0, 0.2], 0.01, (500, 4)), names=names,
                                bounds={"log10_mass": (2.0, 7.0), "age_gyr": (1.0, 14.0), "feh": (-2.5, 0.5),
                                        "ebv": (0.0, 1.0)}, attrs={"prior": "m31-gc"})
    fig = plot_cluster_posterior(narrow, {}, title="APID 1")
    try:
        assert "no Caldwell+2011 values" in fig._suptitle.get_text()
        lo, hi = fig.axes[0].get_xlim()
        assert 4.9 < lo < hi < 5.1
    finally:
        plt.close(fig)


def test_prior_choices_restrict_and_reweight(toy_posterior):
    from gcsbi.catalogue.inference import infer_cluster
    from gcsbi.catalogue.priors import prior_choice

    x = features(np.array([[17.0, 16.8, 15.5]]), np.array([[0.01, 0.01, 0.02]]), np.array([0.5]), np.array([2.0]))[0]
    old = infer_cluster(x, toy_posterior, prior=prior_choice("old"), num_samples=200, seed=1, check_ood=False)
    age = np.asarray(old["posterior"]["age_gyr"].values).ravel()
    assert age.size == 200 and age.min() >= 8.0 and age.max() <= 14.0
    assert "age 8-14 Gyr, log M 4-6.7, E(B-V) >= 0.055 (Milky Way foreground) (old)" in old.attrs["prior"]
    assert 0 < old.attrs["prior_kept_fraction"] < 1 and np.asarray(old["posterior"]["ebv"].values).min() >= 0.055
    red = infer_cluster(x, toy_posterior, prior=prior_choice("training", ebv_gaussian=(0.05, 0.01)), num_samples=400,
                        seed=1, check_ood=False)
    e = np.asarray(red["posterior"]["ebv"].values).ravel()
    assert abs(np.median(e) - 0.05) < 0.02 and "N(0.05, 0.01)" in red.attrs["prior"]
    with pytest.raises(GcsbiValueError, match="sd > 0"):
        prior_choice(ebv_gaussian=(0.1, 0.0))
    with pytest.raises(GcsbiValueError, match="unknown prior preset"):
        prior_choice("young")


@pytest.mark.slow
def test_calibrate_runs_with_catalogue_simulator(toy_posterior):
    """calibrate() works unchanged with the catalogue simulator (contract check, tiny sizes)."""
    from gcsbi.catalogue.simulator import CatalogueSimulator
    from gcsbi.inference import calibrate
    from gcsbi.spec.priors import NamedBoxPrior

    prior = load_prior("m31-gc")
    light = NamedBoxPrior(tuple(s if s.name != "log10_mass" else type(s)(s.name, 4.0, 4.5, s.unit, s.description)
                                for s in prior.specs), name="m31-gc-light")
    sim = CatalogueSimulator("hst-phat", light, stamp=96, model=CatalogueModel(rap_range=(0.5, 1.4)))  # 3 bands, as the toy
    rep = calibrate(toy_posterior, sim, n_held_out=10, num_posterior_samples=10, c2st=False, check_spec=False)
    assert "max_expected_coverage_deviation" in rep
