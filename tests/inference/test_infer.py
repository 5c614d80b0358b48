from __future__ import annotations

import warnings

import numpy as np
import pytest

from gcsbi.errors import GcsbiFileError, GcsbiValueError, OutOfDistributionWarning
from gcsbi.inference import infer, posterior_predictive, read_observation, simulate, summary
from gcsbi.inference.plots import plot_corner, plot_ppc


@pytest.fixture(scope="module")
def obs(toy_sim):
    return simulate(toy_sim, 30, seed=21, stream="inference")


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def test_datatree_structure_and_reproducible(toy_posterior, toy_sim, obs):
    theta, x = obs
    dt = _quiet(infer, toy_posterior, x[1].numpy(), num_samples=300, seed=4, truth=theta[1])
    post = dt["posterior"]
    assert list(post.data_vars) == list(toy_sim.param_names)
    assert dict(post.sizes) == {"chain": 1, "draw": 300}
    assert post["width"].attrs["units"] == "pix" and post["width"].attrs["prior_low"] == 1.0
    assert dt["observed_data"]["image"].shape == (3, 16, 16)
    assert float(dt["constant_data"]["width_true"]) == pytest.approx(float(theta[1, 1]))
    for key in ("ood_pvalue", "ood_flag", "posterior_mass_in_prior", "prior_edge_params", "seed"):
        assert key in dt.attrs
    again = _quiet(infer, toy_posterior, x[1], num_samples=300, seed=4)
    np.testing.assert_array_equal(post["width"].values, again["posterior"]["width"].values)
    table = summary(dt)
    assert list(table.index) == list(toy_sim.param_names)
    assert {"mean", "sd"} <= set(table.columns) and any("hdi" in c for c in table.columns)
    # the posterior is informative about flux: truth within a few sd of the mean
    assert abs(table.loc["log10_flux", "mean"] - float(theta[1, 0])) < 4 * table.loc["log10_flux", "sd"] + 0.02


def test_batched_observations(toy_posterior, obs):
    _, x = obs
    dt = _quiet(infer, toy_posterior, x[:4], num_samples=50)
    assert dict(dt["posterior"].sizes) == {"chain": 1, "draw": 50, "observation": 4}
    assert len(dt.attrs["ood_pvalue"]) == 4


def test_bad_observations(toy_posterior, obs):
    _, x = obs
    with pytest.raises(GcsbiValueError, match="training shape"):
        infer(toy_posterior, x[0, :2])
    bad = x[0].clone()
    bad[1, 3, 3] = float("nan")
    bad[2, 0, 0] = float("inf")
    with pytest.raises(GcsbiValueError, match=r"1 NaN and 1 inf.*band index \[1, 2\]"):
        infer(toy_posterior, bad)
    with pytest.raises(GcsbiValueError, match="read_observation"):
        infer(toy_posterior, "image.fits")


def test_ood_flagged_and_in_distribution_mostly_not(toy_posterior, obs):
    _, x = obs
    far = x[0] * 20 + 3.0
    with pytest.warns(OutOfDistributionWarning):
        dt = infer(toy_posterior, far, num_samples=100)
    assert dt.attrs["ood_flag"] == 1 and dt.attrs["ood_pvalue"] < 0.01
    dt = _quiet(infer, toy_posterior, x, num_samples=50)
    assert sum(dt.attrs["ood_flag"]) <= 3  # ~1% false alarms expected at alpha=0.01 (30 observations)


def test_plots(toy_posterior, toy_sim, obs, tmp_path):
    theta, x = obs
    dt = _quiet(infer, toy_posterior, x[2], num_samples=200)
    fig = plot_corner(dt, truth=theta[2].tolist(), title="toy cluster, prior toy", path=tmp_path / "corner.png")
    d = len(dt["posterior"].data_vars)
    fig.canvas.draw()
    bottom = [ax for ax in fig.axes[d * (d - 1):] if ax.axison]
    assert fig._suptitle.get_text() == "toy cluster, prior toy"
    assert "width [pix]" in [ax.get_xlabel() for ax in bottom]  # units on the axis labels
    for ax in bottom:  # no label cut at the figure's edge
        box = ax.xaxis.label.get_window_extent()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y0 >= fig.bbox.y0
    lo, hi = fig.axes[d * d - 1].get_xlim()  # axes span the posterior (+ truth), inside the prior
    last = dt["posterior"][list(dt["posterior"].data_vars)[-1]]
    assert last.attrs["prior_low"] - 1e-9 <= lo + 0.02 * (last.attrs["prior_high"] - last.attrs["prior_low"])
    import matplotlib.pyplot as plt

    plt.close(fig)
    t, sims = posterior_predictive(toy_posterior, toy_sim, x[2], num_draws=3, seed=1)
    assert sims.shape == (3, 3, 16, 16) and t.shape == (3, 3)
    plot_ppc(x[2].numpy(), sims.numpy(), band_names=["B", "V", "R"], path=tmp_path / "ppc.png")
    assert (tmp_path / "corner.png").stat().st_size > 1000 and (tmp_path / "ppc.png").stat().st_size > 1000


def test_read_observation(tmp_path):
    from astropy.io import fits

    rng = np.random.default_rng(0)
    imgs = {b: rng.normal(size=(8, 8)).astype(np.float32) for b in ("F475W", "F814W", "F160W")}
    files = []
    for b, img in imgs.items():
        h = fits.Header()
        h["FILTER"] = b
        fits.PrimaryHDU(img, header=h).writeto(tmp_path / f"{b}.fits")
        files.append(tmp_path / f"{b}.fits")
    cube = read_observation(files[::-1], bands=["F475W", "F814W", "F160W"])
    np.testing.assert_array_equal(cube[0], imgs["F475W"])
    assert cube.shape == (3, 8, 8) and cube.dtype == np.float32
    with pytest.raises(GcsbiValueError, match=r"missing band\(s\) \['F336W'\]"):
        read_observation(files, bands=["F336W", "F814W"])
    fits.PrimaryHDU(np.stack(list(imgs.values()))).writeto(tmp_path / "cube.fits")
    assert read_observation(tmp_path / "cube.fits").shape == (3, 8, 8)
    with pytest.raises(GcsbiFileError):
        read_observation(tmp_path / "nope.fits")
    (tmp_path / "junk.fits").write_bytes(b"junk" * 100)
    with pytest.raises(GcsbiFileError):
        read_observation(tmp_path / "junk.fits")
