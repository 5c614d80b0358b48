"""Known-answer tests of the calibration statistics (analytic Gaussian posteriors) + toy run."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal

from gcsbi.errors import SpecError
from gcsbi.inference import calibrate, coverage_from_ranks

TAU, SIGMA = 1.0, 0.5


class GaussianSim:
    """x ~ N(theta, SIGMA^2 I), theta ~ N(0, TAU^2 I): the posterior is Gaussian, known exactly."""

    param_names = ("a", "b")

    def __init__(self) -> None:
        self.prior = Independent(Normal(torch.zeros(2), TAU * torch.ones(2)), 1)

    def __call__(self, theta, *, seed=None):
        g = torch.Generator().manual_seed(int(seed) % 2**63)
        return theta + SIGMA * torch.randn(theta.shape, generator=g)


class GaussianPosterior:
    """Exact posterior with its sd multiplied by ``scale`` (1: exact, 2: too wide, 0.5: too narrow)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.shrink = TAU**2 / (TAU**2 + SIGMA**2)
        self.sd = math.sqrt(TAU**2 * SIGMA**2 / (TAU**2 + SIGMA**2))

    def sample_batched(self, sample_shape, x, show_progress_bars=False):
        n = int(torch.Size(sample_shape).numel())
        return self.shrink * x[None] + self.scale * self.sd * torch.randn((n, *x.shape))


@pytest.mark.parametrize("scale, verdict", [(1.0, "calibrated"), (2.0, "conservative"), (0.5, "overconfident")])
def test_known_answer(scale, verdict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = calibrate(GaussianPosterior(scale), GaussianSim(), n_held_out=400, num_posterior_samples=200,
                        seed=5, c2st=False)
    assert rep["verdict"] == verdict
    assert all(p["verdict"] == verdict for p in rep["parameters"].values())
    ks = [p["sbc_ks_pvalue"] for p in rep["parameters"].values()]
    noise = rep["max_deviation_if_calibrated"]
    assert 0 < noise["median"] < noise["q95"]
    if verdict == "calibrated":
        assert rep["max_expected_coverage_deviation"] < noise["q95"]
        assert min(ks) > 0.01
        assert abs(rep["tarp_atc"]) < 0.05
        assert all(abs(p["bias"]) < 0.1 for p in rep["parameters"].values())
    else:
        assert rep["max_expected_coverage_deviation"] > 0.2 > 2 * noise["q95"]
        assert max(ks) < 1e-3
        # TARP: positive area = too wide, negative = too narrow
        assert (rep["tarp_atc"] > 0) == (verdict == "conservative")


def test_coverage_noise_shrinks_like_one_over_root_n():
    from gcsbi.inference import coverage_noise

    small, large = (coverage_noise(n, 11, 500, [0.1, 0.5, 0.9], reps=200, seed=1) for n in (500, 2000))
    assert 0.03 < small["median"] < 0.07
    assert large["median"] / small["median"] == pytest.approx(0.5, abs=0.1)
    assert coverage_noise(500, 11, 500, [0.1, 0.5], reps=50, seed=3) == coverage_noise(500, 11, 500, [0.1, 0.5],
                                                                                       reps=50, seed=3)


def test_coverage_from_ranks_exact():
    S = 99
    ranks = np.tile(np.arange(S + 1), 10)[:, None]  # perfectly uniform ranks
    cov = coverage_from_ranks(ranks, S, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(cov[0], [0.1, 0.5, 0.9], atol=0.011)


def test_toy_calibration_report_and_files(toy_posterior, toy_sim, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = calibrate(toy_posterior, toy_sim, n_held_out=100, num_posterior_samples=100, seed=2, c2st=False,
                        out=tmp_path)
    on_disk = json.loads((tmp_path / "calibration.json").read_text())
    assert on_disk["max_expected_coverage_deviation"] == pytest.approx(rep["max_expected_coverage_deviation"])
    assert set(on_disk["parameters"]) == set(toy_sim.param_names)
    assert (tmp_path / "ecdf_pit.png").stat().st_size > 1000
    assert (tmp_path / "coverage.png").stat().st_size > 1000
    # the toy posterior must beat the prior by far on flux (prior width 1 dex)
    assert rep["parameters"]["log10_flux"]["median_abs_error"] < 0.1


def test_calibration_pictures_are_small_multiples_with_labels():
    """One panel per parameter (11 parameters would be 11 look-alike colours in one panel), y labels on the
    left column, titles clear of the tick labels of the panel above."""
    import matplotlib.pyplot as plt

    from gcsbi.inference.plots import plot_coverage, plot_sbc_ecdf

    names = [f"p{i}" for i in range(11)]
    rng = np.random.default_rng(0)
    fig = plot_sbc_ecdf(rng.uniform(size=(200, 11)), names=names)
    try:
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert len(panels) == 11 and [ax.get_title() for ax in panels] == names
        assert panels[0].get_ylabel() == "ECDF − uniform" and panels[4].get_ylabel() == "ECDF − uniform"
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for upper, lower in zip(panels[:-4], panels[4:]):  # the title below never overlaps the panel above
            assert lower.title.get_window_extent(renderer).y1 <= upper.get_tightbbox(renderer).y0 + 1
    finally:
        plt.close(fig)
    lv = [0.1, 0.5, 0.9]
    report = {"levels": lv, "n_held_out": 200, "max_expected_coverage_deviation": 0.05,
              "max_deviation_if_calibrated": {"median": 0.03, "q95": 0.05},
              "max_deviation_if_calibrated_per_parameter_q95": 0.04,
              "parameters": {n: {"coverage": [0.12, 0.5, 0.88]} for n in names},
              "tarp_alpha": [0.0, 0.5, 1.0], "tarp_ecp": [0.0, 0.48, 1.0]}
    fig = plot_coverage(report)
    try:
        panels = [ax for ax in fig.axes if ax.get_visible()]
        assert len(panels) == 12 and all(len(ax.get_lines()) == 2 for ax in panels)  # zero line + one curve
        assert panels[-1].get_title().startswith("TARP") and panels[0].get_ylabel() == "coverage − level"
    finally:
        plt.close(fig)


def test_spec_mismatch_refused(toy_posterior):
    from gcsbi.testing import ToyImageSimulator

    with pytest.raises(SpecError, match="noise"):
        calibrate(toy_posterior, ToyImageSimulator(size=16, noise=0.2), n_held_out=20, num_posterior_samples=20)


def test_held_out_pair_is_used_as_given():
    sim = GaussianSim()
    g = torch.Generator().manual_seed(3)
    theta = TAU * torch.randn((300, 2), generator=g)
    x = sim(theta, seed=4)
    kw = dict(num_posterior_samples=100, seed=5, c2st=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        given = calibrate(GaussianPosterior(1.0), sim, held_out=(theta, x), **kw)
        wrong = calibrate(GaussianPosterior(1.0), sim, held_out=(theta, x + 3.0), **kw)  # shifted data
    assert given["n_held_out"] == 300
    assert given["verdict"] == "calibrated"
    assert all(p["median_abs_error"] > 1.0 for p in wrong["parameters"].values())


@pytest.mark.parametrize("held_out", [(torch.zeros(10, 3), torch.zeros(10, 2)), (torch.zeros(10, 2), torch.zeros(9, 2)),
                                      ("not", "arrays")])
def test_held_out_bad_shapes_refused(held_out):
    from gcsbi.errors import GcsbiValueError

    with pytest.raises(GcsbiValueError, match="held_out"):
        calibrate(GaussianPosterior(1.0), GaussianSim(), held_out=held_out, num_posterior_samples=20, c2st=False)
