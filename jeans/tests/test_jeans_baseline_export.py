"""emcee baseline at tiny size, ArviZ export round trip, coverage scoring and plots."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi_jeans.baseline import PARAM_NAMES, BaselineConfig, fit_baseline
from gcsbi_jeans.errors import JeansFileError, JeansValueError
from gcsbi_jeans.export import hdi_bands, load_datatree, profiles_to_datatree, save_datatree, truth_coverage
from gcsbi_jeans.fit import default_grids
from gcsbi_jeans.velocity import parse_beta


@pytest.fixture(scope="module")
def baseline_run(tiny_mock):
    stars, _ = tiny_mock
    radius, R = default_grids(stars, n_r=12)
    cfg = BaselineConfig(walkers=8, steps=40, burn=10, thin=2, n_grid=10, seed=3)
    return stars, fit_baseline(stars, parse_beta("iso"), cfg, radius=radius, R=R, n_draws=20, progress=False)


def test_baseline_shapes_and_reproducibility(baseline_run, tiny_mock):
    stars, res = baseline_run
    assert res.chain.shape == (15, 8, 4)
    assert res.profiles["rho"].shape == (20, 12) and np.all(res.profiles["rho"] > 0)
    assert np.all(np.isfinite(res.profiles["sigma_los_R"]))
    again = fit_baseline(stars, parse_beta("iso"), res.config, radius=res.radius, R=res.R, n_draws=20,
                         progress=False)
    assert again.chain.tobytes() == res.chain.tobytes()
    with pytest.raises(JeansValueError):
        BaselineConfig(walkers=7)


def test_datatree_roundtrip_and_diagnostics(baseline_run, tmp_path):
    from gcsbi_jeans.cli import mcmc_diagnostics

    _, res = baseline_run
    dt = profiles_to_datatree(res.profiles, radius=res.radius, R=res.R, chain=res.chain, param_names=PARAM_NAMES,
                              attrs={"beta": "iso"})
    assert dict(dt["posterior"].sizes) == {"chain": 1, "draw": 20, "radius": 12, "R": 6}
    diag = mcmc_diagnostics(dt)
    assert set(diag) == set(PARAM_NAMES) and all(d["rhat"] > 0.9 for d in diag.values())
    paths = save_datatree(dt, tmp_path / "run")
    back = load_datatree(paths["zarr"])
    np.testing.assert_allclose(back["posterior"]["rho"].values, dt["posterior"]["rho"].values)
    import xarray as xr

    nc = xr.open_dataset(paths["netcdf"], engine="scipy")
    np.testing.assert_allclose(nc["mass"].values, dt["posterior"]["mass"].values)
    bands = hdi_bands(dt, prob=0.68, var_names=["rho"])
    lo, hi = bands["rho"].sel(ci_bound="lower").values, bands["rho"].sel(ci_bound="upper").values
    assert np.all(lo <= hi)
    np.testing.assert_allclose(dt["hdi_68"]["rho"].values, bands["rho"].values)
    assert np.all(dt["hdi_95"]["rho"].sel(ci_bound="lower").values <= lo)
    assert "hdi_95" in back.children
    with pytest.raises(JeansFileError):
        load_datatree(tmp_path / "missing.zarr")


def test_truth_coverage_logic():
    rng = np.random.default_rng(0)
    draws = rng.normal(1.0, 0.1, size=(400, 3))
    cov = truth_coverage(np.exp(draws), np.exp(np.array([1.0, 1.15, 1.5])))
    assert cov["inside_68"] == [True, False, False]
    assert cov["inside_95"] == [True, True, False]
    assert cov["median_abs_log10_ratio"] == pytest.approx(0.15 / np.log(10), abs=0.02)


def test_plot_writes_png(baseline_run, tmp_path, tiny_mock):
    from gcsbi_jeans.mocks import truth_profiles
    from gcsbi_jeans.plots import plot_profiles

    stars, res = baseline_run
    png = plot_profiles({"emcee": (res.radius, res.R, res.profiles)}, tmp_path / "p.png", stars=stars,
                        truth=truth_profiles(tiny_mock[1]))
    assert png.stat().st_size > 10_000
