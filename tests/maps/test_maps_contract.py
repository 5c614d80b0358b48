"""Banks with truth maps, and the map heads end to end on a tiny posterior (plumbing, not accuracy)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from gcsbi.bank import SimulationBank
from gcsbi.errors import GcsbiFileError, GcsbiValueError

FACTORY = "gcsbi.simulator:load_simulator"
KW = {"spec": "hst-phat", "prior": "m31-gc"}


@pytest.fixture(scope="module")
def truth_bank(tmp_path_factory):
    path = tmp_path_factory.mktemp("maps") / "truth.zarr"
    bank = SimulationBank.create(path, simulator_factory=FACTORY, factory_kwargs=KW, n=24, chunk_size=12, seed=5,
                                 truth=["mass_map", "clean"])
    bank.generate(progress=False)
    return bank


def test_truth_is_stored_next_to_an_unchanged_x(truth_bank, tmp_path):
    plain = SimulationBank.create(tmp_path / "plain.zarr", simulator_factory=FACTORY, factory_kwargs=KW, n=12,
                                  chunk_size=12, seed=5)
    plain.generate(progress=False)
    theta, x = truth_bank.load()
    t0, x0 = plain.load()
    assert torch.equal(theta[:12], t0) and torch.equal(x[:12], x0)  # storing truths changes no x
    mass, clean = truth_bank.load_truth("mass_map"), truth_bank.load_truth("clean")
    assert mass.shape == (24, 128, 128) and clean.shape == (24, 3, 128, 128)
    assert (mass >= 0).all() and (mass.sum(axis=(1, 2)) > 0).all()
    # the field of view never holds more than the cluster's mass
    assert np.all(np.log10(mass.sum(axis=(1, 2))) <= theta[:, 1].numpy() + 1e-3)
    with pytest.raises(GcsbiValueError, match="stores no truth 'background'"):
        truth_bank.load_truth("background")
    with pytest.raises(GcsbiValueError, match="stores no truth"):
        plain.load_truth("mass_map")


def test_truth_names_are_checked(tmp_path):
    with pytest.raises(GcsbiValueError, match="unknown or repeated"):
        SimulationBank.create(tmp_path / "b.zarr", simulator_factory=FACTORY, factory_kwargs=KW, n=2, chunk_size=2,
                              seed=1, truth=["mass_map", "nope"])
    assert not (tmp_path / "b.zarr").exists()


def test_a_lost_truth_chunk_is_found_and_recomputed(truth_bank, tmp_path):
    import shutil

    path = tmp_path / "copy.zarr"
    shutil.copytree(truth_bank.path, path)
    bank = SimulationBank.open(path)
    before = bank.load_truth("mass_map")
    shard = path / "truth_mass_map" / "c" / "1" / "0" / "0"
    shard.write_bytes(shard.read_bytes()[:100])  # truncated: the checksum fails
    assert bank.verify() == [1]
    with pytest.raises(GcsbiFileError):
        bank.load_truth("mass_map")
    bank.repair(progress=False)
    np.testing.assert_array_equal(bank.load_truth("mass_map"), before)  # same bytes as before


@pytest.fixture(scope="module")
def tiny_maps(truth_bank):
    from gcsbi.inference import TrainConfig, train
    from gcsbi.maps import MapTrainConfig, Photometry, load_map_data, train_maps
    from gcsbi.nets import PiDocEmbedding
    from gcsbi.simulator import load_simulator

    sim = load_simulator(**KW)
    theta, x = truth_bank.load()
    net = PiDocEmbedding(in_channels=6, groups={"flux": [0, 1, 2], "colour": [3, 4], "cmd": [5]}, width=2,
                         features=8, branch_features=8, hidden=(16,))
    cfg = TrainConfig(hidden_features=16, num_transforms=1, num_bins=4, max_num_epochs=2, batch_size=8, x_pool=2,
                      seed=0, n_reference=4)
    with warnings.catch_warnings():  # two epochs on 24 mocks: sbi says it has not converged, and knows
        warnings.simplefilter("ignore", UserWarning)
        post = train(theta, x, simulator=sim, embedding_net=net, config=cfg)
    phot = Photometry.from_simulator(sim)
    data = load_map_data(truth_bank.path, photometry=phot, param_names=post.param_names)
    model = train_maps(post, data, photometry=phot, progress=False,
                       config=MapTrainConfig(epochs=1, batch_size=8, flow_epochs=2, flow_hidden=(16,),
                                             flow_transforms=1, width=2, full_width=2))
    return post, model, x


def test_map_model_outputs_and_round_trip(tiny_maps, tmp_path):
    from gcsbi.maps import load_map_model, save_map_model

    post, model, x = tiny_maps
    pred = model.predict_maps(x[:2])
    assert pred["log_mass"].shape == (2, 128, 128) and pred["clean"].shape == (2, 3, 128, 128)
    assert (pred["log_mass_std"] > 0).all() and (pred["mass"] >= 0).all()
    assert (pred["clean_lo"] <= pred["clean_hi"]).all()
    # the encoder is the posterior's: same embedding
    torch.testing.assert_close(torch.from_numpy(model.raw(x[:3])[0]), post.embed(x[:3]), atol=1e-5, rtol=1e-5)
    draws = model.sample_summaries(x[:2], 20, seed=3)
    assert draws.shape == (20, 2, 10) and np.isfinite(draws).all()
    np.testing.assert_array_equal(draws, model.sample_summaries(x[:2], 20, seed=3))  # same seed, same bytes
    path = save_map_model(model, tmp_path / "m.pt")
    again = load_map_model(path, posterior=post)
    np.testing.assert_array_equal(again.predict_maps(x[:2])["log_mass"], pred["log_mass"])
    np.testing.assert_array_equal(again.sample_summaries(x[:2], 20, seed=3), draws)
    with pytest.raises(GcsbiValueError, match="NaN"):
        model.predict_maps(torch.full((1, *x.shape[1:]), float("nan")))
    with pytest.raises(GcsbiValueError, match="must be"):
        model.predict_maps(x[:1, :, :64])
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(GcsbiFileError):
        load_map_model(tmp_path / "bad.pt")


def test_map_model_refuses_another_posterior(tiny_maps):
    import copy

    post, model, _ = tiny_maps
    other = copy.deepcopy(post)
    with torch.no_grad():
        next(other.estimator.embedding_net.parameters()).add_(1.0)
    from gcsbi.maps.model import check_parent

    with pytest.raises(GcsbiValueError, match="another posterior"):
        check_parent(model, other)


def test_infer_with_maps_adds_groups_and_writes_fits(tiny_maps, tmp_path):
    from astropy.io import fits

    from gcsbi.inference import infer
    from gcsbi.maps.infer import map_wcs, write_maps_fits

    post, model, x = tiny_maps
    dt = infer(post, x[0], num_samples=30, seed=1, maps=model, check_ood=False)
    maps = dt["maps"].to_dataset()
    assert maps["log10_mass"].dims == ("y", "x") and maps["clean"].dims == ("band", "y", "x")
    assert list(maps["band"].values) == ["F336W", "F475W", "F814W"] and maps["mass"].attrs["units"] == "Msun/pixel"
    der = dt["derived"].to_dataset()
    assert der["log10_mass_1rh"].shape == (1, 30) and (der["rh_mass_over_light"] > 0).all()
    batched = infer(post, x[:2], num_samples=10, seed=1, maps=model, check_ood=False)
    assert batched["maps"].to_dataset()["log10_mass"].dims == ("observation", "y", "x")
    wcs = map_wcs(None, ra=10.68, dec=41.27, shape=(128, 128), pixel_scale_arcsec=0.05)
    out = write_maps_fits(dt, tmp_path / "maps.fits", wcs=wcs)
    with fits.open(out) as hdul:
        assert [h.name for h in hdul[1:]] == ["MASS", "LOGMASS", "LOGMASS_STD", "CLEAN_F336W", "CLEAN_F475W",
                                              "CLEAN_F814W"]
        assert hdul["MASS"].header["CTYPE1"] == "RA---TAN" and hdul["MASS"].header["BUNIT"] == "Msun/pixel"
        np.testing.assert_allclose(hdul["MASS"].data, maps["mass"].values)
    with pytest.raises(GcsbiValueError, match="maps must be"):
        infer(post, x[0], num_samples=5, maps=3, check_ood=False)
    with pytest.raises(GcsbiValueError, match="no shipped map model"):
        infer(post, x[0], num_samples=5, maps=True, check_ood=False)


def test_joint_training_returns_a_new_posterior_and_leaves_the_old_one(tiny_maps, truth_bank):
    from gcsbi.maps import MapTrainConfig, Photometry, load_map_data
    from gcsbi.maps.model import check_parent
    from gcsbi.maps.train import train_maps_joint
    from gcsbi.simulator import load_simulator

    post, model, x = tiny_maps
    before = post.embed(x[:2])
    phot = Photometry.from_simulator(load_simulator(**KW))
    data = load_map_data(truth_bank.path, photometry=phot, param_names=post.param_names)
    new_post, joint = train_maps_joint(post, data, photometry=phot, progress=False,
                                       config=MapTrainConfig(epochs=1, batch_size=8, flow_epochs=2, flow_hidden=(16,),
                                                             flow_transforms=1, width=2, full_width=2))
    torch.testing.assert_close(post.embed(x[:2]), before)  # the old posterior is untouched
    assert not torch.allclose(new_post.embed(x[:2]), before)  # the encoder was trained
    check_parent(joint, new_post)  # the map model belongs to the new posterior ...
    with pytest.raises(GcsbiValueError, match="another posterior"):
        check_parent(joint, post)  # ... not to the old one
    assert new_post.sample(5, x[0], seed=0).shape == (5, len(post.param_names))
    with pytest.raises(GcsbiValueError, match="train_maps_joint"):
        from gcsbi.maps import train_maps

        train_maps(post, data, photometry=phot, config=MapTrainConfig(joint=True), progress=False)


def test_cli_infer_with_maps(tiny_maps, tmp_path, capsys):
    from astropy.io import fits

    from gcsbi.cli import main
    from gcsbi.maps import save_map_model

    post, model, x = tiny_maps
    post.save(tmp_path / "post.pt")
    save_map_model(model, tmp_path / "maps.pt")
    np.save(tmp_path / "obs.npy", x[0].numpy())
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny posterior's OOD test has only a few references
        rc = main(["infer", str(tmp_path / "post.pt"), str(tmp_path / "obs.npy"), "--num-samples", "20",
                   "--maps-model", str(tmp_path / "maps.pt"), "--maps-fits", str(tmp_path / "m.fits"),
                   "--maps-plot", str(tmp_path / "m.png"), "--out", str(tmp_path / "dt.zarr")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "rh_mass_over_light" in out and "no WCS" in out  # an .npy input has no WCS to copy
    with fits.open(tmp_path / "m.fits") as hdul:
        assert hdul["MASS"].data.shape == (128, 128)
    assert (tmp_path / "m.png").stat().st_size > 10_000
    import xarray as xr

    saved = xr.open_datatree(tmp_path / "dt.zarr", engine="zarr", consolidated=False)
    assert saved["maps"]["log10_mass"].shape == (128, 128)


def test_per_pixel_standardisation_of_older_posteriors(tiny_maps, tmp_path):
    """Posteriors z-scored per pixel by sbi (the shipped Milky Way one) standardise the pooled
    input; the map model does the same, and its file rebuilds that layer."""
    import copy

    from sbi.utils.sbiutils import Standardize

    from gcsbi.maps import load_map_model, save_map_model

    _, model, x = tiny_maps
    m = copy.deepcopy(model)
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    m.encoder[0] = Standardize(pooled.mean(0), pooled.std(0) + 0.1)
    emb, skips, xs = m.encode(x[:2])
    torch.testing.assert_close(emb, m.encoder(pooled[:2]))
    assert xs.shape == x[:2].shape
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(xs, 2), m.encoder[0](pooled[:2]), atol=1e-4, rtol=1e-4)
    m.meta["encoder_sha256"] = ""
    again = load_map_model(save_map_model(m, tmp_path / "pp.pt"))
    np.testing.assert_array_equal(again.raw(x[:2])[1], m.raw(x[:2])[1])
