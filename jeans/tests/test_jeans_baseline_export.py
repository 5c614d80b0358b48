"""emcee baseline at tiny size, ArviZ export round trip, coverage scoring and plots."""

from __future__ import annotations

import numpy as np
import pytest

from gcsbi_jeans.baseline import PARAM_NAMES, BaselineConfig, fit_baseline
from gcsbi_jeans.core.beta import parse_beta
from gcsbi_jeans.core.export import hdi_bands, load_datatree, profiles_to_datatree, save_datatree, truth_coverage
from gcsbi_jeans.core.grids import default_grids
from gcsbi_jeans.errors import JeansFileError, JeansValueError


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
    from gcsbi_jeans.core.sampling import mcmc_diagnostics

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

    nc = xr.open_datatree(paths["netcdf"])  # NetCDF4 with every group
    np.testing.assert_allclose(nc["posterior"]["mass"].values, dt["posterior"]["mass"].values)
    bands = hdi_bands(dt, prob=0.68, var_names=["rho"])
    lo, hi = bands["rho"].sel(ci_bound="lower").values, bands["rho"].sel(ci_bound="upper").values
    assert np.all(lo <= hi)
    np.testing.assert_allclose(dt["hdi"]["rho"].sel(prob=0.68).values, bands["rho"].values)
    assert np.all(dt["hdi"]["rho"].sel(prob=0.95, ci_bound="lower").values <= lo)
    assert "hdi" in back.children and list(back["hdi"]["prob"].values) == [0.68, 0.95]
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
    from gcsbi_jeans.core.mocks import truth_profiles
    from gcsbi_jeans.core.plots import plot_profiles

    stars, res = baseline_run
    png = plot_profiles({"emcee": (res.radius, res.R, res.profiles)}, tmp_path / "p.png", stars=stars,
                        truth=truth_profiles(tiny_mock[1]))
    assert png.stat().st_size > 10_000


def _vlines(ax) -> list[float]:
    return [float(line.get_xdata()[0]) for line in ax.get_lines()
            if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]


def test_plot_says_what_it_shows(baseline_run, tiny_mock):
    """Object name in the title, one legend, R_1/2 and 150 pc marked, Sigma(R) against the binned stars,
    the radii without stars greyed, and a beta(r) panel only when beta is inferred (its draws vary)."""
    import matplotlib.pyplot as plt

    from gcsbi_jeans.core.plots import object_name, profiles_figure

    stars, res = baseline_run
    fig = profiles_figure({"emcee": (res.radius, res.R, res.profiles)}, stars=stars, title="emcee", name="Mock A")
    try:
        assert fig._suptitle.get_text() == "Mock A: emcee"
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
        assert len(axes) == 4 and not any("β" in ax.get_ylabel() for ax in axes)  # iso: no beta panel
        assert sum(ax.get_legend() is not None for ax in fig.axes) + len(fig.legends) == 1
        rh = stars.half_light_radius()
        for ax in axes:
            assert any(np.isclose(x, rh) for x in _vlines(ax)) and any(np.isclose(x, 0.15) for x in _vlines(ax))
            assert "kpc" in ax.get_xlabel() and ax.patches  # the shaded radii without stars
        sigma_ax = next(ax for ax in axes if ax.get_ylabel().startswith("Σ(R)"))
        assert sigma_ax.containers  # binned surface density of the stars
    finally:
        plt.close(fig)
    varied = dict(res.profiles, beta=np.random.default_rng(0).uniform(-0.5, 0.5, res.profiles["beta"].shape))
    phot = (np.geomspace(0.01, 1.0, 300), np.ones(300))
    fig = profiles_figure({"fit": (res.radius, res.R, varied)}, stars=stars, photometry=phot, r_half=0.3)
    try:
        labels = [ax.get_ylabel() for ax in fig.axes if ax.axison]
        assert any("β" in lab for lab in labels) and len(labels) == 5
        assert sum(ax.get_legend() is not None for ax in fig.axes) + len(fig.legends) == 1
        assert all(any(np.isclose(x, 0.3) for x in _vlines(ax)) for ax in fig.axes if ax.axison)
        legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
        assert "binned photometric sample (Σ)" in [t.get_text() for t in legend.get_texts()]
    finally:
        plt.close(fig)
    assert object_name("x/car_justin1_spec.dat") == "Carina" and object_name("a/mock.txt") == "mock"
    assert object_name("x/car_justin1_spec.dat", "Car II") == "Car II"
